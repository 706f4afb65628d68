// Connection: a handle to one live connection, on the server or the client side.
// Copyable and cheap (a weak reference and an id); it never keeps a closed connection alive.
// Thread safety: every method may be called from any thread, except the *_context accessors,
// which belong to the connection's IO thread (the thread that runs its handlers and callbacks).
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "hawser/completion.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/streams.hpp"
#include "hawser/task.hpp"

namespace hawser {

namespace detail {
class Conn;
}

// Never reused within a process; the low byte names the IO thread that owns the connection.
using ConnectionId = std::uint64_t;

struct CallOptions {
    // 0 = the connection's default call timeout; longer than a year counts as a year.
    std::chrono::milliseconds timeout{0};
    // false: the argument goes uncompressed, for arguments that mix text a third party chose
    // with secrets (docs/security.md, "Compression and secrets").
    bool compress = true;
};

using ConsoleCallback = std::function<void(Result<std::string>)>;
using DataFrameCallback = std::function<void(Result<DataFrame>)>;

// Cancels a call in flight; its callback then completes with Errc::cancelled (unless the reply
// won the race). Safe from any thread, any number of times. On the connection's IO thread a
// call under way completes within cancel(); otherwise the callback runs later, on that thread.
class CallHandle {
  public:
    CallHandle() = default;
    CallHandle(std::weak_ptr<detail::Conn> conn, std::uint64_t id)
        : conn_(std::move(conn)), id_(id) {}
    void cancel() const;
    std::uint64_t id() const noexcept { return id_; }

  private:
    std::weak_ptr<detail::Conn> conn_;
    std::uint64_t id_ = 0;
};

class Connection {
  public:
    Connection() = default;
    explicit Connection(const std::shared_ptr<detail::Conn>& conn);

    ConnectionId id() const noexcept { return id_; }
    bool valid() const noexcept { return id_ != 0; }
    bool connected() const;  // a snapshot: it may close the next moment
    // Over its soft send limit (Limits::send_queue_soft_bytes): the peer reads slower than it is
    // sent to. Producers should skip or pause rather than queue more. A snapshot.
    bool congested() const;
    std::string remote_address() const;  // "ip:port"
    // When its handshake completed; the epoch once the connection is gone.
    std::chrono::system_clock::time_point connected_since() const;
    // The peer's static public key (64 hex digits), proven by the handshake: on a server the
    // client's (a client with client_key_file or client_private_key), on a client the server's.
    // nullopt for a client without a key, in plaintext mode, and once the connection is gone.
    std::optional<std::string> peer_static_key() const;

    // Calls `command` and hands back its reply, Result<R>: R is std::string for a console
    // command, DataFrame for a DataFrame command (the argument's type says which). The last
    // argument says how the reply comes back, as asio's completion tokens do:
    //   a callable void(Result<R>)  runs once on this connection's IO thread, never inside the
    //                               call itself; call() returns a CallHandle (to cancel)
    //   use_task (the default)      call() returns an awaitable: auto r = co_await conn.call(..)
    //   use_wait                    blocks this thread (never an IO thread: would_deadlock) and
    //                               returns the Result
    // The reply is an error on timeout, disconnect, cancel, refusal (typed: hawser::Errc).
    template <class Token = UseTask>
    auto call(std::string_view command, std::string argument, Token&& token = {},
              CallOptions options = {}) const {
        return complete<std::string>(command, std::move(argument), std::forward<Token>(token),
                                     options);
    }
    template <class Token = UseTask>
    auto call(std::string_view command, DataFrame argument, Token&& token = {},
              CallOptions options = {}) const {
        return complete<DataFrame>(command, std::move(argument), std::forward<Token>(token),
                                   options);
    }

    // One-way ("direct") commands: no reply, no deadline. Fails only if the connection is gone.
    // `compress = false` as for CallOptions::compress.
    Result<void> send(std::string_view command, std::string argument, bool compress = true) const;
    Result<void> send(std::string_view command, const DataFrame& argument,
                      bool compress = true) const;

