// Server: listeners, the Host its connections share, start (everything checked before the
// disk is touched), broadcast and shutdown through the gates.
// Thread affinity: public methods from any non-IO thread (shutdown and for_each refuse to run
// on an IO thread); connections live on their loops.
#include "hawser/server.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <asio/ip/tcp.hpp>
#include <condition_variable>
#include <latch>
#include <mutex>

#include "rpc/address.hpp"
#include "rpc/broadcast.hpp"
#include "rpc/conn.hpp"
#include "rpc/key_file.hpp"
#include "rpc/listener.hpp"

namespace hawser {

using detail::Conn;

struct Server::State {
    explicit State(ServerOptions o) : options(detail::with_bounded_timeouts(std::move(o))) {}
    ServerOptions options;
    std::mutex mu;
    std::condition_variable cv;
    bool started = false;
    bool stopping = false;
    bool stopped = false;
};

namespace {

RuntimeOptions runtime_options(const ServerOptions& o) {
    return {o.io_threads, o.worker_threads, o.max_worker_jobs, o.max_worker_bytes};
}

Result<std::vector<asio::ip::tcp::endpoint>> resolve(const std::string& address) {
    auto hp = detail::parse_host_port(address);
    if (!hp) return hp.error();
    auto port = static_cast<std::uint16_t>(std::stoul(hp->port));
    std::error_code ec;
    auto ip = asio::ip::make_address(hp->host, ec);
    if (!ec) return std::vector{asio::ip::tcp::endpoint(ip, port)};
    asio::io_context ctx;
    asio::ip::tcp::resolver resolver(ctx);
    auto results = resolver.resolve(hp->host, hp->port, asio::ip::tcp::resolver::passive, ec);
    if (ec)
        return Error{Errc::invalid_argument, "cannot resolve '" + hp->host + "': " + ec.message()};
    std::vector<asio::ip::tcp::endpoint> out;
    for (const auto& r : results) out.push_back(r.endpoint());
    return out;
}

// allowed_client_keys and require_client_key, checked before anything touches the disk.
Result<detail::ClientKeyPolicy> client_key_policy(const ServerOptions& o) {
    detail::ClientKeyPolicy policy;
    policy.required = o.require_client_key || !o.allowed_client_keys.empty();
    for (std::size_t i = 0; i < o.allowed_client_keys.size(); ++i) {
        auto key = detail::noise::key_from_hex(o.allowed_client_keys[i]);
        if (!key)
            return Error{Errc::invalid_argument,
                         "allowed_client_keys[" + std::to_string(i) + "] ('" +
                             o.allowed_client_keys[i].substr(0, 80) +
                             "') is not a public key: 64 hex digits expected"};
        policy.allowed.push_back(*key);
    }
    if (policy.required && o.transport.insecure_plaintext)
        return Error{Errc::invalid_argument,
                     "require_client_key / allowed_client_keys need encryption, but "
                     "insecure_plaintext is set"};
    return policy;
}

// The WebSocket settings, checked; null when no listener speaks WebSocket.
Result<std::shared_ptr<const detail::http::UpgradePolicy>> websocket_policy(
    const ServerOptions& o) {
    const auto& w = o.websocket;
    if (w.listen.empty() && !w.on_native_ports)
        return std::shared_ptr<const detail::http::UpgradePolicy>{};
    auto bad = [](std::string why) { return Error{Errc::invalid_argument, "websocket: " + why}; };
    if (w.path.empty() || w.path.front() != '/' || w.path.size() > 1024 ||
        std::any_of(w.path.begin(), w.path.end(),
                    [](char c) { return c <= ' ' || c == 0x7f || c == '?' || c == '#'; }))
        return bad("path must start with '/' and hold no spaces, control characters, '?' or '#'");
    if (w.max_request_bytes < 256 || w.max_request_bytes > 65536)
        return bad("max_request_bytes must be between 256 and 65536");
    if (w.max_headers < 8 || w.max_headers > 1024)
        return bad("max_headers must be between 8 and 1024");
    for (const auto& origin : w.allowed_origins)
        if (origin.empty() || origin.size() > 1024 ||
            std::any_of(origin.begin(), origin.end(), [](char c) { return c <= ' ' || c == 0x7f; }))
            return bad("allowed_origins holds an empty or malformed origin");
    if (w.on_native_ports &&
        std::string_view(reinterpret_cast<const char*>(o.mark.head.data()), 4) == "GET ")
        return bad("on_native_ports cannot tell the protocol mark \"GET \" from an upgrade");
    return std::make_shared<const detail::http::UpgradePolicy>(
        detail::http::UpgradePolicy{w.path, w.allowed_origins, w.max_request_bytes, w.max_headers});
}

std::shared_ptr<detail::Host> make_host(Runtime& runtime, const ServerOptions& o) {
    auto host = std::make_shared<detail::Host>(runtime.impl(), false, o.mark, o.limits, o.timeouts,
                                               o.transport);
    host->handshake_timeout = o.admission.handshake_timeout;
    host->set_handshake_rate(o.admission.max_handshakes_per_second);
    host->max_connections = o.max_connections;
    host->send_error_details = o.send_error_details;
    return host;
}

}  // namespace

Server::Server(ServerOptions options)
    : owned_runtime_(std::make_unique<Runtime>(runtime_options(options))),
      runtime_(owned_runtime_.get()),
      host_(make_host(*runtime_, options)),
      state_(std::make_unique<State>(std::move(options))) {}

Server::Server(Runtime& runtime, ServerOptions options)
    : runtime_(&runtime),
      host_(make_host(*runtime_, options)),
      state_(std::make_unique<State>(std::move(options))) {}

Server::~Server() {
    shutdown();
    // Hooks may capture objects that die with the caller: none runs after this point. Each
    // loop clears its own copy, so no hook is torn down while a loop runs it.
    host_->clear_hooks();
    host_->hooks = {};  // the configured closures die here, not with the last handler in flight
    // host_->services stay: a loop may still read them (they hold only weak references).
}

detail::Host& detail::host_of(Server& server) {
    return *server.host_;
}

Commands& Server::commands() {
    return host_->commands;
}
void Server::on_connect(std::function<void(const Connection&)> hook) {
    host_->hooks.on_connect = std::move(hook);
}
void Server::on_disconnect(std::function<void(const Connection&, CloseReason)> hook) {
    host_->hooks.on_disconnect = std::move(hook);
}
const ServerOptions& Server::options() const {
    return state_->options;
}

Result<void> Server::validate(const ServerOptions& o) {
    if (o.listen.empty()) return Error{Errc::invalid_argument, "no listen address"};
    for (const auto* list : {&o.listen, &o.websocket.listen})
        for (const auto& address : *list)
            if (auto hp = detail::parse_host_port(address); !hp) return hp.error();
    if (o.backlog < 1) return Error{Errc::invalid_argument, "backlog must be at least 1"};
    if (o.limits.max_frame_bytes < 64)
        return Error{Errc::invalid_argument, "max_frame_bytes must be at least 64"};
    if (o.limits.max_pending_calls == 0)  // would refuse every call and never read
        return Error{Errc::invalid_argument, "max_pending_calls must be at least 1"};
    if (o.transport.rekey_messages == 0)
        return Error{Errc::invalid_argument, "rekey_messages must be at least 1"};
    if (auto bad = detail::StreamTable::check_limits(o.limits); !bad.empty())
        return Error{Errc::invalid_argument, bad};
    if (auto websocket = websocket_policy(o); !websocket) return websocket.error();
    if (auto keys = client_key_policy(o); !keys) return keys.error();
    return {};
}

Result<void> Server::start() {
    std::lock_guard lock(state_->mu);
    if (state_->started) return Error{Errc::invalid_argument, "server already started"};
    const auto& o = state_->options;
    // Everything that can be refused is checked, and every port bound, before the data
    // directory is touched: a bad address or a port in use leaves no key behind.
    if (auto valid = validate(o); !valid) return valid.error();
    auto websocket = websocket_policy(o);
    // Native addresses first, then WebSocket-only ones: ports() and websocket_ports() split there.
    std::vector<std::pair<asio::ip::tcp::endpoint, detail::Listener::Kind>> endpoints;
    for (const auto* list : {&o.listen, &o.websocket.listen}) {
        detail::Listener::Kind kind;
        if (list == &o.websocket.listen)
            kind = {*websocket, false};
        else if (o.websocket.on_native_ports)
            kind = {*websocket, true};
        for (const auto& address : *list) {
            auto resolved = resolve(address);
            if (!resolved) return resolved.error();
            for (auto& ep : *resolved) {
                // With reuse_port the kernel would split one port's connections between kinds
                // (port 0 is a fresh port each time).
                for (const auto& [seen, other] : endpoints)
                    if (seen == ep && ep.port() != 0)
                        return Error{Errc::invalid_argument,
                                     address + " is named twice in listen and websocket.listen"};
                endpoints.emplace_back(ep, kind);
            }
        }
    }
    if (auto r = host_->admission.configure(o.admission); !r) return r.error();
    if (auto r = client_key_policy(o); !r)
        return r.error();
    else
        host_->client_key_policy = std::move(*r);
    std::vector<std::shared_ptr<detail::Listener>> listeners;
    auto close_all = [&] {
        for (auto& opened : listeners) opened->close();
    };
    std::size_t next_loop = 0;
    for (const auto& [ep, kind] : endpoints) {
        auto& loop = runtime_->impl().loop(next_loop++ % runtime_->io_threads());
        auto l = std::make_shared<detail::Listener>(loop, host_, kind);
        if (auto r = l->open(ep, o.reuse_port, o.backlog); !r) {
            close_all();
            return r.error();
        }
        listeners.push_back(std::move(l));
    }
    // Listeners accept nothing before start() below, so the key is in place before any handshake.
    if (o.transport.insecure_plaintext) {
        spdlog::warn(
            "hawser: INSECURE plaintext mode: traffic is neither encrypted nor authenticated");
    } else if (o.data_dir.empty()) {
        host_->static_keys = detail::noise::KeyPair::generate();  // in memory only
    } else {
        auto keys = detail::load_or_create_key(o.data_dir);
        if (!keys) {
            close_all();
            return keys.error();
        }
        host_->static_keys = *keys;
    }
    auto capacity = raise_file_limit();
    host_->commands.freeze();
    host_->publish_hooks();
    listeners_ = std::move(listeners);
    for (auto& l : listeners_) l->start();
    state_->started = true;
    if (!state_->options.transport.insecure_plaintext)
        spdlog::info("hawser: server public key {}", public_key());
    spdlog::info(
        "hawser: listening on {} (ports {}), {} IO threads, file limit {} (~{} connections)",
        fmt::join(state_->options.listen, ", "), fmt::join(ports(), ","), runtime_->io_threads(),
        capacity, capacity > 64 ? capacity - 64 : 0);
    return {};
}

Result<std::string> Server::load_public_key(const std::string& data_dir) {
    auto keys = detail::load_or_create_key(data_dir);
    if (!keys) return keys.error();
    return detail::noise::to_hex(keys->public_key);
}

std::string Server::public_key() const {
    return detail::noise::to_hex(host_->static_keys.public_key);
}

std::vector<std::uint16_t> Server::ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& l : listeners_)
        if (!l->websocket_only()) out.push_back(l->port());
    return out;
}

