// Commands: the table of named handlers a server (or a client, for server→client calls) serves.
// Four kinds: console (string → string), DataFrame (DataFrame → DataFrame), and their one-way
// "direct" variants (ZServer4D's console, stream and direct commands: docs/zserver4d.md).
// Register before start(); the table is read-only once connections use it.
//
// A handler for a call may be written in three ways (all run on the connection's IO thread
// unless CommandOptions::on_worker is set):
//
//     sync       std::string (const Request&, std::string_view)
//                DataFrame (const Request&, DataFrame&)
//     coroutine  Task<std::string> (Request, std::string)
//                Task<DataFrame> (Request, DataFrame)
//     delayed    void (const Request&, std::string, Responder<std::string>)
//                (reply later, from any thread)
//
// A handler that throws replies Errc::handler_error with a generic text and an error id; the
// server logs the exception's text under that id (ServerOptions::send_error_details sends the
// text too, for development). Responder::fail sends the application's own text as given. The
// connection survives.
//
// DataFrame-command payloads over Limits::worker_decode_bytes are decoded on the worker pool; the
// handler then runs where it would have run anyway (docs/design.md, "Where decoding runs").
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>

#include "hawser/connection.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/task.hpp"

namespace hawser {

namespace detail {
class ReplySlot;
class CommandStatsCell;
enum class Kind : std::uint8_t;
}  // namespace detail

// What a handler knows about the call it serves. A small value: copy it into coroutines freely.
class Request {
  public:
    Request(Connection connection, std::string_view command)
        : connection_(std::move(connection)), command_(command) {}
    const Connection& connection() const noexcept { return connection_; }
    std::string_view command() const noexcept { return command_; }

  private:
    Connection connection_;
    std::string_view command_;  // points into the command table, which outlives every call
};

// The reply end of one call: complete it once, from any thread, whenever the answer is ready.
// If every copy is dropped without a reply, the caller gets Errc::handler_error.
template <class T>
class Responder {
  public:
    explicit Responder(std::shared_ptr<detail::ReplySlot> slot) : slot_(std::move(slot)) {}
    void reply(T value) const;
    void fail(Errc code, std::string message) const;

  private:
    std::shared_ptr<detail::ReplySlot> slot_;
};

struct CommandOptions {
    bool on_worker = false;  // run on the worker pool: for blocking or heavy handlers
    // Compress this command's replies (when TransportOptions::compression is on and it pays).
    // Turn it off when a reply mixes text a third party chose with secrets: compressed sizes
    // then leak the secrets (CRIME/BREACH; docs/security.md, "Compression and secrets").
    bool compress = true;
    // Reachable before the connection passes the table's gate (Commands::require): login,
    // registration, routing. redis's CMD_NO_AUTH.
    bool public_access = false;
};

namespace detail {
// A call's argument on its way to the handler: its bytes, or the DataFrame already decoded from
// them on the worker pool. A handler that runs at once on the IO thread gets a view of the bytes
// where they were read, valid until it returns: a handler taking a std::string_view costs no
// copy; one that keeps the argument (a coroutine, a delayed reply) gets its own.
using Argument = std::variant<std::string, DataFrame, std::string_view>;

// Where a call's answer goes. A handler that has its value at once answers here and now
// (answer: on the IO thread, with no allocation and no reference counting); one that answers
// later (a Responder, a coroutine) takes a ReplySlot first (keep), which may be completed from
// any thread. The first answer wins.
class ReplyTo {
  public:
    virtual void answer(Errc code, std::string payload_or_message) = 0;
    // The slot for an answer that comes later (null once answered here and now).
    virtual std::shared_ptr<ReplySlot> keep() = 0;

  protected:
    ~ReplyTo() = default;
};
}  // namespace detail

class Commands {
  public:
    // The uniform shape every handler is adapted to: the argument and where the answer goes
    // (null for direct commands).
    using Invoke =
        std::function<void(const Request&, detail::Argument&& argument, detail::ReplyTo*)>;
    struct Entry {
        std::string name;
        detail::Kind kind;
        CommandOptions options;
        Invoke invoke;
        std::shared_ptr<detail::CommandStatsCell> stats;
    };

    Commands();
    ~Commands();
    Commands(const Commands&) = delete;
    Commands& operator=(const Commands&) = delete;

    template <class F>
    Commands& console(std::string name, F&& handler, CommandOptions options = {});
    template <class F>
    Commands& dataframe(std::string name, F&& handler, CommandOptions options = {});
    // F: void (const Request&, std::string_view)
    template <class F>
    Commands& direct_console(std::string name, F&& handler, CommandOptions options = {});
    // F: void (const Request&, DataFrame&)
    template <class F>
    Commands& direct_dataframe(std::string name, F&& handler, CommandOptions options = {});

    // A big-stream handler (streams.hpp), F: void (const Request&, IncomingStream) or
    // Task<void> (Request, IncomingStream). It runs on the connection's IO thread when the peer
    // opens a stream named `name`, and accepts or rejects it (dropping it rejects it).
    template <class F>
    Commands& stream(std::string name, F&& handler, CommandOptions options = {});
    using StreamHandler = std::function<void(const Request&, IncomingStream)>;
    struct StreamEntry {
        std::string name;
        StreamHandler handler;
        bool public_access = false;
    };

