// TcpTransport (see tcp_transport.hpp). Thread affinity: the connection's loop.
#include "rpc/tcp_transport.hpp"

#include <poll.h>

#include <asio/bind_allocator.hpp>
#include <cstdlib>

namespace hawser::detail {

namespace {

// The readiness wait of an idle connection is its one long-lived asio operation. asio's
// default handler memory comes from a per-thread cache that hands out any block big enough,
// so an idle connection could keep a block sized for some other operation; this allocator
// takes exactly what the wait needs.
template <class T>
struct ExactAllocator {
    using value_type = T;
    ExactAllocator() = default;
    template <class U>
    ExactAllocator(const ExactAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (auto* p = std::malloc(n * sizeof(T))) return static_cast<T*>(p);
        throw std::bad_alloc();
    }
    void deallocate(T* p, std::size_t) noexcept { std::free(p); }
    template <class U>
    bool operator==(const ExactAllocator<U>&) const noexcept {
        return true;
    }
};

}  // namespace

TcpTransport::TcpTransport(TcpSocket socket) : socket_(std::move(socket)) {
    std::error_code ec;
    // Each is a system call: a client that made its socket non-blocking before connecting
    // needs no second one.
    if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

void TcpTransport::wait_readable(std::shared_ptr<TransportUser> user) {
    socket_.async_wait(
        asio::socket_base::wait_read,
        asio::bind_allocator(ExactAllocator<void>(), [user = std::move(user)](std::error_code ec) {
            user->on_readable(ec);
        }));
}

void TcpTransport::wait_writable(std::shared_ptr<TransportUser> user) {
    socket_.async_wait(asio::socket_base::wait_write,
                       [user = std::move(user)](std::error_code ec) { user->on_writable(ec); });
}

std::size_t TcpTransport::read_some(std::span<std::uint8_t> into, std::error_code& ec) {
    return socket_.read_some(asio::buffer(into.data(), into.size()), ec);
}

std::size_t TcpTransport::write_some(std::span<const asio::const_buffer> buffers,
                                     std::error_code& ec) {
    return socket_.write_some(buffers, ec);
}

void TcpTransport::close() {
    std::error_code ec;
    socket_.close(ec);
}

bool TcpTransport::peer_gone() {
    if (!socket_.is_open()) return false;
    // POLLRDHUP: the peer's FIN, even behind bytes not yet read (a hello, then a timeout).
    pollfd p{socket_.native_handle(), POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool TcpTransport::input_waiting() {
    std::error_code ec;
    return socket_.is_open() && socket_.available(ec) > 0 && !ec;  // FIONREAD
}

}  // namespace hawser::detail
