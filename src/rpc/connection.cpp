// Connection: the public handle of a connection, a weak reference plus the id. Every method
// may be called from any thread: work is posted to the connection's loop (bounded by the
// connection's send limit) or run inline when already on it.
#include "hawser/connection.hpp"

#include <future>

#include "rpc/address.hpp"
#include "rpc/conn.hpp"

namespace hawser {

using detail::Conn;
using detail::Kind;

namespace {

Error gone() {
    return Error{Errc::disconnected, "connection is closed"};
}

// Runs an operation on the connection's loop, or fails the callback if the connection is gone.
template <class Op>
void on_loop(const std::weak_ptr<Conn>& weak, Op&& op, const std::function<void(Error)>& fail) {
    auto conn = weak.lock();
    if (!conn) return fail(gone());
    conn->loop().dispatch([conn, op = std::forward<Op>(op)]() mutable { op(*conn); });
}

// Runs op on the connection's loop: now if already there, else posted and counted as `bytes`
// until it runs, so that a producer faster than the loop gets `overloaded` instead of an
// unbounded queue of posted work.
template <class Op>
Result<void> on_loop_counted(const std::shared_ptr<Conn>& conn, std::size_t bytes, Op&& op) {
    if (conn->loop().in_loop()) {
        op(*conn);
        return {};
    }
    if (!conn->reserve_post(bytes))
        return Error{Errc::overloaded, "too much is waiting for this connection's IO thread"};
    conn->loop().post([conn, bytes, op = std::forward<Op>(op)]() mutable {
        conn->release_post(bytes);
        op(*conn);
    });
    return {};
}

// A call refused before it reached the loop (too much waits for it) still completes there, as
// every call does (Conn::refuse_call bounds how many wait).
template <class Callback>
void refuse_on_loop(Conn& conn, std::shared_ptr<Callback> done, Error e) {
    conn.refuse_call([done = std::move(done), e = std::move(e)] { (*done)(e); });
}

}  // namespace

void CallHandle::cancel() const {
    auto conn = conn_.lock();
    if (!conn) return;
    // On its loop, a call under way is cancelled now. One started from another thread may
    // still wait in the loop's queue to start: the cancel is posted behind it, not lost.
    if (conn->loop().in_loop() && conn->cancel_call(id_)) return;
    conn->loop().post([conn, id = id_] { conn->cancel_call(id); });
}

Connection::Connection(const std::shared_ptr<Conn>& conn)
    : conn_(conn), id_(conn ? conn->id() : 0) {}

bool Connection::connected() const {
    auto c = conn_.lock();
    return c && c->is_open();
}

bool Connection::congested() const {
    auto c = conn_.lock();
    return c && c->congested();
}

std::string Connection::remote_address() const {
    auto c = conn_.lock();
    if (!c) return {};
    const auto& ep = c->remote();
    return detail::host_port_text(ep.address().to_string(), ep.port());
}

std::chrono::system_clock::time_point Connection::connected_since() const {
    auto c = conn_.lock();
    return c ? c->opened_at() : std::chrono::system_clock::time_point{};  // set before any handle
}

std::optional<std::string> Connection::peer_static_key() const {
    auto c = conn_.lock();
    if (!c || !c->peer_static_key()) return std::nullopt;  // set before any handle exists
    return detail::noise::to_hex(*c->peer_static_key());
}

CallHandle Connection::start_call(std::string_view command, std::string argument,
                                  ConsoleCallback done, CallOptions options) const {
    auto conn = conn_.lock();
    if (!conn) {
        done(gone());  // no loop left to defer to
        return {};
    }
    auto id = conn->reserve_call_id();
    if (conn->loop().in_loop()) {  // the common case in handlers and callbacks: nothing to post
        conn->start_call(id, Kind::call_console, command, std::move(argument), options,
                         std::move(done));
        return CallHandle(conn, id);
    }
    auto size = argument.size();
    auto refused = std::make_shared<ConsoleCallback>(std::move(done));  // back if not posted
    auto r = on_loop_counted(conn, size,
                             [id, cmd = std::string(command), arg = std::move(argument), refused,
                              options](Conn& c) mutable {
                                 c.start_call(id, Kind::call_console, cmd, std::move(arg), options,
                                              std::move(*refused));
                             });
    if (!r) refuse_on_loop(*conn, refused, r.error());
    return CallHandle(conn, id);
}

CallHandle Connection::start_call(std::string_view command, DataFrame argument,
                                  DataFrameCallback done, CallOptions options) const {
    auto conn = conn_.lock();
    if (!conn) {
        done(gone());
        return {};
    }
    auto id = conn->reserve_call_id();
    const DecodeLimits* limits = &conn->host().limits.dataframe;
    auto raw = [done = std::move(done), limits](Result<std::string> r) {
        if (!r) return done(r.error());
        done(DataFrame::decode(*r, *limits));
    };
    auto bytes = std::move(argument).take_bytes();
    if (conn->loop().in_loop()) {
        conn->start_call(id, Kind::call_dataframe, command, std::move(bytes), options,
                         std::move(raw));
        return CallHandle(conn, id);
    }
    auto size = bytes.size();
    auto refused = std::make_shared<detail::RawCallback>(std::move(raw));  // back if not posted
    auto r = on_loop_counted(conn, size,
                             [id, cmd = std::string(command), arg = std::move(bytes), refused,
                              options](Conn& c) mutable {
                                 c.start_call(id, Kind::call_dataframe, cmd, std::move(arg),
                                              options, std::move(*refused));
                             });
    if (!r) refuse_on_loop(*conn, refused, r.error());
    return CallHandle(conn, id);
}

Result<std::string> Connection::wait_call(std::string_view command, std::string argument,
                                          CallOptions options) const {
    return detail::wait_for<std::string>(
        [&](auto done) {
            start_call(command, std::move(argument), ConsoleCallback(std::move(done)), options);
        },
        "call");
}

Result<DataFrame> Connection::wait_call(std::string_view command, DataFrame argument,
                                        CallOptions options) const {
    return detail::wait_for<DataFrame>(
        [&](auto done) {
            start_call(command, std::move(argument), DataFrameCallback(std::move(done)), options);
        },
        "call");
}

Result<void> Connection::send(std::string_view command, std::string argument, bool compress) const {
    auto conn = conn_.lock();
    if (!conn || !conn->is_open()) return gone();
    if (conn->loop().in_loop())
        return conn->send_direct(Kind::direct_console, command, argument, compress);
    auto size = argument.size();
    return on_loop_counted(
        conn, size, [cmd = std::string(command), arg = std::move(argument), compress](Conn& c) {
            (void)c.send_direct(Kind::direct_console, cmd, arg, compress);
        });
}

Result<void> Connection::send(std::string_view command, const DataFrame& argument,
                              bool compress) const {
    auto conn = conn_.lock();
    if (!conn || !conn->is_open()) return gone();
    if (conn->loop().in_loop())
        return conn->send_direct(Kind::direct_dataframe, command, argument.bytes(), compress);
    return on_loop_counted(conn, argument.bytes().size(),
                           [cmd = std::string(command), arg = argument.bytes(), compress](Conn& c) {
                               (void)c.send_direct(Kind::direct_dataframe, cmd, arg, compress);
                           });
}

void Connection::pause_reading() const {
    on_loop(
        conn_, [](Conn& c) { c.pause_reading(true); }, [](Error) {});
}

void Connection::resume_reading() const {
    on_loop(
        conn_, [](Conn& c) { c.pause_reading(false); }, [](Error) {});
}

void Connection::close() const {
    on_loop(
        conn_, [](Conn& c) { c.close_gracefully(CloseReason::local_close); }, [](Error) {});
}

std::any& Connection::app_slot() const {
    auto conn = conn_.lock();
    if (!conn) throw Exception(gone());
    assert(conn->loop().in_loop());
    return conn->app_context();
}

std::any& Connection::service_slot() const {
    auto conn = conn_.lock();
    if (!conn) throw Exception(gone());
    assert(conn->loop().in_loop());
    return conn->service_context();
}

}  // namespace hawser
