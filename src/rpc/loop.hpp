// Loop: one IO thread with its io_context. Everything a connection does happens on its loop.
// The loop also owns what would otherwise cost memory per connection: the read buffer, the
// call deadlines (one timer for all) and the idle/heartbeat sweep (one timer for all), and the
// clock they read. A loop with a manual clock (tests) has no thread: the test runs it with
// run_here() and moves its time with advance(), so timeouts are tested without sleeping.
// Thread affinity: loop-only methods assert in_loop(); other threads use post().
#pragma once

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "core/tick_clock.hpp"
#include "hawser/runtime.hpp"
#include "rpc/worker_pool.hpp"

namespace hawser::detail {

class Conn;
using Clock = std::chrono::steady_clock;

// Short enough that the heartbeats falling due in one period are a short burst, not a queue
// that the messages arriving meanwhile wait behind; long enough that an idle loop's ten
// wake-ups a second cost next to nothing.
inline constexpr std::chrono::milliseconds sweep_period{100};

class Loop {
  public:
    // A connection's calls come due (CallTable keeps one entry per connection).
    using Deadlines = std::multimap<Clock::time_point, Conn*>;

    enum class ClockMode { real, manual };
    explicit Loop(std::uint8_t index, ClockMode clock = ClockMode::real);
    ~Loop();

    // The time connections on this loop go by. Loop thread only. While a read's input is
    // handled (ReadTime) it is the moment of that read: the many messages of one read, and
    // the replies and calls they cause, cost one clock read, not one each.
    Clock::time_point now() const noexcept {
        if (manual_) return manual_now_;
        return read_time_held_ ? read_time_ : Clock::now();
    }
    // The time itself, even while a read is handled: for deadlines the application sets (a
    // call's timeout counts from when the call is made, not from the read before it). During a
    // read it is the read's time plus the ticks since, which is cheaper than a clock read.
    Clock::time_point now_exact() const noexcept {
        if (manual_) return manual_now_;
        if (read_time_held_ && TickClock::uses_counter())
            return read_time_ + TickClock::since(read_ticks_);
        return Clock::now();
    }
    // Holds now() at the moment it is made until it goes; nested holds keep the outer one.
    class ReadTime {
      public:
        explicit ReadTime(Loop& loop) : loop_(loop), outer_(loop.read_time_held_) {
            if (outer_ || loop.manual_) return;
            // Ticks first: a stall between the two reads can make a deadline late, never early.
            if (TickClock::uses_counter()) loop.read_ticks_ = TickClock::now();
            loop.read_time_ = Clock::now();
            loop.read_time_held_ = true;
        }
        ~ReadTime() {
            if (!outer_) loop_.read_time_held_ = false;
        }
        ReadTime(const ReadTime&) = delete;
        ReadTime& operator=(const ReadTime&) = delete;

      private:
        Loop& loop_;
        bool outer_;
    };
    // Manual clock only, from the thread that drives the loop: runs f on this loop, then every
    // handler that is ready.
    template <class F>
    void run_here(F&& f) {
        Entered entered(*this);
        f();
        poll_ready();
    }
    // Manual clock only: moves time forward from one due time to the next, running the
    // deadlines, timed tasks (post_at) and sweeps it passes, each at its own time, and every
    // handler that becomes ready.
    void advance(Clock::duration by);

    asio::io_context& context() noexcept { return ctx_; }
    std::uint8_t index() const noexcept { return index_; }
    bool in_loop() const noexcept { return current() == this; }
    static Loop* current() noexcept;

    template <class F>
    void post(F&& f) {
        asio::post(ctx_, std::forward<F>(f));
    }
    // Runs f now if called on this loop, else posts it.
    template <class F>
    void dispatch(F&& f) {
        if (in_loop())
            f();
        else
            post(std::forward<F>(f));
    }

    // Background work (big-stream data): one task per turn of the loop, in FIFO order, each
    // followed by a poll for IO, so calls on any connection of this loop wait for at most one
    // task (one chunk of stream data), not for every stream's share. A task that has more to do
    // posts itself again. Loop thread only.
    void post_background(std::function<void()> task) {
        background_.push_back(std::move(task));
        if (!background_posted_) {
            background_posted_ = true;
            post([this] { run_background(); });
        }
    }

