// Listener (see listener.hpp): bind and listen, accept with admission, and hand each socket
// to the next loop. Thread affinity: the listener's loop; close() from any non-IO thread.
#include "rpc/listener.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <asio/ip/v6_only.hpp>
#include <asio/socket_base.hpp>
#include <future>

#include "rpc/conn.hpp"
#include "rpc/tcp_transport.hpp"
#include "rpc/websocket_transport.hpp"

namespace hawser::detail {

using reuse_port_option = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

Listener::Listener(Loop& loop, std::shared_ptr<Host> host, Kind kind)
    : loop_(loop),
      host_(std::move(host)),
      kind_(std::move(kind)),
      acceptor_(loop.context()),
      retry_timer_(loop.context()) {}

Result<void> Listener::open(const asio::ip::tcp::endpoint& ep, bool reuse_port, int backlog) {
    std::error_code ec;
    auto fail = [&](const char* what) {
        std::error_code ignored;
        acceptor_.close(ignored);
        return Error{Errc::invalid_argument, std::string(what) + " " + ep.address().to_string() +
                                                 ":" + std::to_string(ep.port()) + ": " +
                                                 ec.message()};
    };
    acceptor_.open(ep.protocol(), ec);
    if (ec) return fail("cannot open");
    // SO_REUSEADDR: a restarted server binds at once despite connections in TIME_WAIT.
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail("cannot set SO_REUSEADDR on");
    if (reuse_port) acceptor_.set_option(reuse_port_option(true), ec);
    if (ec) return fail("cannot set SO_REUSEPORT on");
    // "::" accepts IPv4 too (dual stack); a specific v6 address stays v6-only.
    if (ep.address().is_v6())
        acceptor_.set_option(asio::ip::v6_only(!ep.address().is_unspecified()), ec);
    acceptor_.bind(ep, ec);
    // SO_REUSEADDR alone never lets two listeners share a port on Linux: this is the answer a
    // second server gets unless both asked for reuse_port.
    if (ec == asio::error::address_in_use && !reuse_port) {
        auto r = fail("cannot bind");
        r.message +=
            " (another process listens there; servers that are one service may share "
            "a port with reuse_port = true / --reuse-port)";
        return r;
    }
    if (ec) return fail("cannot bind");
    acceptor_.listen(backlog, ec);
    if (ec) return fail("cannot listen on");
    port_ = acceptor_.local_endpoint(ec).port();
    return {};
}

void Listener::start() {
    loop_.post([self = shared_from_this()] { self->accept(); });
}

void Listener::accept() {
    Loop& target = host_->runtime.next_loop();
    // The peer's address comes with the accept (one accept is under way at a time, so one
    // member holds it): a getpeername per connection less.
    acceptor_.async_accept(
        target.context(), peer_,
        [self = shared_from_this(), &target](std::error_code ec, TcpSocket socket) {
            if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
            if (ec) {
                // Out of file descriptors or a transient error: pause instead of spinning.
                self->host_->log.warn("accept", "hawser: accept failed: " + ec.message());
                self->retry_timer_.expires_after(std::chrono::milliseconds(100));
                self->retry_timer_.async_wait([self](std::error_code e) {
                    if (!e) self->accept();
                });
                return;
            }
            auto peer = self->peer_;
            auto refusal = CloseReason::none;
            bool overflow = false;
            if (auto cap = self->host_->max_connections.load(std::memory_order_relaxed);
                cap && self->host_->count() >= cap)
                refusal = CloseReason::max_connections;
            else
                refusal = self->host_->admission.admit(peer.address(), Clock::now(), &overflow);
            if (refusal != CloseReason::none) {
                auto& c = self->host_->counters;
                c.refused.fetch_add(1, std::memory_order_relaxed);
                c.closed[std::size_t(refusal)].fetch_add(1, std::memory_order_relaxed);
                self->host_->log.warn(to_string(refusal), "hawser: refusing a connection from " +
                                                              peer.address().to_string() + ": " +
                                                              std::string(to_string(refusal)));
                std::error_code ignored;
                socket.close(ignored);
            } else {
                // The peer's address is taken once, here: admission gives the slot back under the
                // same key even if the peer has reset the socket by the time the connection starts.
                target.post([host = self->host_, &target, socket = std::move(socket), peer,
                             overflow, kind = self->kind_]() mutable {
                    std::unique_ptr<Transport> transport =
                        std::make_unique<TcpTransport>(std::move(socket));
                    if (kind.websocket)
                        transport = std::make_unique<WebSocketTransport>(
                            target.context(), std::move(transport),
                            WebSocketTransport::ServerSide{std::move(kind.websocket), kind.sniff});
                    std::make_shared<Conn>(target, host, std::move(transport), peer, overflow)
                        ->start();
                });
            }
            self->accept();
        });
}

void Listener::close() {
    std::promise<void> closed;
    loop_.dispatch([self = shared_from_this(), &closed] {
        std::error_code ec;
        self->acceptor_.close(ec);
        self->retry_timer_.cancel();
        closed.set_value();
    });
    closed.get_future().wait();
}

}  // namespace hawser::detail
