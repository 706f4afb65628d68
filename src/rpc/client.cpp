// Client: one logical connection to a server, with connect, reconnect (jittered backoff),
// key pinning or trust on first use, and the Host it shares with its connection.
// Ownership: the Client owns a ClientCore shared with its loop's pending operations.
// Thread affinity: the public methods may be called from any thread and post to the loop;
// the core's state lives on that loop.
#include "hawser/client.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <future>
#include <random>

#include "hawser/cluster.hpp"
#include "rpc/address.hpp"
#include "rpc/cluster_hop.hpp"
#include "rpc/conn.hpp"
#include "rpc/connector.hpp"
#include "rpc/key_file.hpp"
#include "rpc/tcp_transport.hpp"
#include "rpc/websocket_transport.hpp"

namespace hawser {

namespace detail {

// The client's state on its loop: the current connection, a connect in progress, reconnects.
// Thread affinity: loop-only except connection() and connected(), which lock mu_.
class ClientCore : public std::enable_shared_from_this<ClientCore> {
  public:
    ClientCore(RuntimeImpl& runtime, ClientOptions options)
        : options(with_bounded_timeouts(std::move(options))),
          host(std::make_shared<Host>(runtime, true, this->options.mark, this->options.limits,
                                      this->options.timeouts, this->options.transport)),
          loop(runtime.next_loop()),
          reconnect_timer_(loop.context()) {}

    void init() {
        host->on_closed = [weak = weak_from_this()](Conn& c, CloseReason reason) {
            if (auto self = weak.lock()) self->on_closed(c, reason);
        };
        host->on_opened = [weak = weak_from_this()](Conn& c) {
            if (auto self = weak.lock()) self->on_opened(c);
        };
        host->trust_on_first_use = options.trust_on_first_use;
        host->handshake_timeout = options.timeouts.connect;
        if (options.limits.max_pending_calls == 0)
            config_error_ = "limits.max_pending_calls must be at least 1";
        if (auto bad = StreamTable::check_limits(options.limits); !bad.empty())
            config_error_ = "limits: " + bad;
        if (!options.server_public_key.empty()) {
            host->server_key = noise::key_from_hex(options.server_public_key);
            if (!host->server_key) config_error_ = "server_public_key must be 64 hex digits";
        } else if (!options.transport.insecure_plaintext && !options.trust_on_first_use) {
            config_error_ =
                "no server_public_key: pin the server's key (hawser-server --print-public-key) "
                "or set trust_on_first_use";
        }
        if (const auto& ws = options.websocket; ws.enabled) {
            // They go into the upgrade request's lines as they are.
            auto printable = [](const std::string& s) {
                return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c != 0x7f; });
            };
            if (ws.path.empty() || ws.path.front() != '/' || !printable(ws.path) ||
                !printable(ws.host) || !printable(ws.origin))
                config_error_ =
                    "websocket: path must start with '/', and path, host and origin must be "
                    "printable without spaces";
        }
        if (config_error_.empty()) config_error_ = load_client_key();
        entry_key_ = host->server_key;
    }

    const ClientOptions options;
    const std::shared_ptr<Host> host;
    Loop& loop;

    void connect(std::function<void(Result<void>)> done) {
        loop.dispatch([self = shared_from_this(), done = std::move(done)]() mutable {
            self->user_closed_ = false;
            self->connect_on_loop(std::move(done));
        });
    }

    void close() {
        user_closed_ = true;
        redirects_ = 0;
        reconnect_timer_.cancel();
        if (connector_) connector_->cancel();
        if (pending_) pending_->close(CloseReason::local_close);
        // Taken out now, not when its goodbye is flushed: a connect() right after this one
        // must start a new connection, not find this one still open.
        std::shared_ptr<Conn> closing;
        {
            std::lock_guard lock(mu_);
            closing = std::move(conn_);
        }
        if (closing) closing->close_gracefully(CloseReason::local_close);
    }

    // Hooks live on the client's loop, where its connections run: set there, at any time.
    template <class Change>
    void change_hooks(Change&& change) {
        if (loop.in_loop()) return change(host->hooks_on(loop.index()));
        std::promise<void> done;
        loop.post([&] {
            change(host->hooks_on(loop.index()));
            done.set_value();
        });
        done.get_future().wait();
    }