    // Runs task on this loop at `at` (by now(): in manual mode, when advance() passes it).
    // Loop thread only.
    void post_at(Clock::time_point at, std::function<void()> task);
    // Runs task on this loop `delay` after it gets there. Any thread.
    void post_after(Clock::duration delay, std::function<void()> task) {
        post([this, delay, task = std::move(task)]() mutable {
            post_at(now() + delay, std::move(task));
        });
    }

    // Shared by every connection of this loop: valid until the reading handler returns.
    std::span<std::uint8_t> read_buffer() noexcept { return read_buffer_; }

    // Call deadlines: one timer for the whole loop; at `at` it calls conn->expire_calls().
    // Loop thread only.
    Deadlines::iterator add_deadline(Clock::time_point at, Conn* conn);
    void remove_deadline(Deadlines::iterator it);

    // The sweep checks each connection when something of it may be due — its handshake, idle
    // or heartbeat time, a closing or draining deadline — not every connection every period:
    // connections wait in a timing wheel of `sweep_period` slots, in intrusive lists (a set
    // would cost a node and a bucket per connection). Lazy: activity that makes a time later
    // moves nothing; the check finds nothing due and the connection schedules its next one.
    // What makes a time earlier calls sooner(). Loop thread only.
    struct SweepLink {
        Conn* prev = nullptr;
        Conn* next = nullptr;
        std::uint64_t tick = 0;  // the sweep it waits for; 0 while not in the wheel
    };
    void attach(Conn* conn);  // checked at the next sweep
    void detach(Conn* conn);
    // Checked at the first sweep at or after `due` (at most the wheel's horizon away)...
    void schedule(Conn* conn, Clock::time_point due);
    // ... or, if it waits for a later one, then.
    void sooner(Conn* conn, Clock::time_point due);

    void start();
    void stop();

  private:
    struct Entered {  // marks the calling thread as this loop's while it drives a manual loop
        explicit Entered(Loop& loop);
        ~Entered();
        Loop* previous;
    };
    void poll_ready();
    void run_background();
    void sweep();
    void arm_deadline_timer();
    void on_deadlines();
    void arm_timed();
    void run_timed();
    void arm_sweep();

    std::uint8_t index_;
    bool manual_;
    bool tearing_down_ = false;  // the destructor has begun
    Clock::time_point manual_now_;
    Clock::time_point read_time_;      // now() while read_time_held_ (ReadTime)
    TickClock::Ticks read_ticks_ = 0;  // the tick count at read_time_
    bool read_time_held_ = false;
    Clock::time_point origin_;  // the sweep wheel's tick 0
    // Declared before the io_context, so destroyed after it: handlers that die with the
    // io_context may still drop the last reference to a connection, which detaches itself.
    static constexpr std::size_t wheel_slots = 2048;              // 204.7 s ahead at most
    std::vector<Conn*> wheel_ = std::vector<Conn*>(wheel_slots);  // list heads, by tick
    std::uint64_t tick_ = 0;                                      // the last swept
    std::size_t swept_count_ = 0;
    std::uint64_t tick_for(Clock::time_point due) const noexcept;
    void link(Conn* conn, std::uint64_t tick);
    void unlink(Conn* conn);
    Deadlines deadlines_;
    std::vector<std::uint8_t> read_buffer_;
    std::deque<std::function<void()>> background_;
    bool background_posted_ = false;
    std::multimap<Clock::time_point, std::function<void()>> timed_;  // post_at
    asio::io_context ctx_{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::thread thread_;
    asio::steady_timer deadline_timer_{ctx_};
    asio::steady_timer sweep_timer_{ctx_};
    asio::steady_timer timed_timer_{ctx_};
};

class RuntimeImpl {
  public:
    explicit RuntimeImpl(RuntimeOptions options, Loop::ClockMode clock = Loop::ClockMode::real);
    ~RuntimeImpl();

    std::size_t size() const noexcept { return loops_.size(); }
    Loop& loop(std::size_t i) noexcept { return *loops_[i]; }
    Loop& next_loop() noexcept {
        return *loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
    }
    WorkerPool& workers() noexcept { return workers_; }

  private:
    std::vector<std::unique_ptr<Loop>> loops_;
    std::atomic<std::size_t> next_{0};
    WorkerPool workers_;
};

}  // namespace hawser::detail
