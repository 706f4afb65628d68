// Transport: the byte stream under one connection — wait for readiness, read into the caller's
// buffer, write a list of buffers, close (redis's ConnectionType is the model). TcpTransport is
// the socket; MemoryTransport is an in-memory pair for tests; a WebSocket transport is another
// implementation and nothing above the Channel changes for it.
// Ownership: owned by its connection (unique_ptr). Thread affinity: the connection's loop.
#pragma once

#include <asio/buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include "hawser/error.hpp"

namespace hawser::detail {

// What a transport reports readiness to. Kept alive by the transport until it has reported.
class TransportUser {
  public:
    virtual void on_readable(std::error_code ec) = 0;
    virtual void on_writable(std::error_code ec) = 0;

  protected:
    ~TransportUser() = default;
};

class Transport {
  public:
    virtual ~Transport() = default;

    // Calls user->on_readable once, when bytes, the end of the stream or an error are ready.
    // At most one wait of each kind at a time.
    virtual void wait_readable(std::shared_ptr<TransportUser> user) = 0;
    // Calls user->on_writable once, when a write would make progress.
    virtual void wait_writable(std::shared_ptr<TransportUser> user) = 0;
    // Never blocks: asio::error::would_block when nothing is ready, asio::error::eof at the end.
    virtual std::size_t read_some(std::span<std::uint8_t> into, std::error_code& ec) = 0;
    // Never blocks: writes what it can of `buffers` (in order), would_block when nothing.
    virtual std::size_t write_some(std::span<const asio::const_buffer> buffers,
                                   std::error_code& ec) = 0;
    // Closes the stream; a pending wait completes with an error or is dropped. Idempotent.
    virtual void close() = 0;
    // Whether the peer has ended its side (it will send nothing more), told without reading:
    // a handshake that waited for its turn is not worth one then. False when unknown.
    virtual bool peer_gone() { return false; }
    // Whether bytes from the peer wait unread (in the kernel, or below this transport), told
    // without reading: a loop behind its sockets has not heard a peer that did speak.
    virtual bool input_waiting() { return false; }

    // Why the last read or write failed, when the transport knows more than its error code (a
    // WebSocket peer that broke RFC 6455): the close reason, and a sentence for the log.
    struct Failure {
        CloseReason reason = CloseReason::io_error;
        std::string detail;
    };
    virtual Failure failure() const { return {}; }
};

}  // namespace hawser::detail