    std::shared_ptr<Conn> current() const {
        std::lock_guard lock(mu_);
        return conn_;
    }

  private:
    // The client's own static key from client_private_key or client_key_file; an error text.
    std::string load_client_key() {
        auto key = client_static_key(options);
        if (!key) return key.error().message;
        host->client_static = *key;
        return {};
    }

    void connect_on_loop(std::function<void(Result<void>)> done) {
        if (!config_error_.empty()) {
            if (done) done(Error{Errc::invalid_argument, config_error_});
            return;
        }
        if (auto c = current(); c && c->is_open()) {
            if (done) done({});
            return;
        }
        if (done) waiters_.push_back(std::move(done));
        if (connector_ || pending_) return;  // already under way
        reconnect_timer_.cancel();
        // Every attempt starts at the entry endpoints with the entry key; a cluster client
        // is then routed from there (on_opened).
        leg_ = Leg::entry;
        followed_redirect_ = false;  // a new attempt may follow one redirect
        if (entry_key_) host->server_key = entry_key_;
        start_connector(options.endpoints);
    }

    // A routed move failed (the target is unreachable or refused the handshake, as a node that
    // just died still is in the others' registries for a moment): back to the entry endpoints,
    // and stay wherever that lands. False if this attempt already fell back.
    bool fall_back_to_entry(const std::string& why) {
        if (leg_ != Leg::hop || user_closed_) return false;
        spdlog::warn("hawser: cluster node unreachable ({}); staying on an entry node", why);
        leg_ = Leg::fallback;
        if (entry_key_) host->server_key = entry_key_;
        start_connector(options.endpoints);
        return true;
    }

    void start_connector(const std::vector<std::string>& endpoints) {
        connector_ = std::make_shared<Connector>(
            loop, endpoints, options.happy_eyeballs_delay, options.timeouts.connect,
            [weak = weak_from_this()](Result<TcpSocket> socket) {
                if (auto self = weak.lock()) self->on_connect_result(std::move(socket));
            });
        connector_->start();
    }

    void on_connect_result(Result<TcpSocket> socket) {
        connector_.reset();
        if (!socket) {
            host->counters.closed[std::size_t(CloseReason::connect_failed)].fetch_add(1);
            if (fall_back_to_entry(socket.error().message)) return;
            return fail_waiters(socket.error());
        }
        if (user_closed_)
            return fail_waiters(Error{Errc::cancelled, "client closed while connecting"});
        // The connection counts as connected once its handshake completes (on_opened).
        std::error_code ec;
        auto remote = socket->remote_endpoint(ec);
        std::unique_ptr<Transport> transport = std::make_unique<TcpTransport>(std::move(*socket));
        if (const auto& ws = options.websocket; ws.enabled) {
            auto host_header = ws.host.empty()
                                   ? host_port_text(remote.address().to_string(), remote.port())
                                   : ws.host;
            transport = std::make_unique<WebSocketTransport>(
                loop.context(), std::move(transport),
                WebSocketTransport::ClientSide{host_header, ws.path, ws.origin});
        }
        pending_ = std::make_shared<Conn>(loop, host, std::move(transport), remote);
        pending_->start();
    }

    void fail_waiters(const Error& error) {
        auto waiters = std::move(waiters_);
        waiters_.clear();
        for (auto& w : waiters) host->run_user("connect callback", [&] { w(error); });
        if (options.reconnect.enabled && !user_closed_) schedule_reconnect();
    }

    void on_opened(Conn& c) {
        if (pending_.get() != &c) return;
        if (leg_ != Leg::hop) entry_key_ = host->server_key;  // learned here on first use, if so
        if (options.cluster && leg_ == Leg::entry) return ask_route(c);
        finish_connect();
    }

    void finish_connect() {
        {
            std::lock_guard lock(mu_);
            conn_ = pending_;
        }
        pending_.reset();
        attempt_ = 0;
        auto waiters = std::move(waiters_);
        waiters_.clear();
        for (auto& w : waiters) host->run_user("connect callback", [&] { w({}); });
    }

