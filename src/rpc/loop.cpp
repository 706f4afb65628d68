// Loop and RuntimeImpl (see loop.hpp): the IO threads, their deadline timer and sweep, and
// the manual clock for tests. Thread affinity: each loop's own thread (or the test driving it).
#include "rpc/loop.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "rpc/conn.hpp"

namespace hawser::detail {

namespace {
thread_local Loop* t_current = nullptr;
// Several whole encrypted frames (65,547 bytes each) per read, so fewer straddle two reads and
// are copied; one buffer per loop, not per connection.
constexpr std::size_t read_buffer_bytes = 256 * 1024;

// Tick 0 of a real-clock loop's sweep: a random part of a period ago. Processes started
// together (the nodes of one machine, a load generator's workers) would otherwise sweep in
// step, and the heartbeats and timeouts of all of them would fall due in the same few
// milliseconds of every period, queueing every other message behind them.
Clock::time_point sweep_origin(bool manual, Clock::time_point now) {
    if (manual) return now;  // tests' sweeps fall on whole periods from their start
    constexpr auto period = std::chrono::duration_cast<Clock::duration>(sweep_period).count();
    static_assert(period > 0 && period <= 0xffffffff, "randombytes_uniform takes 32 bits");
    return now - Clock::duration(randombytes_uniform(std::uint32_t(period)));
}
}  // namespace

Loop::Loop(std::uint8_t index, ClockMode clock)
    : index_(index),
      manual_(clock == ClockMode::manual),
      manual_now_(Clock::now()),
      origin_(sweep_origin(manual_, manual_now_)),
      read_buffer_(read_buffer_bytes) {}

Loop::Entered::Entered(Loop& loop) : previous(t_current) {
    assert(loop.manual_);
    t_current = &loop;
}
Loop::Entered::~Entered() {
    t_current = previous;
}

void Loop::poll_ready() {
    ctx_.restart();
    ctx_.poll();
}

void Loop::advance(Clock::duration by) {
    Entered entered(*this);
    poll_ready();
    const auto end = manual_now_ + std::min(by, Clock::time_point::max() - manual_now_);
    while (manual_now_ < end) {
        // To the next moment anything is due, as a real clock's timers fire: a timed task, a
        // call's deadline or a sweep, each at its own time.
        auto next = end;
        if (auto sweep_at = origin_ + (tick_ + 1) * sweep_period; sweep_at > manual_now_)
            next = std::min(next, Clock::time_point(sweep_at));
        if (auto t = timed_.upper_bound(manual_now_); t != timed_.end())
            next = std::min(next, t->first);
        if (auto d = deadlines_.upper_bound(manual_now_); d != deadlines_.end())
            next = std::min(next, d->first);
        manual_now_ = next;
        on_deadlines();
        run_timed();
        sweep();
        poll_ready();
    }
}

Loop::~Loop() {
    stop();
    tearing_down_ = true;
    // Tasks still queued may own the last reference to a connection (one waiting for its
    // handshake turn): it goes now, while the io_context its socket belongs to is still here.
    auto tasks = std::move(background_);
    tasks.clear();
    auto timed = std::move(timed_);  // the same for timed tasks
    timed.clear();
}

Loop* Loop::current() noexcept {
    return t_current;
}

void Loop::start() {
    if (manual_) return;  // driven by run_here() and advance()
    work_.emplace(ctx_.get_executor());
    post([this] { arm_sweep(); });
    thread_ = std::thread([this] {
        t_current = this;
        for (;;) {
            try {
                ctx_.run();
                break;
            } catch (const std::exception& e) {
                // A handler let an exception escape: the loop must survive it.
                spdlog::error("hawser: IO thread {} caught: {}", index_, e.what());
            }
        }
        t_current = nullptr;
    });
}

void Loop::stop() {
    if (!thread_.joinable()) return;
    if (in_loop()) {
        // The thread cannot join itself, and the context it is running would be destroyed
        // under it: a Runtime (or a Client or Server owning one) destroyed from its own IO
        // thread is a bug in the caller; say which, rather than std::system_error.
        spdlog::critical(
            "hawser: a Runtime destroyed on its own IO thread {}; destroy it from "
            "another thread",
            index_);
        std::terminate();
    }
    work_.reset();
    ctx_.stop();
    thread_.join();
}

Loop::Deadlines::iterator Loop::add_deadline(Clock::time_point at, Conn* conn) {
    assert(in_loop());
    auto it = deadlines_.emplace(at, conn);
    if (it == deadlines_.begin() && !manual_) arm_deadline_timer();
    return it;
}

void Loop::remove_deadline(Deadlines::iterator it) {
    // Also while the io_context is torn down with this loop: connections still held by its
    // handlers die then, on the destroying thread.
    assert(in_loop() || tearing_down_);
    deadlines_.erase(it);
}

void Loop::arm_deadline_timer() {
    deadline_timer_.expires_at(deadlines_.begin()->first);
    deadline_timer_.async_wait([this](std::error_code ec) {
        if (ec != asio::error::operation_aborted) on_deadlines();
    });
}

void Loop::on_deadlines() {
    // Re-armed however this returns: one failure must not stop every later deadline.
    struct Rearm {
        Loop& loop;
        ~Rearm() {
            if (!loop.deadlines_.empty() && !loop.manual_) loop.arm_deadline_timer();
        }
    } rearm{*this};
    auto now = this->now();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        auto* conn = deadlines_.begin()->second;
        deadlines_.erase(deadlines_.begin());
        // The timeout's callback may close the connection and drop every other reference.
        auto keep = conn->shared_from_this();
        conn->expire_calls(now);
    }
}

