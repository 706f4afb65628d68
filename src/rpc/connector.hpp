// Connector: one client connect attempt over a list of endpoints. Each name is resolved to its
// A and AAAA records, which are raced Happy-Eyeballs style (RFC 8305: families interleaved, a new
// attempt every `stagger` or as soon as one fails, the first to succeed wins); if every address
// of an endpoint fails, the next endpoint is tried. The whole attempt has one deadline.
// Thread affinity: created and driven on one loop.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hawser/error.hpp"
#include "rpc/loop.hpp"
#include "rpc/tcp_transport.hpp"

namespace hawser::detail {

class Connector : public std::enable_shared_from_this<Connector> {
  public:
    using Done = std::function<void(Result<TcpSocket>)>;

    Connector(Loop& loop, std::vector<std::string> endpoints, std::chrono::milliseconds stagger,
              std::chrono::milliseconds timeout, Done done);
    void start();
    void cancel();

    // Orders addresses for racing: alternate families, starting with the first one listed.
    static std::vector<asio::ip::tcp::endpoint> interleave(
        std::vector<asio::ip::tcp::endpoint> addrs);

  private:
    void next_endpoint();
    void launch();
    void on_attempt(std::size_t index, std::error_code ec);
    void finish(Result<TcpSocket> result);

    Loop& loop_;
    std::vector<std::string> endpoints_;
    std::chrono::milliseconds stagger_;
    std::chrono::milliseconds timeout_;
    Done done_;
    std::size_t endpoint_index_ = 0;
    std::vector<asio::ip::tcp::endpoint> addrs_;
    std::size_t addr_index_ = 0;
    std::size_t in_flight_ = 0;
    std::vector<std::unique_ptr<TcpSocket>> attempts_;
    asio::ip::tcp::resolver resolver_;
    asio::steady_timer stagger_timer_;
    asio::steady_timer deadline_timer_;
    std::string last_error_;
    bool finished_ = false;
};

}  // namespace hawser::detail
