// The admin listener: an HTTP server for operators, apart from the client ports. It serves
// /metrics (Prometheus text, hawser/metrics.hpp) and the pages added to it (hawser-server adds
// its live dashboard at /). Off unless a program starts one; loopback by default. Requests are
// answered on the listener's own thread (libmicrohttpd's), so a slow scrape never delays an IO
// loop; sources must be safe to call from that thread (Server::stats() and the cluster's and
// ZDB's figures are).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hawser/error.hpp"
#include "hawser/metrics.hpp"

namespace hawser {

struct AdminOptions {
    // A numeric "host:port" or "[v6]:port"; port 0 picks a free one (AdminServer::port()).
    std::string listen = "127.0.0.1:9100";
    std::size_t max_connections = 32;           // HTTP connections at once; more are refused
    std::chrono::milliseconds timeout{10'000};  // an HTTP connection idle this long is closed
    // Host names a request may name besides IP addresses and "localhost" (a reverse proxy's,
    // say); "*" allows any. Other names are refused (403), so that a web page cannot reach the
    // listener through a name it rebinds to 127.0.0.1 (DNS rebinding).
    std::vector<std::string> allowed_hosts;
};

class AdminServer {
  public:
    using MetricsSource = std::function<void(MetricsText&)>;

    explicit AdminServer(AdminOptions options = {});
    ~AdminServer();  // stops
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Before start(): figures for /metrics, written in the order added; and a page served at
    // `path` (GET and HEAD) with this Content-Type.
    void add_metrics(MetricsSource source);
    void add_page(std::string path, std::string content_type, std::string body);

    // Binds and starts answering; invalid_argument for a bad address or a port that cannot be
    // bound.
    Result<void> start();
    // Stops answering and closes every connection; waits for a request in progress.
    void stop();
    std::uint16_t port() const;  // once started

    // Validates options without starting anything (a configuration check).
    static Result<void> validate(const AdminOptions& options);

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hawser