void Loop::arm_sweep() {
    // On the wheel's grid, not a period after the last sweep ran: a late sweep does not make
    // every later one late.
    sweep_timer_.expires_at(origin_ + (tick_ + 1) * sweep_period);
    sweep_timer_.async_wait([this](std::error_code ec) {
        if (ec) return;
        // Armed after the sweep (on the tick it reached), even if it throws: one failure must
        // not stop every later sweep.
        struct Rearm {
            Loop* loop;
            ~Rearm() { loop->arm_sweep(); }
        } rearm{this};
        sweep();
    });
}

std::uint64_t Loop::tick_for(Clock::time_point due) const noexcept {
    // Tick t is swept at origin_ + t periods or later, never earlier: the first at or after due.
    auto since = due - origin_;
    auto tick = since <= Clock::duration::zero()
                    ? 0
                    : std::uint64_t((since + sweep_period - Clock::duration(1)) / sweep_period);
    // Never the slot being swept, never past the horizon (checked then, and scheduled again).
    return std::clamp<std::uint64_t>(tick, tick_ + 1, tick_ + wheel_slots - 1);
}

void Loop::link(Conn* conn, std::uint64_t tick) {
    auto& head = wheel_[tick % wheel_slots];
    auto& link = conn->sweep_link();
    link = {nullptr, head, tick};
    if (head) head->sweep_link().prev = conn;
    head = conn;
}

void Loop::unlink(Conn* conn) {
    auto& link = conn->sweep_link();
    if (link.tick == 0) return;
    (link.prev ? link.prev->sweep_link().next : wheel_[link.tick % wheel_slots]) = link.next;
    if (link.next) link.next->sweep_link().prev = link.prev;
    link = {};
}

void Loop::attach(Conn* conn) {
    link(conn, tick_ + 1);
    ++swept_count_;
}

void Loop::detach(Conn* conn) {
    unlink(conn);
    --swept_count_;
}

void Loop::schedule(Conn* conn, Clock::time_point due) {
    unlink(conn);
    link(conn, tick_for(due));
}

void Loop::sooner(Conn* conn, Clock::time_point due) {
    auto tick = tick_for(due);
    auto& link = conn->sweep_link();
    if (link.tick != 0 && link.tick <= tick) return;
    unlink(conn);
    this->link(conn, tick);
}

void Loop::post_at(Clock::time_point at, std::function<void()> task) {
    assert(in_loop());
    auto it = timed_.emplace(at, std::move(task));
    if (it == timed_.begin() && !manual_) arm_timed();
}

void Loop::arm_timed() {
    timed_timer_.expires_at(timed_.begin()->first);
    timed_timer_.async_wait([this](std::error_code ec) {
        if (ec != asio::error::operation_aborted) run_timed();
    });
}

void Loop::run_timed() {
    struct Rearm {  // however this returns
        Loop& loop;
        ~Rearm() {
            if (!loop.timed_.empty() && !loop.manual_) loop.arm_timed();
        }
    } rearm{*this};
    auto now = this->now();
    while (!timed_.empty() && timed_.begin()->first <= now) {
        auto task = std::move(timed_.begin()->second);
        timed_.erase(timed_.begin());
        task();
    }
}

void Loop::run_background() {
    background_posted_ = false;
    if (background_.empty()) return;
    auto task = std::move(background_.front());
    background_.pop_front();
    // Posted again before running, behind what is queued now: the IO poll comes in between.
    if (!background_.empty()) {
        background_posted_ = true;
        post([this] { run_background(); });
    }
    task();
}

void Loop::sweep() {
    auto now = this->now();
    // Every tick whose time has come, by the clock: after a stall, the ones it missed (a whole
    // turn of the wheel at most: that visits every slot once).
    auto due = std::uint64_t((now - origin_) / sweep_period);
    if (due > tick_ + wheel_slots) tick_ = due - wheel_slots;
    while (tick_ < due) {
        ++tick_;
        // Taken one at a time from the head: checking one may close others (a hook), which
        // unlink themselves, and nothing is scheduled into this slot while it is swept.
        auto& slot = wheel_[tick_ % wheel_slots];
        while (Conn* c = slot) {
            unlink(c);
            auto keep = c->shared_from_this();  // checking may close it
            c->on_sweep(now);                   // and schedules its next check unless closed
        }
    }
}

RuntimeImpl::RuntimeImpl(RuntimeOptions options, Loop::ClockMode clock)
    : workers_(options.worker_threads, options.max_worker_jobs, options.max_worker_bytes) {
    std::size_t n =
        options.io_threads ? options.io_threads : std::max(1u, std::thread::hardware_concurrency());
    if (n > 255) n = 255;  // the low byte of a ConnectionId names the loop
    for (std::size_t i = 0; i < n; ++i)
        loops_.push_back(std::make_unique<Loop>(static_cast<std::uint8_t>(i), clock));
    for (auto& l : loops_) l->start();
}

RuntimeImpl::~RuntimeImpl() {
    for (auto& l : loops_) l->stop();
    workers_.join();
}

}  // namespace hawser::detail