std::vector<std::uint16_t> Server::websocket_ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& l : listeners_)
        if (l->websocket_only()) out.push_back(l->port());
    return out;
}

void Server::shutdown(std::optional<Milliseconds> grace) {
    if (Runtime::on_io_thread())
        throw Exception({Errc::would_deadlock,
                         "Server::shutdown waits for IO threads; call it from another thread"});
    {
        std::lock_guard lock(state_->mu);
        if (state_->stopping) return;
        state_->stopping = true;
    }
    auto wait = grace.value_or(state_->options.timeouts.shutdown);
    // Connections that finish their handshake from now on are turned away with a goodbye.
    host_->connections.close();
    for (auto& l : listeners_) l->close();
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (std::size_t i = 0; i < runtime_->io_threads(); ++i) {
        runtime_->impl().loop(i).post([host = host_, i, deadline] {
            for (auto& c : host->snapshot(i)) c->begin_drain(deadline);
        });
    }
    // Draining ends with a goodbye at the deadline, and closing is bounded too; then force it.
    if (!host_->connections.wait_until(deadline + std::chrono::seconds(6))) {
        spdlog::warn("hawser: {} connections did not close in time; closing them", host_->count());
        for (std::size_t i = 0; i < runtime_->io_threads(); ++i)
            runtime_->impl().loop(i).post([host = host_, i] {
                for (auto& c : host->snapshot(i)) c->close(CloseReason::shutdown);
            });
        (void)host_->connections.wait_until(std::chrono::steady_clock::now() +
                                            std::chrono::seconds(5));
    }
    // Handlers still running (a worker job, a coroutine) finish within the grace period if they
    // can. One that cannot keeps the command table alive by itself (its pass and reply slot
    // hold the host), so returning is safe either way.
    host_->handlers.close();
    if (!host_->handlers.wait_until(deadline))
        spdlog::warn("hawser: {} handlers still running after the shutdown grace period",
                     host_->handlers.inside());
    {
        std::lock_guard lock(state_->mu);
        state_->stopped = true;
    }
    state_->cv.notify_all();
}

