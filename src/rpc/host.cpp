// Host (see host.hpp): the registry of live connections (sharded by loop), the hooks copied
// to each loop, statistics. Thread safety as in host.hpp.
#include "rpc/host.hpp"

#include <latch>

#include "rpc/command_stats.hpp"
#include "rpc/conn.hpp"

namespace hawser::detail {

Host::Host(RuntimeImpl& rt, bool is_client, const ProtocolMark& mark, const Limits& limits,
           const Timeouts& timeouts, const TransportOptions& transport)
    : runtime(rt),
      is_client(is_client),
      limits(limits),
      timeouts(bounded(timeouts)),
      // In the secure transport a frame carries one Noise message of up to 65,535 bytes, full of
      // records, whatever this side's max_frame_bytes: the limit applies to the messages in it.
      channel{FrameConfig{mark, transport.insecure_plaintext ? limits.max_frame_bytes
                                                             : std::uint32_t(noise::max_message)},
              transport, limits.max_frame_bytes},
      loop_hooks_(rt.size()),
      loop_counters_(std::make_unique<LoopCounters[]>(rt.size())),
      pacers_(std::make_unique<HandshakePacer[]>(rt.size())),
      shards_(std::make_unique<Shard[]>(rt.size())),
      shard_count_(rt.size()) {
    commands.set_decode_limits(limits.dataframe);
    commands.set_io_threads(rt.size());
    register_session_kinds(kinds);
    register_stream_kinds(kinds);
}

void Host::set_handshake_rate(double per_second) {
    for (std::size_t i = 0; i < shard_count_; ++i)
        pacers_[i].set_rate(per_second / double(shard_count_));
}

void Host::update_handshake_rate(double per_second) {
    for (std::size_t i = 0; i < shard_count_; ++i)
        runtime.loop(i).dispatch([self = shared_from_this(), i, per_second] {
            auto& pacer = self->pacers_[i];
            pacer.set_rate(per_second / double(self->shard_count_));
            // What waits goes on at the new rate: a wake-up now replaces the old rate's.
            pacer.armed = false;
            self->arm_pacer(self->runtime.loop(i));
        });
}

void Host::pace_handshake(Loop& loop, std::shared_ptr<Conn> conn) {
    auto& pacer = pacers_[loop.index()];
    if (pacer.take(loop.now())) return conn->handshake_turn();
    pacer.wait(std::move(conn));
    arm_pacer(loop);
}

void Host::arm_pacer(Loop& loop) {
    auto& pacer = pacers_[loop.index()];
    auto due = pacer.next_due(loop.now());
    if (pacer.armed || !due) return;
    pacer.armed = true;
    // Weak: a Host that goes first (its connections closed) leaves nothing to release.
    loop.post_at(*due, [weak = weak_from_this(), &loop, wake_up = ++pacer.wake_up] {
        auto self = weak.lock();
        if (!self) return;
        auto& p = self->pacers_[loop.index()];
        if (p.wake_up != wake_up) return;  // replaced by a sooner one (a rate change)
        p.armed = false;
        for (auto& conn : p.release(loop.now())) conn->handshake_turn();
        self->arm_pacer(loop);
    });
}

void Host::publish_hooks() {
    for (auto& h : loop_hooks_) h = hooks;
}

void Host::clear_hooks() {
    std::latch cleared(static_cast<std::ptrdiff_t>(loop_hooks_.size()));
    for (std::size_t i = 0; i < loop_hooks_.size(); ++i)
        runtime.loop(i).dispatch([this, i, &cleared] {
            loop_hooks_[i] = {};
            pacers_[i].stop();  // a handshake read after this is not held: nothing waits
            for (auto& conn : pacers_[i].take_all())
                if (!conn->is_closed()) conn->close(CloseReason::shutdown);
            cleared.count_down();
        });
    cleared.wait();
}

ConnectionId Host::next_id(std::uint8_t loop_index) noexcept {
    // Counts up from the clock at first use, in microseconds: a restarted process does not
    // hand out its last run's ids (unless that run opened more than one connection per
    // microsecond of its life), so cluster addresses, node name and id, stay unique.
    static std::atomic<std::uint64_t> sequence{
        std::uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count())};
    return sequence.fetch_add(1, std::memory_order_relaxed) << 8 | loop_index;
}

void Host::post_user(std::size_t key, std::string_view what, std::function<void()> f) {
    runtime.loop(key % runtime.size())
        .post([this, self = shared_from_this(), what = std::string(what), f = std::move(f)] {
            run_user(what, f);
        });
}

bool Host::try_post_work(std::function<void()> job, std::size_t bytes) {
    return runtime.workers().try_post(bytes, std::move(job));
}

std::optional<std::size_t> Host::current_loop_index() noexcept {
    auto* loop = Loop::current();
    return loop ? std::optional<std::size_t>(loop->index()) : std::nullopt;
}

