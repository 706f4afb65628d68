// ClientGroup (see client_group.hpp): many client connections on one Host. An open under way is
// an entry in its loop's tables — its socket and `done` while it connects, then its Conn and
// `done` while it handshakes — so that closing can fail each exactly once; an open connection
// is its Conn alone, in the Host's registry.
// Thread affinity: GroupCore's tables are per loop and touched only on that loop; the
// configuration is immutable after construction.
#include "hawser/client_group.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>

#include <asio/ip/tcp.hpp>
#include <atomic>
#include <latch>
#include <mutex>
#include <unordered_map>

#include "rpc/address.hpp"
#include "rpc/conn.hpp"
#include "rpc/key_file.hpp"
#include "rpc/stream_table.hpp"
#include "rpc/tcp_transport.hpp"

namespace hawser::detail {

using asio::ip::tcp;

class GroupCore : public std::enable_shared_from_this<GroupCore> {
  public:
    using Done = std::function<void(Result<Connection>)>;

    GroupCore(RuntimeImpl& runtime, ClientOptions o)
        : options(with_bounded_timeouts(std::move(o))),
          host(std::make_shared<Host>(runtime, true, options.mark, options.limits, options.timeouts,
                                      options.transport)),
          loops_(runtime.size()) {}

    void init() {
        host->handshake_timeout = options.timeouts.connect;
        host->on_opened = [weak = weak_from_this()](Conn& c) {
            if (auto self = weak.lock()) self->finish(c, {});
        };
        host->on_closed = [weak = weak_from_this()](Conn& c, CloseReason reason) {
            if (auto self = weak.lock()) self->finish(c, reason);
        };
        config_error_ = check();
        if (!config_error_.empty()) return;
        for (const auto& e : options.endpoints) {
            auto addrs = resolve(e);
            if (!addrs) {
                config_error_ = addrs.error().message;
                return;
            }
            endpoints_.push_back(std::move(*addrs));
        }
    }

    const ClientOptions options;
    const std::shared_ptr<Host> host;

    void open(Done done, const GroupOpenOptions& o) {
        host->commands.freeze();
        std::call_once(hooks_published_, [&] { host->publish_hooks(); });
        auto& loop = host->runtime.next_loop();
        auto fail = [&](Errc code, std::string text) {
            loop.post([self = shared_from_this(), &loop, done = std::move(done),
                       e = Error{code, std::move(text)}] {
                if (!self->at(loop).closed) self->host->run_user("open callback", [&] { done(e); });
            });
        };
        if (!config_error_.empty()) return fail(Errc::invalid_argument, config_error_);
        if (o.endpoint != GroupOpenOptions::any_endpoint && o.endpoint >= endpoints_.size())
            return fail(Errc::invalid_argument, "endpoint " + std::to_string(o.endpoint) + " of " +
                                                    std::to_string(endpoints_.size()));
        std::optional<asio::ip::address> source;
        if (!o.source_address.empty()) {
            std::error_code ec;
            source = asio::ip::make_address(o.source_address, ec);
            if (ec)
                return fail(Errc::invalid_argument,
                            "source address '" + o.source_address + "' is not an IP address");
        }
        auto index =
            o.endpoint != GroupOpenOptions::any_endpoint
                ? o.endpoint
                : next_endpoint_.fetch_add(1, std::memory_order_relaxed) % endpoints_.size();
        auto target = pick(endpoints_[index], source);
        opening_count_.fetch_add(1, std::memory_order_relaxed);
        loop.post([self = shared_from_this(), &loop, target, source, epoch = epoch_.load(),
                   done = std::move(done)]() mutable {
            self->connect(loop, target, source, epoch, std::move(done));
        });
    }

    // Closes every connection gracefully and fails every open under way (cancelled): those
    // connecting, those in their handshake, and those posted before this and not yet started.
    void close_all() {
        epoch_.fetch_add(1);
        for (std::size_t i = 0; i < host->runtime.size(); ++i)
            host->runtime.loop(i).dispatch([self = shared_from_this(), i] {
                for (auto& c : self->host->snapshot(i))
                    c->close_gracefully(CloseReason::local_close);
                self->cancel_opens(i);
            });
    }

