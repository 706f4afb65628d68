// Host: what the connections of one Server (or one Client) share, in parts with one owner each:
// the immutable configuration (limits, timeouts, the channel settings), the message-kind
// registry and the command table (filled before start, read-only after), the hooks (one copy
// per loop, owned and cleared by that loop), the registry of live connections, the counters, and
// the gates that shutdown closes.
// Ownership: shared by the Server/Client, by each of its connections and by every handler in
// flight (a worker job, a coroutine, a delayed reply), so none of them outlives the command
// table it runs from.
// Thread safety: registry, counters and the handler gate are thread-safe; configuration is
// written before start. Hooks are copied to each loop at start and read and cleared only on
// that loop (hooks_on).
#pragma once

#include <array>
#include <atomic>
#include <cassert>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/log.hpp"
#include "hawser/commands.hpp"
#include "hawser/options.hpp"
#include "hawser/stats.hpp"
#include "rpc/admission.hpp"
#include "rpc/channel.hpp"
#include "rpc/counters.hpp"
#include "rpc/gate.hpp"
#include "rpc/handshake_pacer.hpp"
#include "rpc/message_kinds.hpp"
#include "wire/frame.hpp"
#include "wire/noise.hpp"
#include "wire/secure_channel.hpp"

namespace hawser::detail {

class Conn;
class RuntimeImpl;

// A timeout as a deadline can hold: a year at most, so that "never" (Milliseconds::max()) added
// to a steady clock's now does not overflow.
inline Milliseconds at_most_a_year(Milliseconds timeout) noexcept {
    return std::min<Milliseconds>(timeout, std::chrono::hours(24 * 365));
}
inline Timeouts bounded(Timeouts t) noexcept {
    for (auto* d : {&t.call, &t.idle, &t.heartbeat, &t.shutdown, &t.connect})
        *d = at_most_a_year(*d);
    return t;
}
// Server or client options with every timeout at most a year: what they keep, and read.
template <class Options>
Options with_bounded_timeouts(Options o) noexcept {
    o.timeouts = bounded(o.timeouts);
    return o;
}

class Host : public std::enable_shared_from_this<Host> {
  public:
    Host(RuntimeImpl& runtime, bool is_client, const ProtocolMark& mark, const Limits& limits,
         const Timeouts& timeouts, const TransportOptions& transport);

    RuntimeImpl& runtime;
    const bool is_client;
    const Limits limits;
    const Timeouts timeouts;
    Counters counters;
    const ChannelShared channel;  // frame and transport settings
    MessageKinds kinds;
    std::chrono::milliseconds handshake_timeout{5000};
    noise::KeyPair static_keys;            // server: set by start()
    std::optional<noise::Key> server_key;  // client: pinned, or learned on first use (loop thread)
    std::optional<noise::KeyPair> client_static;  // client: its own key (client_key_file, ...)
    ClientKeyPolicy client_key_policy;            // server: which client keys are accepted
    bool trust_on_first_use = false;
    bool send_error_details = false;              // peers see error details, not only an error id
    Admission admission;                          // server
    std::atomic<std::size_t> max_connections{0};  // server: 0 = no cap; changed while running
    std::function<void(Conn&)> on_opened;         // the owner's own hook (client connect waiters)
    Commands commands;
    struct Hooks {
        std::function<void(const Connection&)> on_connect;
        std::function<void(const Connection&, CloseReason)> on_disconnect;
    };
    Hooks hooks;  // as configured; publish_hooks() hands a copy to every loop
    std::function<void(Conn&, CloseReason)> on_closed;  // the owner's own hook (client reconnect)
    // Services built on a Server (the cluster): added before start, read-only after; they run
    // on the connection's loop. `redirect`, when a handshake completes and before the
    // connection opens: a text refuses it with a redirect goodbye that carries the text.
    // `closed`, after the application's on_disconnect, for connections that were open.
    struct ServiceHooks {
        std::function<std::optional<std::string>()> redirect;
        std::function<void(ConnectionId)> closed;
    };
    std::vector<ServiceHooks> services;
    RateLimitedLog log;
    // Every open connection holds a pass from `connections`, and every handler in flight (from
    // dispatch until its reply or, for a direct message, its end) one from `handlers`. Shutdown
    // closes a gate (nothing new enters) and waits for what is inside to leave.
    Gate connections;
    Gate handlers;

