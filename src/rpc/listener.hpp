// Listener: one listening socket. Accepts on its own loop and hands each new socket to the
// next IO thread in turn, where the connection lives for life. Its connections are native,
// WebSocket, or either (told apart by their first bytes).
// Ownership: shared by the Server and its pending accept; close() stops it.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <memory>

#include "hawser/error.hpp"
#include "rpc/host.hpp"
#include "rpc/loop.hpp"
#include "wire/http_upgrade.hpp"

namespace hawser::detail {

class Listener : public std::enable_shared_from_this<Listener> {
  public:
    // What its connections speak: native Hawser unless `websocket` is given; with it, only
    // WebSocket, or either when `sniff`.
    struct Kind {
        std::shared_ptr<const http::UpgradePolicy> websocket;
        bool sniff = false;
    };
    Listener(Loop& loop, std::shared_ptr<Host> host, Kind kind);
    bool websocket_only() const noexcept { return kind_.websocket && !kind_.sniff; }

    // Binds and listens (any thread, before start()).
    Result<void> open(const asio::ip::tcp::endpoint& endpoint, bool reuse_port, int backlog);
    std::uint16_t port() const noexcept { return port_; }
    void start();
    // Stops accepting; returns once the listening socket is closed (call from a non-IO thread).
    void close();

  private:
    void accept();

    Loop& loop_;
    std::shared_ptr<Host> host_;
    Kind kind_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer retry_timer_;
    asio::ip::tcp::endpoint peer_;  // of the accept under way
    std::uint16_t port_ = 0;
};

}  // namespace hawser::detail
