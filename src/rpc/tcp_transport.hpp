// TcpTransport: a Transport over one non-blocking TCP socket, with readiness from the loop's
// reactor (async_wait) so an idle connection holds no buffer and no parked coroutine.
// Ownership: owned by its connection. Thread affinity: the connection's loop.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "rpc/transport.hpp"

namespace hawser::detail {

// A TCP socket bound to the io_context's own executor, not the type-erased any_io_executor: that
// saves 40 bytes in the socket and in every pending wait, per connection. Listeners accept into
// it and clients connect with it, so a transport takes the socket over as it is: converting from
// asio::ip::tcp::socket costs a release and an assign, two epoll_ctl calls and a getsockname per
// connection, which a reconnect storm pays on both ends.
using TcpSocket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;

class TcpTransport final : public Transport {
  public:
    // Takes over the connected `socket` (on the connection's loop), non-blocking and with Nagle
    // off: messages are batched above.
    explicit TcpTransport(TcpSocket socket);

    void wait_readable(std::shared_ptr<TransportUser> user) override;
    void wait_writable(std::shared_ptr<TransportUser> user) override;
    std::size_t read_some(std::span<std::uint8_t> into, std::error_code& ec) override;
    std::size_t write_some(std::span<const asio::const_buffer> buffers,
                           std::error_code& ec) override;
    void close() override;
    bool peer_gone() override;
    bool input_waiting() override;

  private:
    TcpSocket socket_;
};

}  // namespace hawser::detail
