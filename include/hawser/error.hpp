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
// One list; the enum and its names are both generated from it.
#define HAWSER_ERRC_LIST(X)                                                               \
    X(ok, 0, "success")                                                                   \
    X(unknown_command, 1, "no handler registered under that name")                        \
    X(handler_error, 2, "the handler threw or dropped its reply")                         \
    X(wrong_kind, 3, "console call to a DataFrame command or the reverse")                \
    X(timeout, 4, "the deadline passed before the reply came")                            \
    X(cancelled, 5, "the caller cancelled the call")                                      \
    X(disconnected, 6, "the connection closed before the reply came")                     \
    X(too_many_pending, 7, "the per-connection limit on calls in flight was reached")     \
    X(shutting_down, 8, "the peer is draining and takes no new calls")                    \
    X(bad_payload, 9, "a DataFrame could not be decoded")                                 \
    X(would_deadlock, 10, "a blocking call was made on an IO thread")                     \
    X(not_connected, 11, "a client call with no live connection")                         \
    X(type_mismatch, 12, "a DataFrame value has another type than the one read")          \
    X(end_of_data, 13, "a DataFrame has no more values")                                  \
    X(limit_exceeded, 14, "a configured limit (size, depth, count) was exceeded")         \
    X(invalid_argument, 15, "the API was given something it cannot use")                  \
    X(not_found, 16, "no such record, attachment or database")                            \
    X(storage_error, 17, "the storage engine failed (disk full, corruption, I/O)")        \
    X(overloaded, 18, "the server's work queue is full; try again later")                 \
    X(cluster_unavailable, 19, "the cluster (NATS) cannot be reached from this node now") \
    X(not_allowed, 20, "the server's policy (a hook) refused the request")                \
    X(hash_mismatch, 21, "a stream's content differs from the hash its sender computed")  \
    X(size_mismatch, 22, "a stream carried more or fewer bytes than its declared size")   \
    X(unauthenticated, 23, "log in first, or the credentials or token were not accepted") \
    X(rate_limited, 24, "too many attempts in a short time; wait and try again")          \
    X(already_exists, 25, "the name is taken")

enum class Errc : std::uint16_t {
#define HAWSER_ERRC_ENUM(name, value, what) name = value,
    HAWSER_ERRC_LIST(HAWSER_ERRC_ENUM)
#undef HAWSER_ERRC_ENUM
};
std::string_view to_string(Errc code) noexcept;
// One sentence on what the code means: the generic text a peer sees.
std::string_view describe(Errc code) noexcept;

// Why a connection closed. The numbers travel in goodbye messages: never renumber.
#define HAWSER_CLOSE_REASON_LIST(X)                                                             \
    X(none, 0, "no reason")                                                                     \
    X(peer_closed, 1, "the peer closed the socket")                                             \
    X(local_close, 2, "this side called close()")                                               \
    X(io_error, 3, "the socket failed")                                                         \
    X(bad_mark, 4, "a frame did not start or end with the configured protocol mark")            \
    X(frame_too_large, 5, "a frame announced a body over the configured maximum")               \
    X(malformed, 6, "a frame body is not a valid message")                                      \
    X(slow_consumer, 7, "the send queue stayed over its soft limit or passed its hard limit")   \
    X(idle_timeout, 8, "nothing was received for the idle timeout")                             \
    X(shutdown, 9, "the server is shutting down")                                               \
    X(max_connections, 10, "the server holds its maximum number of connections")                \
    X(protocol_error, 11, "a valid message that breaks the protocol's rules")                   \
    X(connect_failed, 12, "a client could not reach any endpoint")                              \
    X(handshake_failed, 13, "wrong key, wrong prologue (marks, version) or policy mismatch")    \
    X(handshake_timeout, 14, "the handshake did not finish in time")                            \
    X(bad_mac, 15, "a transport message failed authentication")                                 \
    X(too_large, 16, "a message grew past the limit (reassembly or decompression)")             \
    X(denied, 17, "the source address is not allowed")                                          \
    X(rate_limited, 18, "the source address connects too fast")                                 \
    X(too_many_handshakes, 19, "handshakes in progress over the limit")                         \
    X(too_many_per_address, 20,                                                                 \
      "the source address (IPv4 /32, IPv6 /64) holds its connection cap")                       \
    X(key_not_allowed, 21, "the client's static key is not on the server's allow-list")         \
    X(internal_error, 22, "this side failed (for example, encryption failed) and cannot go on") \
    X(redirect, 23, "this cluster node is full or draining; the goodbye names where to go")     \
    X(websocket_error, 24, "a WebSocket upgrade was refused or a WebSocket frame broke RFC 6455")

enum class CloseReason : std::uint16_t {
#define HAWSER_CLOSE_REASON_ENUM(name, value, what) name = value,
    HAWSER_CLOSE_REASON_LIST(HAWSER_CLOSE_REASON_ENUM)
#undef HAWSER_CLOSE_REASON_ENUM
};
#define HAWSER_COUNT_ONE(name, value, what) +1
inline constexpr std::size_t close_reason_count = 0 HAWSER_CLOSE_REASON_LIST(HAWSER_COUNT_ONE);
inline constexpr std::size_t errc_count = 0 HAWSER_ERRC_LIST(HAWSER_COUNT_ONE);
#undef HAWSER_COUNT_ONE
std::string_view to_string(CloseReason reason) noexcept;
std::string_view describe(CloseReason reason) noexcept;

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
