// TcpTransport (see tcp_transport.hpp). Thread affinity: the connection's loop.
#include "rpc/tcp_transport.hpp"

namespace hawser::detail {

TcpTransport::TcpTransport(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
    std::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

void TcpTransport::wait_readable(std::shared_ptr<TransportUser> user) {
    socket_.async_wait(asio::socket_base::wait_read,
                       [user = std::move(user)](std::error_code ec) { user->on_readable(ec); });
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

}  // namespace hawser::detail