    // The one check before every handler (redis's model, not a check in every handler): once
    // set, a call, direct message or stream to a name not registered public_access runs only if
    // `allow` says yes for its connection. Otherwise a call fails Errc::unauthenticated, a
    // stream is reset with it, and a direct message is dropped and counted as an error. `allow`
    // runs on the connection's IO thread, for every message: keep it a lookup. Before start.
    void require(std::function<bool(const Connection&)> allow);
    // Whether a message to `public_access` passes the gate on `connection`.
    bool admits(bool public_access, const Connection& connection) const {
        return public_access || !gate_ || gate_(connection);
    }
    bool gated() const noexcept { return bool(gate_); }
    const StreamEntry* find_stream(std::string_view name) const;

    const Entry* find(std::string_view name) const;
    bool contains(std::string_view name) const { return find(name) != nullptr; }
    void for_each(const std::function<void(const std::string&, const Entry&)>& f) const;

    // Called by servers and clients when they start: later registrations throw.
    void freeze() noexcept { frozen_.store(true); }
    // By the server or client that owns the table, before anything is registered: each of its
    // IO threads keeps figures of its own for every command (summed in stats()).
    void set_io_threads(std::size_t n) noexcept {
        assert(entries_.empty());
        io_threads_ = n;
    }

    // Turns a payload into the handler's argument type; DataFrame payloads are checked DataFrames.
    void set_decode_limits(const DecodeLimits& limits) { limits_ = limits; }
    const DecodeLimits& decode_limits() const noexcept { return limits_; }

  private:
    void add(std::string name, detail::Kind kind, CommandOptions options, Invoke invoke);