    // From a non-IO thread: close_all, wait for the connections and handlers to go (up to
    // timeouts.shutdown), then, on every loop, clear the hooks, fail what is still opening and
    // close what is left; then one more turn of every loop, so that what closing posted has run.
    // No hook or callback of this group runs after it returns.
    void shut_down() {
        close_all();
        auto deadline = Clock::now() + options.timeouts.shutdown;
        (void)host->connections.wait_until(deadline);
        host->connections.close();  // a handshake that completes from now on is refused
        host->handlers.close();
        (void)host->handlers.wait_until(deadline);
        on_every_loop([](GroupCore& self, std::size_t i) {
            self.loops_[i].closed = true;
            self.cancel_opens(i);
            self.host->clear_hooks_on(i);
            for (auto& c : self.host->snapshot(i)) c->close(CloseReason::local_close);
        });
        on_every_loop([](GroupCore&, std::size_t) {});
    }

    std::size_t opening() const noexcept { return opening_count_.load(); }
    bool on_own_loop() const noexcept {
        for (std::size_t i = 0; i < host->runtime.size(); ++i)
            if (host->runtime.loop(i).in_loop()) return true;
        return false;
    }

  private:
    // An open after its TCP connect, in its handshake.
    struct Opening {
        std::shared_ptr<Conn> conn;  // kept alive until the handshake ends either way
        Done done;
    };
    // An open in its TCP connect. Keyed by a number, not the socket's address, which a later
    // socket may reuse while the cancelled operation's handler is still queued.
    struct Connecting {
        std::unique_ptr<TcpSocket> socket;
        Done done;
    };
    // What one loop owns; touched on that loop only.
    struct LoopState {
        std::unordered_map<std::uint64_t, Connecting> connecting;
        std::uint64_t next_connecting = 0;
        std::unordered_map<Conn*, Opening> opening;
        bool closed = false;  // the group is gone: no callback runs any more
    };
    LoopState& at(Loop& loop) { return loops_[loop.index()]; }

    template <class F>
    void on_every_loop(F f) {
        std::latch done(static_cast<std::ptrdiff_t>(host->runtime.size()));
        for (std::size_t i = 0; i < host->runtime.size(); ++i)
            host->runtime.loop(i).dispatch([self = shared_from_this(), i, &f, &done] {
                f(*self, i);
                done.count_down();
            });
        done.wait();
    }

    // Fails loop i's opens under way with cancelled, and stops their sockets.
    void cancel_opens(std::size_t i) {
        auto& state = loops_[i];
        auto connecting = std::move(state.connecting);
        state.connecting.clear();
        for (auto& [id, entry] : connecting) {
            std::error_code ignored;
            entry.socket->close(ignored);
            opening_count_.fetch_sub(1, std::memory_order_relaxed);
            host->run_user("open callback", [&] {
                entry.done(Error{Errc::cancelled, "the group closed its connections"});
            });
        }
        std::vector<std::shared_ptr<Conn>> opening;  // closing edits the table
        for (auto& [conn, entry] : state.opening) opening.push_back(entry.conn);
        for (auto& c : opening) c->close(CloseReason::local_close);
    }

    std::string check() const {
        if (options.reconnect.enabled)
            return "a ClientGroup does not reconnect: open again from on_disconnect";
        if (options.cluster) return "a ClientGroup does not follow cluster routes";
        if (options.trust_on_first_use)
            return "a ClientGroup needs server_public_key (no trust on first use)";
        if (options.endpoints.empty()) return "no endpoints";
        if (options.limits.max_pending_calls == 0)
            return "limits.max_pending_calls must be at least 1";
        if (auto bad = StreamTable::check_limits(options.limits); !bad.empty())
            return "limits: " + bad;
        if (!options.server_public_key.empty()) {
            host->server_key = noise::key_from_hex(options.server_public_key);
            if (!host->server_key) return "server_public_key must be 64 hex digits";
        } else if (!options.transport.insecure_plaintext) {
            return "no server_public_key: pin the server's key (hawser-server "
                   "--print-public-key)";
        }
        auto key = client_static_key(options);
        if (!key) return key.error().message;
        host->client_static = *key;
        return {};
    }