void Host::add(const std::shared_ptr<Conn>& conn) {
    auto& shard = shards_[conn->loop().index() % shard_count_];
    {
        std::lock_guard lock(shard.mu);
        shard.conns.emplace(conn->id(), conn);
    }
    count_.fetch_add(1);
    counters.opened.fetch_add(1, std::memory_order_relaxed);
}

void Host::remove(const Conn& conn, CloseReason reason) {
    counters.closed[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
    auto& shard = shards_[conn.loop().index() % shard_count_];
    std::shared_ptr<Conn> last;  // released outside the lock
    {
        std::lock_guard lock(shard.mu);
        auto it = shard.conns.find(conn.id());
        if (it == shard.conns.end()) return;  // closed before its handshake completed
        last = std::move(it->second);
        shard.conns.erase(it);
    }
    count_.fetch_sub(1);
}

std::shared_ptr<Conn> Host::find(ConnectionId id) const {
    auto& shard = shards_[(id & 0xff) % shard_count_];
    std::lock_guard lock(shard.mu);
    auto it = shard.conns.find(id);
    return it == shard.conns.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Conn>> Host::snapshot(std::size_t loop_index) const {
    auto& shard = shards_[loop_index % shard_count_];
    std::lock_guard lock(shard.mu);
    std::vector<std::shared_ptr<Conn>> out;
    out.reserve(shard.conns.size());
    for (auto& [id, c] : shard.conns) out.push_back(c);
    return out;
}

std::vector<ConnectionId> Host::ids() const {
    std::vector<ConnectionId> out;
    for (std::size_t i = 0; i < shard_count_; ++i) {
        std::lock_guard lock(shards_[i].mu);
        for (auto& [id, c] : shards_[i].conns) out.push_back(id);
    }
    return out;
}

void Host::user_threw(std::string_view what, std::exception_ptr e) noexcept {
    counters.callback_errors.fetch_add(1, std::memory_order_relaxed);
    try {
        log.warn(std::string("throw:") + std::string(what),
                 "hawser: " + std::string(what) + " threw: " + describe_exception(e));
    } catch (...) {  // out of memory while logging: the count is kept
    }
}

Stats Host::stats() const {
    Stats s;
    s.connections = count_.load();
    s.opened = counters.opened.load();
    s.refused = counters.refused.load();
    for (std::size_t i = 0; i < close_reason_count; ++i)
        s.closed_by_reason[i] = counters.closed[i].load();
    s.late_replies = counters.late_replies.load();
    s.handshakes = counters.handshakes.load();
    s.callback_errors = counters.callback_errors.load();
    s.overloaded = counters.overloaded.load();
    for (std::size_t i = 0; i < runtime.size(); ++i) {
        const auto& l = loop_counters_[i];
        s.frames_in += l.frames_in.load(std::memory_order_relaxed);
        s.frames_out += l.frames_out.load(std::memory_order_relaxed);
        s.bytes_in += l.bytes_in.load(std::memory_order_relaxed);
        s.bytes_out += l.bytes_out.load(std::memory_order_relaxed);
        s.calls_out += l.calls_out.load(std::memory_order_relaxed);
        s.rekeys += l.rekeys.load(std::memory_order_relaxed);
        s.send_queue_bytes += l.send_queue_bytes.load(std::memory_order_relaxed);
        s.send_buffer_bytes += l.send_buffer_bytes.load(std::memory_order_relaxed);
        s.handshakes_waiting += l.handshakes_waiting.load(std::memory_order_relaxed);
    }
    s.broadcast_skipped = counters.broadcast_skipped.load();
    s.worker_jobs = runtime.workers().queued_jobs();
    s.worker_bytes = runtime.workers().queued_bytes();
    commands.for_each([&](const std::string& name, const Commands::Entry& e) {
        Histogram handler_ns;
        auto c = e.stats->totals(handler_ns);
        CommandStats cs;
        cs.name = name;
        cs.calls = c.calls;
        cs.errors = c.errors;
        cs.bytes_in = c.bytes_in;
        cs.bytes_out = c.bytes_out;
        cs.p50_us = double(handler_ns.quantile(0.5)) / 1e3;
        cs.p99_us = double(handler_ns.quantile(0.99)) / 1e3;
        cs.p999_us = double(handler_ns.quantile(0.999)) / 1e3;
        cs.max_us = double(handler_ns.max()) / 1e3;
        std::array<std::uint64_t, CommandStats::latency_bounds_us.size()> bounds_ns;
        for (std::size_t i = 0; i < bounds_ns.size(); ++i)
            bounds_ns[i] = CommandStats::latency_bounds_us[i] * 1000;
        cs.latency_at_most = handler_ns.at_most(bounds_ns);
        cs.latency_count = std::max(handler_ns.count(), cs.latency_at_most.back());
        cs.latency_sum_us = double(handler_ns.sum()) / 1e3;
        s.commands.push_back(std::move(cs));
    });
    return s;
}

}  // namespace hawser::detail