    // Big streams (streams.hpp) to the peer's stream handler `name`, with the same tokens as
    // call(). open_stream completes with a sink once the receiver accepted; send_stream and
    // send_file complete once the receiver verified the whole content and kept it. Both of
    // those resume from the offset the receiver asks for. `path` is opened here, read later;
    // it must not change meanwhile.
    template <class Token = UseTask>
    auto open_stream(std::string_view name, Token&& token = {}, StreamOptions options = {}) const {
        return detail::complete<StreamSink>(
            [self = *this, name = std::string(name),
             options = std::move(options)](std::function<void(Result<StreamSink>)> done) mutable {
                self.start_open_stream(name, std::move(options), std::move(done));
            },
            std::forward<Token>(token), "Connection::open_stream");
    }
    template <class Token = UseTask>
    auto send_stream(std::string_view name, std::string content, Token&& token = {},
                     StreamOptions options = {}) const {
        return detail::complete<void>(
            [self = *this, name = std::string(name), content = std::move(content),
             options = std::move(options)](std::function<void(Result<void>)> done) mutable {
                self.start_send_stream(name, std::move(content), std::move(options),
                                       std::move(done));
            },
            std::forward<Token>(token), "Connection::send_stream");
    }
    template <class Token = UseTask>
    auto send_file(std::string_view name, std::string path, Token&& token = {},
                   StreamOptions options = {}) const {
        return detail::complete<void>(
            [self = *this, name = std::string(name), path = std::move(path),
             options = std::move(options)](std::function<void(Result<void>)> done) mutable {
                self.start_send_file(name, path, std::move(options), std::move(done));
            },
            std::forward<Token>(token), "Connection::send_file");
    }

    // Sends a goodbye and closes once queued bytes are written. Pending calls fail `disconnected`.
    void close() const;

    // Stops reading from the peer until resume_reading(), as Netty's autoRead off does: what
    // the peer sends waits in the kernel's buffers, then in the peer's send queue, so a
    // consumer that cannot keep up pushes back instead of buffering (the peer sees this
    // connection congested, and its send limits apply). Messages already read when the pause
    // takes effect wait, undelivered. Replies wait too (calls may time out). While paused this
    // side's idle timeout does not run and its heartbeats (Timeouts::heartbeat) still go out;
    // without them the peer's idle timeout may end a long pause, and a peer that vanished is
    // noticed only once reading resumes. Takes effect on the IO thread.
    void pause_reading() const;
    void resume_reading() const;

    // Per-connection state, created on first use. IO thread only. One slot is the application's,
    // the other to the one service built on Hawser the server runs (the cloud's login state).
    template <class T>
    T& context() const {
        return slot<T>(app_slot());
    }
    template <class T>
    T& service_context() const {
        return slot<T>(service_slot());
    }

  private:
    friend class detail::Conn;  // makes handles from its weak reference (Conn::handle)
    Connection(std::weak_ptr<detail::Conn> conn, ConnectionId id) noexcept
        : conn_(std::move(conn)), id_(id) {}

    template <class R, class Argument, class Token>
    auto complete(std::string_view command, Argument argument, Token&& token,
                  CallOptions options) const {
        using Done = std::function<void(Result<R>)>;
        if constexpr (std::is_same_v<std::decay_t<Token>, UseTask>) {
            auto start = [self = *this, cmd = std::string(command), arg = std::move(argument),
                          options](auto done) mutable {
                self.start_call(cmd, std::move(arg), Done(std::move(done)), options);
            };
            return detail::CallbackAwaiter<Result<R>, decltype(start)>{std::move(start), {}};
        } else if constexpr (std::is_same_v<std::decay_t<Token>, UseWait>) {
            return wait_call(command, std::move(argument), options);
        } else {
            static_assert(std::is_invocable_v<std::decay_t<Token>&, Result<R>>,
                          "call()'s token is a callable taking Result<std::string> (console) or "
                          "Result<DataFrame> (DataFrame), hawser::use_task or hawser::use_wait");
            return start_call(command, std::move(argument), Done(std::forward<Token>(token)),
                              options);
        }
    }
    CallHandle start_call(std::string_view command, std::string argument, ConsoleCallback done,
                          CallOptions options) const;
    CallHandle start_call(std::string_view command, DataFrame argument, DataFrameCallback done,
                          CallOptions options) const;
    Result<std::string> wait_call(std::string_view command, std::string argument,
                                  CallOptions options) const;
    Result<DataFrame> wait_call(std::string_view command, DataFrame argument,
                                CallOptions options) const;

    void start_open_stream(const std::string& name, StreamOptions options,
                           std::function<void(Result<StreamSink>)> done) const;
    void start_send_stream(const std::string& name, std::string content, StreamOptions options,
                           std::function<void(Result<void>)> done) const;
    void start_send_file(const std::string& name, const std::string& path, StreamOptions options,
                         std::function<void(Result<void>)> done) const;

    template <class T>
    static T& slot(std::any& a) {
        if (!a.has_value()) a.emplace<T>();
        return std::any_cast<T&>(a);
    }
    std::any& app_slot() const;
    std::any& service_slot() const;

    std::weak_ptr<detail::Conn> conn_;
    ConnectionId id_ = 0;
};

}  // namespace hawser