    // Server: key exchanges a second over all loops (AdmissionOptions::max_handshakes_per_second);
    // 0 = no pace. Before start, from any thread.
    void set_handshake_rate(double per_second);
    // The same while running (a reload): each loop takes it on its own thread.
    void update_handshake_rate(double per_second);
    // The connection's next handshake step: now, or once this server's pace on its loop allows.
    // Loop only.
    void pace_handshake(Loop& loop, std::shared_ptr<Conn> conn);

    // Before the first connection: gives every loop its own copy of the hooks.
    void publish_hooks();
    // The hooks of connections on loop `index`; read on that loop only.
    const Hooks& hooks_on(std::size_t index) const noexcept { return loop_hooks_[index]; }
    Hooks& hooks_on(std::size_t index) noexcept { return loop_hooks_[index]; }
    // Clears every loop's hooks on that loop and returns once all are cleared; after it no hook
    // runs. Handshakes waiting for their pace are closed then too (they would hold this Host,
    // which holds them). From a non-IO thread.
    void clear_hooks();
    // The same for one loop, on that loop.
    void clear_hooks_on(std::size_t index) noexcept { loop_hooks_[index] = {}; }

    static ConnectionId next_id(std::uint8_t loop_index) noexcept;

    // Runs f on loop `key % loops` as application code (run_user): for services that complete
    // the application's callbacks from threads of their own (the cluster's NATS threads), so
    // that those callbacks run where callbacks run, on an IO thread.
    void post_user(std::size_t key, std::string_view what, std::function<void()> f);
    // Queues `job` on the worker pool, for services' blocking work; false when the pool is full.
    // `bytes`: what the job holds, counted against the pool's byte bound until it has run.
    bool try_post_work(std::function<void()> job, std::size_t bytes = 0);
    // The index of the IO loop this thread runs, if it runs one.
    static std::optional<std::size_t> current_loop_index() noexcept;

    // Runs application code (a call's callback, a hook). One that throws is caught, counted and
    // logged at a rate limit, so a bug in it never stops a loop's timers or a connection's reads.
    template <class F>
    void run_user(std::string_view what, F&& f) noexcept {
        try {
            f();
        } catch (...) {
            user_threw(what, std::current_exception());
        }
    }
    void user_threw(std::string_view what, std::exception_ptr e) noexcept;

    // Registry, sharded by IO thread. add/remove on the connection's loop; the rest anywhere.
    void add(const std::shared_ptr<Conn>& conn);
    void remove(const Conn& conn, CloseReason reason);
    std::shared_ptr<Conn> find(ConnectionId id) const;
    std::vector<std::shared_ptr<Conn>> snapshot(std::size_t loop_index) const;
    std::vector<ConnectionId> ids() const;
    std::size_t count() const noexcept { return count_.load(); }

    // The per-message figures of loop `index`: written on that loop only.
    LoopCounters& loop_counters(std::size_t index) noexcept {
        assert(index < shard_count_);  // one per loop, as the registry's shards
        return loop_counters_[index];
    }

    Stats stats() const;

  private:
    void arm_pacer(Loop& loop);

    struct Shard {
        mutable std::mutex mu;
        std::unordered_map<ConnectionId, std::shared_ptr<Conn>> conns;
    };
    std::vector<Hooks> loop_hooks_;
    std::unique_ptr<LoopCounters[]> loop_counters_;  // one per loop of the runtime
    std::unique_ptr<HandshakePacer[]> pacers_;       // one per loop, used there
    std::unique_ptr<Shard[]> shards_;
    std::size_t shard_count_;
    std::atomic<std::size_t> count_{0};
};

}  // namespace hawser::detail