    template <class T, class F>
    static Invoke adapt_call(F&& handler, const DecodeLimits* limits);

    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    void add_stream(std::string name, StreamHandler handler, CommandOptions options);

    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
    std::unordered_map<std::string, StreamEntry, Hash, std::equal_to<>> streams_;
    std::atomic<bool> frozen_{false};
    std::size_t io_threads_ = 0;
    DecodeLimits limits_;
    std::function<bool(const Connection&)> gate_;
};

namespace detail {

// Reply plumbing, implemented in the library.
void reply_ok(const std::shared_ptr<ReplySlot>& slot, std::string payload);
void reply_error(const std::shared_ptr<ReplySlot>& slot, Errc code, std::string message);
// A handler failed with `e`: logs it under a fresh error id and replies handler_error with a
// generic text naming that id.
void reply_exception(const std::shared_ptr<ReplySlot>& slot, std::string_view command,
                     std::exception_ptr e);
Kind kind_console();
Kind kind_dataframe();
Kind kind_direct_console();
Kind kind_direct_dataframe();
std::string describe_exception(std::exception_ptr e);
// A coroutine stream handler threw: logged with an error id (the stream was rejected or
// cancelled when its handles went).
void log_stream_handler_exception(std::string_view name, std::exception_ptr e);

template <class T>
std::string to_payload(T&& value) {
    if constexpr (std::is_same_v<std::decay_t<T>, DataFrame>)
        return std::move(value).take_bytes();
    else
        return std::string(std::forward<T>(value));
}

// Whether handler F declares its argument a std::string_view (a function, or a lambda or
// function object with one call operator): it can be given the bytes where they were read.
template <class Signature>
struct views_in_signature : std::false_type {};
template <class R, class A>
struct views_in_signature<R (*)(A, std::string_view)> : std::true_type {};
template <class R, class A>
struct views_in_signature<R (*)(A, std::string_view) noexcept> : std::true_type {};
template <class R, class C, class A>
struct views_in_signature<R (C::*)(A, std::string_view)> : std::true_type {};
template <class R, class C, class A>
struct views_in_signature<R (C::*)(A, std::string_view) const> : std::true_type {};
template <class R, class C, class A>
struct views_in_signature<R (C::*)(A, std::string_view) noexcept> : std::true_type {};
template <class R, class C, class A>
struct views_in_signature<R (C::*)(A, std::string_view) const noexcept> : std::true_type {};
template <class F, class = void>
struct views_argument : views_in_signature<std::decay_t<F>> {};
template <class F>
struct views_argument<F, std::void_t<decltype(&std::decay_t<F>::operator())>>
    : views_in_signature<decltype(&std::decay_t<F>::operator())> {};

// Whether F called with a view returns a value (not a coroutine, which outlives the view).
template <class F, class T>
struct returns_value
    : std::negation<std::is_invocable_r<Task<T>, F&, const Request&, std::string_view>> {};

// The argument's bytes, owned or viewed (not for a decoded DataFrame).
inline std::string_view payload_bytes(const Argument& argument) {
    if (auto* view = std::get_if<std::string_view>(&argument)) return *view;
    return std::get<std::string>(argument);
}

template <class T>
Result<T> from_payload(Argument&& argument, const DecodeLimits& limits) {
    if constexpr (std::is_same_v<T, DataFrame>) {
        if (auto* decoded = std::get_if<DataFrame>(&argument)) return std::move(*decoded);
        return DataFrame::decode(payload_bytes(argument), limits);
    } else {
        if (auto* view = std::get_if<std::string_view>(&argument)) return std::string(*view);
        return std::get<std::string>(std::move(argument));
    }
}

}  // namespace detail

template <class T>
void Responder<T>::reply(T value) const {
    detail::reply_ok(slot_, detail::to_payload(std::move(value)));
}

template <class T>
void Responder<T>::fail(Errc code, std::string message) const {
    detail::reply_error(slot_, code, std::move(message));
}

template <class T, class F>
Commands::Invoke Commands::adapt_call(F&& handler, const DecodeLimits* limits) {
    using Arg = std::conditional_t<std::is_same_v<T, DataFrame>, DataFrame&, std::string_view>;
    return [h = std::forward<F>(handler), limits](const Request& req, detail::Argument&& payload,
                                                  detail::ReplyTo* to) mutable {
        if constexpr (std::conjunction_v<std::negation<std::is_same<T, DataFrame>>,
                                         detail::views_argument<F>, detail::returns_value<F, T>>) {
            // Answered at once from a view: no copy of the argument.
            return to->answer(Errc::ok, detail::to_payload(h(req, detail::payload_bytes(payload))));
        }
        auto arg = detail::from_payload<T>(std::move(payload), *limits);
        if (!arg) return to->answer(arg.error().code, arg.error().message);
        if constexpr (std::is_invocable_v<F&, const Request&, T, Responder<T>>) {
            h(req, std::move(*arg), Responder<T>(to->keep()));  // delayed reply
        } else if constexpr (std::is_invocable_r_v<Task<T>, F&, Request, T>) {
            using Done = std::function<void(std::optional<T>, std::exception_ptr)>;
            detail::run_detached<T>(
                h(req, std::move(*arg)), Done([slot = to->keep(), command = req.command()](
                                                  std::optional<T> v, std::exception_ptr e) {
                    if (e)
                        detail::reply_exception(slot, command, e);
                    else
                        detail::reply_ok(slot, detail::to_payload(std::move(*v)));
                }));
        } else {
            static_assert(std::is_invocable_v<F&, const Request&, Arg>,
                          "handler must be T(const Request&, arg), Task<T>(Request, T) or "
                          "void(const Request&, T, Responder<T>)");
            T& value = *arg;
            if constexpr (std::is_invocable_v<F&, const Request&, T&>)
                to->answer(Errc::ok, detail::to_payload(h(req, value)));
            else
                to->answer(Errc::ok, detail::to_payload(h(req, static_cast<Arg>(value))));
        }
    };
}

template <class F>
Commands& Commands::console(std::string name, F&& handler, CommandOptions options) {
    add(std::move(name), detail::kind_console(), options,
        adapt_call<std::string>(std::forward<F>(handler), &limits_));
    return *this;
}

template <class F>
Commands& Commands::dataframe(std::string name, F&& handler, CommandOptions options) {
    add(std::move(name), detail::kind_dataframe(), options,
        adapt_call<DataFrame>(std::forward<F>(handler), &limits_));
    return *this;
}

template <class F>
Commands& Commands::direct_console(std::string name, F&& handler, CommandOptions options) {
    add(std::move(name), detail::kind_direct_console(), options,
        [h = std::forward<F>(handler)](const Request& req, detail::Argument&& payload,
                                       detail::ReplyTo*) mutable {
            h(req, detail::payload_bytes(payload));
        });
    return *this;
}

template <class F>
Commands& Commands::direct_dataframe(std::string name, F&& handler, CommandOptions options) {
    add(std::move(name), detail::kind_direct_dataframe(), options,
        [h = std::forward<F>(handler), limits = &limits_](
            const Request& req, detail::Argument&& payload, detail::ReplyTo*) mutable {
            auto df = detail::from_payload<DataFrame>(std::move(payload), *limits);
            if (!df) throw Exception(df.error());
            h(req, *df);
        });
    return *this;
}

template <class F>
Commands& Commands::stream(std::string name, F&& handler, CommandOptions options) {
    if constexpr (std::is_invocable_r_v<Task<void>, F&, Request, IncomingStream>) {
        add_stream(
            std::move(name),
            [h = std::forward<F>(handler)](const Request& req, IncomingStream in) mutable {
                detail::run_detached(h(req, std::move(in)),
                                     [command = req.command()](std::exception_ptr e) {
                                         if (e) detail::log_stream_handler_exception(command, e);
                                     });
            },
            options);
    } else {
        static_assert(std::is_invocable_v<F&, const Request&, IncomingStream>,
                      "a stream handler is void(const Request&, IncomingStream) or "
                      "Task<void>(Request, IncomingStream)");
        add_stream(std::move(name), StreamHandler(std::forward<F>(handler)), options);
    }
    return *this;
}

}  // namespace hawser