    // Cluster entry: ask the node we reached where to go. Stays there if it is the answer, or
    // if the server is not clustered or cannot answer; otherwise moves, once per attempt.
    void ask_route(Conn& c) {
        auto id = c.reserve_call_id();
        std::weak_ptr<Conn> conn = c.weak_from_this();
        CallOptions call;
        call.timeout = options.timeouts.connect;
        c.start_call(id, Kind::call_dataframe, Cluster::route_command, {}, call,
                     [weak = weak_from_this(), conn](Result<std::string> r) {
                         auto self = weak.lock();
                         // A connection closing fails its calls before on_closed runs: then
                         // on_closed, not this, decides what the connect attempt became.
                         auto c = conn.lock();
                         if (self && c && self->pending_ == c && c->is_open())
                             self->on_route(std::move(r));
                     });
    }

    void on_route(Result<std::string> reply) {
        auto target = reply ? parse_route_reply(*reply, options.limits.dataframe,
                                                options.transport.insecure_plaintext)
                            : Result<ClusterHop>(reply.error());
        if (!target || target->node == target->here) {
            if (!target)
                spdlog::warn("hawser: cluster route failed ({}); staying on the entry node",
                             target.error().message);
            return finish_connect();
        }
        // Move: the entry node vouches for the target's key over the channel it authenticated.
        spdlog::info("hawser: routed to cluster node {} ({})", target->node,
                     target->endpoints.front());
        auto entry = std::move(pending_);
        entry->close_gracefully(CloseReason::local_close);
        hop(*target);
    }

    void hop(const ClusterHop& target) {
        leg_ = Leg::hop;
        if (target.key) host->server_key = target.key;
        start_connector(target.endpoints);
    }

    // A full or draining cluster node refused the connection with a goodbye naming where to
    // go. Followed from an entry endpoint only, once per attempt; false if it is not followed.
    bool follow_redirect(const std::string& text) {
        if (leg_ != Leg::entry || followed_redirect_ || user_closed_) return false;
        auto target = parse_redirect(text, options.transport.insecure_plaintext);
        if (!target) {
            spdlog::warn("hawser: unusable redirect from a cluster node: {}",
                         target.error().message);
            return false;
        }
        spdlog::info("hawser: cluster node redirected us to {} ({})", target->node,
                     target->endpoints.front());
        followed_redirect_ = true;
        hop(*target);
        return true;
    }

    void on_closed(Conn& c, CloseReason reason) {
        if (pending_.get() == &c) {  // the handshake (or the route request) failed
            pending_.reset();
            if (reason == CloseReason::redirect && follow_redirect(c.redirect_text())) return;
            if (fall_back_to_entry(std::string(to_string(reason)))) return;
            if (user_closed_)  // as when close() comes before the TCP connect completes
                return fail_waiters(Error{Errc::cancelled, "client closed while connecting"});
            auto why = c.transport_failure();
            return fail_waiters(
                Error{Errc::not_connected, "handshake failed (" + std::string(to_string(reason)) +
                                               ")" + (why.empty() ? "" : ": " + why)});
        }
        {
            std::lock_guard lock(mu_);
            if (conn_.get() != &c) return;
            conn_.reset();
        }
        if (reason != CloseReason::redirect) {
            redirects_ = 0;
        } else if (options.reconnect.enabled && !user_closed_) {
            // Told where to go once open (a client that asks no route learns of a full node
            // just after its handshake): reconnect there now, as NATS clients leave a server
            // in lame-duck mode. Once per connect attempt: sent on again within one (a target
            // that redirects too, or that just died and sent us back), it waits for the
            // backoff, which grows with the redirects in a row.
            ++redirects_;
            if (!followed_redirect_) {
                leg_ = Leg::entry;
                if (follow_redirect(c.redirect_text())) return;
            }
            attempt_ = std::max(attempt_, redirects_);
        }
        if (options.reconnect.enabled && !user_closed_) {
            spdlog::info("hawser: client disconnected ({}); reconnecting", to_string(reason));
            schedule_reconnect();
        }
    }