    static Result<std::vector<tcp::endpoint>> resolve(const std::string& endpoint) {
        auto hp = parse_host_port(endpoint);
        if (!hp) return hp.error();
        asio::io_context ctx;
        tcp::resolver resolver(ctx);
        std::error_code ec;
        auto results = resolver.resolve(hp->host, hp->port, ec);
        if (ec || results.empty())
            return Error{Errc::invalid_argument,
                         "cannot resolve '" + endpoint + "': " + ec.message()};
        std::vector<tcp::endpoint> out;
        for (const auto& r : results) out.push_back(r.endpoint());
        return out;
    }

    // The first address of the source's family (any, without a source).
    static tcp::endpoint pick(const std::vector<tcp::endpoint>& addrs,
                              const std::optional<asio::ip::address>& source) {
        if (source)
            for (const auto& a : addrs)
                if (a.address().is_v6() == source->is_v6()) return a;
        return addrs.front();
    }

    // SYN retries bound a connect to a silent address (the kernel waits 1, 2, 4, ... s
    // between them): as few as make the total at least timeouts.connect.
    int syn_retries() const {
        auto ms = options.timeouts.connect.count();
        int n = 1;  // n retries give up after 2^(n+1) - 1 seconds: 3, 7, 15, ...
        while (n < 6 && ((1LL << (n + 1)) - 1) * 1000 < ms) ++n;
        return n;
    }

    void connect(Loop& loop, tcp::endpoint target, std::optional<asio::ip::address> source,
                 std::uint64_t epoch, Done done) {
        auto& state = at(loop);
        auto fail = [&](Errc code, std::string text) {
            opening_count_.fetch_sub(1, std::memory_order_relaxed);
            host->counters.closed[std::size_t(CloseReason::connect_failed)].fetch_add(1);
            host->run_user("open callback", [&] { done(Error{code, std::move(text)}); });
        };
        if (state.closed) {
            opening_count_.fetch_sub(1, std::memory_order_relaxed);
            return;
        }
        if (epoch != epoch_.load()) {  // cancelled, not a failed connect
            opening_count_.fetch_sub(1, std::memory_order_relaxed);
            host->run_user("open callback", [&] {
                done(Error{Errc::cancelled, "the group closed its connections"});
            });
            return;
        }
        auto socket = std::make_unique<TcpSocket>(loop.context());
        std::error_code ec;
        socket->open(target.protocol(), ec);
        if (ec) return fail(Errc::not_connected, "socket: " + ec.message());
        // Now, not in the transport: the connect would otherwise set it once more for itself.
        socket->non_blocking(true, ec);
        int retries = syn_retries();
        ::setsockopt(socket->native_handle(), IPPROTO_TCP, TCP_SYNCNT, &retries, sizeof retries);
        if (source) {
            // The port is chosen at connect, per destination, not at bind: one source address
            // then serves ~28,000 connections to every server port, not to all of them together.
            int on = 1;
            if (source->is_v4())
                ::setsockopt(socket->native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
                             sizeof on);
            socket->bind(tcp::endpoint(*source, 0), ec);
            if (ec)
                return fail(Errc::not_connected,
                            "bind to " + source->to_string() + ": " + ec.message());
        }
        auto id = state.next_connecting++;
        auto* raw = socket.get();
        state.connecting.emplace(id, Connecting{std::move(socket), std::move(done)});
        raw->async_connect(target,
                           [self = shared_from_this(), &loop, target, id](std::error_code ec) {
                               self->on_connected(loop, target, id, ec);
                           });
    }

