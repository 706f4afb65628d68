// TcpTransport: a Transport over one non-blocking TCP socket, with readiness from the loop's
// reactor (async_wait) so an idle connection holds no buffer and no parked coroutine.
// Ownership: owned by its connection. Thread affinity: the connection's loop.
#pragma once

#include <asio/ip/tcp.hpp>

#include "rpc/transport.hpp"

namespace hawser::detail {

class TcpTransport final : public Transport {
  public:
    // Makes the socket non-blocking and turns Nagle off: messages are batched above.
    explicit TcpTransport(asio::ip::tcp::socket socket);

    void wait_readable(std::shared_ptr<TransportUser> user) override;
    void wait_writable(std::shared_ptr<TransportUser> user) override;
    std::size_t read_some(std::span<std::uint8_t> into, std::error_code& ec) override;
    std::size_t write_some(std::span<const asio::const_buffer> buffers,
                           std::error_code& ec) override;
    void close() override;

  private:
    asio::ip::tcp::socket socket_;
};

}  // namespace hawser::detail