    void schedule_reconnect() {
        using namespace std::chrono;
        thread_local std::minstd_rand rng{std::random_device{}()};
        auto base = options.reconnect.min_delay * (1LL << std::min(attempt_, 20u));
        auto capped =
            std::min<milliseconds>(duration_cast<milliseconds>(base), options.reconnect.max_delay);
        // Full jitter over the upper half spreads a reconnect storm after a server restart.
        auto delay = milliseconds(capped.count() / 2 + std::uniform_int_distribution<long long>(
                                                           0, capped.count() / 2)(rng));
        ++attempt_;
        reconnect_timer_.expires_after(delay);
        reconnect_timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
            if (ec) return;
            if (auto self = weak.lock(); self && !self->user_closed_)
                self->connect_on_loop(nullptr);
        });
    }

    mutable std::mutex mu_;
    std::shared_ptr<Conn> conn_;
    std::shared_ptr<Connector> connector_;
    std::shared_ptr<Conn> pending_;        // connected, handshake (or cluster routing) in progress
    std::optional<noise::Key> entry_key_;  // the key pinned for the entry endpoints
    // Which leg of a connect attempt is under way: to an entry endpoint (a cluster client then
    // asks where to go), to where a cluster node sent it, or back to an entry after that failed.
    enum class Leg { entry, hop, fallback };
    Leg leg_ = Leg::entry;
    bool followed_redirect_ = false;  // in this connect attempt
    unsigned redirects_ = 0;          // redirect closes in a row: the backoff's exponent
    std::string config_error_;
    std::vector<std::function<void(Result<void>)>> waiters_;
    asio::steady_timer reconnect_timer_;
    unsigned attempt_ = 0;
    bool user_closed_ = false;
};

}  // namespace detail

namespace {
std::shared_ptr<detail::ClientCore> make_core(Runtime& runtime, ClientOptions options) {
    auto core = std::make_shared<detail::ClientCore>(runtime.impl(), std::move(options));
    core->init();
    return core;
}
}  // namespace

Client::Client(ClientOptions options)
    : owned_runtime_(
          std::make_unique<Runtime>(RuntimeOptions{.io_threads = 1, .worker_threads = 1})),
      core_(make_core(*owned_runtime_, std::move(options))) {}

Client::Client(Runtime& runtime, ClientOptions options)
    : core_(make_core(runtime, std::move(options))) {}

Client::~Client() {
    close();
    auto& host = *core_->host;
    if (Runtime::on_io_thread()) {
        // Cannot wait on an IO thread. On the client's own loop its hooks go now, before the
        // goodbye that close() queued is flushed; callbacks of calls in flight may still run.
        if (core_->loop.in_loop())
            host.clear_hooks_on(core_->loop.index());
        else
            spdlog::error(
                "hawser: a Client destroyed on another IO thread; its hooks and "
                "callbacks may still run");
        return;
    }
    auto deadline = std::chrono::steady_clock::now() + core_->options.timeouts.shutdown;
    (void)host.connections.wait_until(deadline);
    // A handler of the client's commands on a worker thread may use what the caller is about
    // to destroy: none runs after this point (as ClientGroup's shut_down).
    host.handlers.close();
    (void)host.handlers.wait_until(deadline);
    // Hooks may capture objects that die with the caller: none runs after this point.
    std::promise<void> cleared;
    core_->loop.dispatch([core = core_, &cleared] {
        core->host->clear_hooks_on(core->loop.index());
        for (auto& c : core->host->snapshot(core->loop.index())) c->close(CloseReason::local_close);
        cleared.set_value();
    });
    cleared.get_future().wait();
}

Commands& Client::commands() {
    return core_->host->commands;
}
void Client::on_connect(std::function<void(const Connection&)> hook) {
    core_->change_hooks([&](detail::Host::Hooks& h) { h.on_connect = std::move(hook); });
}
void Client::on_disconnect(std::function<void(const Connection&, CloseReason)> hook) {
    core_->change_hooks([&](detail::Host::Hooks& h) { h.on_disconnect = std::move(hook); });
}

Result<void> Client::connect() {
    if (Runtime::on_io_thread())
        return Error{Errc::would_deadlock,
                     "blocking connect on an IO thread; use the callback or co_await"};
    std::promise<Result<void>> promise;
    auto future = promise.get_future();
    connect([&promise](Result<void> r) { promise.set_value(std::move(r)); });
    return future.get();
}

void Client::connect(std::function<void(Result<void>)> done) {
    core_->host->commands.freeze();
    core_->connect(std::move(done));
}

void Client::close() {
    core_->loop.dispatch([core = core_] { core->close(); });
}

bool Client::connected() const {
    auto c = core_->current();
    return c && c->is_open();
}

Connection Client::connection() const {
    return Connection(core_->current());
}

Stats Client::stats() const {
    return core_->host->stats();
}
const ClientOptions& Client::options() const {
    return core_->options;
}

}  // namespace hawser