    void on_connected(Loop& loop, const tcp::endpoint& target, std::uint64_t id,
                      std::error_code ec) {
        auto& state = at(loop);
        auto it = state.connecting.find(id);
        if (it == state.connecting.end()) return;  // cancelled: its callback has run
        auto entry = std::move(it->second);
        state.connecting.erase(it);
        if (ec) {
            opening_count_.fetch_sub(1, std::memory_order_relaxed);
            host->counters.closed[std::size_t(CloseReason::connect_failed)].fetch_add(1);
            auto code = ec == asio::error::timed_out ? Errc::timeout : Errc::not_connected;
            auto text = "connect to " + target.address().to_string() + ":" +
                        std::to_string(target.port()) + ": " + ec.message();
            host->run_user("open callback", [&] { entry.done(Error{code, text}); });
            return;
        }
        auto conn = std::make_shared<Conn>(
            loop, host, std::make_unique<TcpTransport>(std::move(*entry.socket)), target);
        state.opening.emplace(conn.get(), Opening{conn, std::move(entry.done)});
        conn->start();
    }

    // The handshake of a connection this group opened ended: open (no reason) or closed.
    void finish(Conn& c, std::optional<CloseReason> reason) {
        auto& table = loops_[c.loop().index()].opening;
        auto it = table.find(&c);
        if (it == table.end()) return;  // an open connection closing later
        auto entry = std::move(it->second);
        table.erase(it);
        opening_count_.fetch_sub(1, std::memory_order_relaxed);
        Result<Connection> result = Connection(entry.conn);
        if (reason)
            result = Error{*reason == CloseReason::handshake_timeout ? Errc::timeout
                           : *reason == CloseReason::local_close || *reason == CloseReason::shutdown
                               ? Errc::cancelled
                               : Errc::not_connected,
                           "handshake failed (" + std::string(to_string(*reason)) + ")"};
        host->run_user("open callback", [&] { entry.done(std::move(result)); });
    }

    std::string config_error_;
    std::vector<std::vector<tcp::endpoint>> endpoints_;
    std::atomic<std::size_t> next_endpoint_{0};
    std::once_flag hooks_published_;
    std::atomic<std::size_t> opening_count_{0};
    std::atomic<std::uint64_t> epoch_{0};  // close_all() calls: opens posted before fail
    std::vector<LoopState> loops_;         // one per loop, touched on that loop
};

}  // namespace hawser::detail

namespace hawser {

ClientGroup::ClientGroup(Runtime& runtime, ClientOptions options)
    : core_(std::make_shared<detail::GroupCore>(runtime.impl(), std::move(options))) {
    core_->init();
}

ClientGroup::~ClientGroup() {
    if (core_->on_own_loop()) {
        // Cannot wait here: close, and let the connections finish on their own.
        spdlog::error(
            "hawser: a ClientGroup destroyed on an IO thread; its callbacks may still run");
        core_->close_all();
        return;
    }
    core_->shut_down();
}

Commands& ClientGroup::commands() {
    return core_->host->commands;
}
void ClientGroup::on_connect(std::function<void(const Connection&)> hook) {
    core_->host->hooks.on_connect = std::move(hook);
}
void ClientGroup::on_disconnect(std::function<void(const Connection&, CloseReason)> hook) {
    core_->host->hooks.on_disconnect = std::move(hook);
}

void ClientGroup::open(std::function<void(Result<Connection>)> done, GroupOpenOptions options) {
    core_->open(std::move(done), options);
}

std::size_t ClientGroup::size() const {
    return core_->host->count();
}
std::size_t ClientGroup::opening() const {
    return core_->opening();
}
void ClientGroup::close_all() {
    core_->close_all();
}
Stats ClientGroup::stats() const {
    return core_->host->stats();
}
const ClientOptions& ClientGroup::options() const {
    return core_->options;
}

}  // namespace hawser
