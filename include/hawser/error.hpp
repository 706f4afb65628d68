// Error values for calls and reasons for closed connections: one table for the whole project.
// Thread safety: plain values, safe to copy between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hawser {

// Why a call failed. The numbers travel in error replies (docs/protocol.md): never renumber.
enum class Errc : std::uint16_t {
    ok = 0,
    unknown_command = 1,    // no handler registered under that name
    handler_error = 2,      // the handler threw or dropped its reply
    wrong_kind = 3,         // console call to a stream command or the reverse
    timeout = 4,            // the deadline passed before the reply came
    cancelled = 5,          // the caller cancelled the call
    disconnected = 6,       // the connection closed before the reply came
    too_many_pending = 7,   // the per-connection limit on calls in flight was reached
    shutting_down = 8,      // the peer is draining and takes no new calls
    bad_payload = 9,        // a DataFrame could not be decoded
    would_deadlock = 10,    // a blocking call was made on an IO thread
    not_connected = 11,     // a client call with no live connection
    type_mismatch = 12,     // a DataFrame value has another type than the one read
    end_of_data = 13,       // a DataFrame has no more values
    limit_exceeded = 14,    // a configured limit (size, depth, count) was exceeded
    invalid_argument = 15,  // the API was given something it cannot use
    not_found = 16,         // no such record, attachment or database
    storage_error = 17,     // the storage engine failed (disk full, corruption, I/O)
};
std::string_view to_string(Errc code) noexcept;

// Why a connection closed. The numbers travel in goodbye messages: never renumber.
enum class CloseReason : std::uint16_t {
    none = 0,
    peer_closed = 1,           // the peer closed the socket
    local_close = 2,           // this side called close()
    io_error = 3,              // the socket failed
    bad_mark = 4,              // a frame did not start or end with the configured protocol mark
    frame_too_large = 5,       // a frame announced a body over the configured maximum
    malformed = 6,             // a frame body is not a valid message
    slow_consumer = 7,         // the send queue grew past its limit
    idle_timeout = 8,          // nothing was received for the idle timeout
    shutdown = 9,              // the server is shutting down
    max_connections = 10,      // the server holds its maximum number of connections
    protocol_error = 11,       // a valid message that breaks the protocol's rules
    connect_failed = 12,       // a client could not reach any endpoint
    handshake_failed = 13,     // wrong key, wrong prologue (marks, version) or policy mismatch
    handshake_timeout = 14,    // the handshake did not finish in time
    bad_mac = 15,              // a transport message failed authentication
    too_large = 16,            // a message grew past the limit (reassembly or decompression)
    denied = 17,               // the source address is not allowed
    rate_limited = 18,         // the source address connects too fast
    too_many_handshakes = 19,  // handshakes in progress over the limit
};
inline constexpr std::size_t close_reason_count = 20;
std::string_view to_string(CloseReason reason) noexcept;

struct Error {
    Errc code = Errc::ok;
    std::string message;
};

// Thrown only by the convenience accessors that say so (Result::value, DataFrame::get).
class Exception : public std::runtime_error {
  public:
    explicit Exception(Error error)
        : std::runtime_error(std::string(to_string(error.code)) +
                             (error.message.empty() ? "" : ": " + error.message)),
          error_(std::move(error)) {}
    const Error& error() const noexcept { return error_; }

  private:
    Error error_;
};

// A value or an Error. Errors are values on the data path; value() throws for convenience.
template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}
    Result(Errc code, std::string message = {})
        : v_(std::in_place_index<1>, Error{code, std::move(message)}) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    const Error& error() const { return std::get<1>(v_); }
    T& value() & {
        check();
        return std::get<0>(v_);
    }
    const T& value() const& {
        check();
        return std::get<0>(v_);
    }
    T&& value() && {
        check();
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    T value_or(T fallback) const { return ok() ? std::get<0>(v_) : std::move(fallback); }

  private:
    void check() const {
        if (!ok()) throw Exception(std::get<1>(v_));
    }
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}
    Result(Errc code, std::string message = {}) : error_{code, std::move(message)} {}

    bool ok() const noexcept { return error_.code == Errc::ok; }
    explicit operator bool() const noexcept { return ok(); }
    const Error& error() const { return error_; }
    void value() const {
        if (!ok()) throw Exception(error_);
    }

  private:
    Error error_;
};

}  // namespace hawser
