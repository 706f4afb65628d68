#include "hawser/connection.hpp"

#include <future>

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

template <class T>
Result<T> wait_for(const std::function<void(std::function<void(Result<T>)>)>& start) {
    if (Runtime::on_io_thread())
        return Error{Errc::would_deadlock,
                     "blocking call on an IO thread; use a callback or co_await"};
    auto promise = std::make_shared<std::promise<Result<T>>>();
    auto future = promise->get_future();
    start([promise](Result<T> r) { promise->set_value(std::move(r)); });
    return future.get();  // every call completes: reply, error, timeout or disconnect
}

}  // namespace

void CallHandle::cancel() const {
    if (auto conn = conn_.lock())
        conn->loop().dispatch([conn, id = id_] { conn->cancel_call(id); });
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
    auto addr = ep.address().to_string();
    return (ep.address().is_v6() ? "[" + addr + "]" : addr) + ":" + std::to_string(ep.port());
}

std::optional<std::string> Connection::peer_static_key() const {
    auto c = conn_.lock();
    if (!c || !c->peer_static_key()) return std::nullopt;  // set before any handle exists
    return detail::noise::to_hex(*c->peer_static_key());
}

CallHandle Connection::call_console(std::string_view command, std::string argument,
                                    ConsoleCallback done, CallOptions options) const {
    auto conn = conn_.lock();
    if (!conn) {
        done(gone());  // no loop left to defer to
        return {};
    }
    auto id = conn->reserve_call_id();
    conn->loop().dispatch([conn, id, cmd = std::string(command), arg = std::move(argument),
                           done = std::move(done), options]() mutable {
        conn->start_call(id, Kind::call_console, cmd, std::move(arg), options, std::move(done));
    });
    return CallHandle(conn, id);
}

CallHandle Connection::call_stream(std::string_view command, DataFrame argument,
                                   StreamCallback done, CallOptions options) const {
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
    conn->loop().dispatch([conn, id, cmd = std::string(command),
                           arg = std::move(argument).take_bytes(), raw = std::move(raw),
                           options]() mutable {
        conn->start_call(id, Kind::call_stream, cmd, std::move(arg), options, std::move(raw));
    });
    return CallHandle(conn, id);
}

Result<std::string> Connection::wait_console(std::string_view command, std::string argument,
                                             CallOptions options) const {
    return wait_for<std::string>(
        [&](auto done) { call_console(command, std::move(argument), std::move(done), options); });
}

Result<DataFrame> Connection::wait_stream(std::string_view command, DataFrame argument,
                                          CallOptions options) const {
    return wait_for<DataFrame>(
        [&](auto done) { call_stream(command, std::move(argument), std::move(done), options); });
}

Result<void> Connection::send_console(std::string_view command, std::string argument,
                                      bool compress) const {
    auto conn = conn_.lock();
    if (!conn || !conn->is_open()) return gone();
    if (conn->loop().in_loop())
        return conn->send_direct(Kind::direct_console, command, argument, compress);
    conn->loop().post([conn, cmd = std::string(command), arg = std::move(argument), compress] {
        (void)conn->send_direct(Kind::direct_console, cmd, arg, compress);
    });
    return {};
}

Result<void> Connection::send_stream(std::string_view command, const DataFrame& argument,
                                     bool compress) const {
    auto conn = conn_.lock();
    if (!conn || !conn->is_open()) return gone();
    if (conn->loop().in_loop())
        return conn->send_direct(Kind::direct_stream, command, argument.bytes(), compress);
    conn->loop().post([conn, cmd = std::string(command), arg = argument.bytes(), compress] {
        (void)conn->send_direct(Kind::direct_stream, cmd, arg, compress);
    });
    return {};
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