void Server::wait() {
    std::unique_lock lock(state_->mu);
    state_->cv.wait(lock, [this] { return state_->stopped; });
}

std::optional<Connection> Server::find(ConnectionId id) const {
    auto c = host_->find(id);
    if (!c) return std::nullopt;
    return Connection(c);
}

std::vector<ConnectionId> Server::connection_ids() const {
    return host_->ids();
}
std::size_t Server::connection_count() const {
    return host_->count();
}

void Server::for_each(const std::function<void(const Connection&)>& visit) const {
    if (Runtime::on_io_thread())
        throw Exception({Errc::would_deadlock,
                         "Server::for_each waits for IO threads; call it from another thread"});
    std::latch done(static_cast<std::ptrdiff_t>(runtime_->io_threads()));
    for (std::size_t i = 0; i < runtime_->io_threads(); ++i) {
        runtime_->impl().loop(i).post([this, i, &visit, &done] {
            for (auto& c : host_->snapshot(i))
                if (c->is_open()) visit(Connection(c));
            done.count_down();
        });
    }
    done.wait();
}

Result<void> Server::broadcast(std::string_view command, std::string_view argument,
                               bool compress) const {
    return detail::fan_out(host_, detail::Kind::direct_console, command, argument, compress);
}

Result<void> Server::broadcast(std::string_view command, const DataFrame& argument,
                               bool compress) const {
    return detail::fan_out(host_, detail::Kind::direct_dataframe, command, argument.bytes(),
                           compress);
}

Result<void> Server::update_limits(std::size_t max_connections, const AdmissionOptions& admission) {
    if (auto updated = host_->admission.update(admission); !updated) return updated;
    host_->max_connections.store(max_connections, std::memory_order_relaxed);
    host_->update_handshake_rate(admission.max_handshakes_per_second);
    return {};
}

Stats Server::stats() const {
    return host_->stats();
}

}  // namespace hawser
