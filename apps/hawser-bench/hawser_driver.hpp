// The Hawser driver: one ClientGroup on one IO thread holds this worker's connections.
// Callbacks run on that IO thread and update the figures under one mutex; the worker's main
// thread paces the phases and reads the figures. The phases are defined in hawser_driver.cpp
// (connect, hold, ping, call, soak, churn), hawser_storm.cpp, hawser_broadcast.cpp (broadcast
// and slow consumers) and hawser_channels.cpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "bench_channels.hpp"
#include "clock.hpp"
#include "driver.hpp"
#include "hawser/hawser.hpp"
#include "latency.hpp"
#include "open_window.hpp"
#include "phase_figures.hpp"
#include "wakeup.hpp"

namespace hawser::bench {

class HawserDriver final : public Driver {
  public:
    explicit HawserDriver(const DriverSetup& setup);

    ~HawserDriver() override { group_.reset(); }

    Json connect(std::size_t count, double rate, const Progress& progress) override;
    Json hold(std::chrono::milliseconds duration, const Progress& progress) override;
    Json ping(const Progress& progress) override;
    Json call(unsigned in_flight, std::chrono::milliseconds duration,
              const Progress& progress) override;
    void storm_arm(std::size_t killed) override;
    Json storm(double probe_rate, const Progress& progress) override;
    Json soak(double rate, std::chrono::milliseconds duration, const Progress& progress) override;
    Json broadcast(bool trigger, unsigned count, unsigned size, const Progress& progress) override;
    void arm(double slow_fraction) override;
    Json churn(double rate, std::chrono::milliseconds duration, const Progress& progress) override;
    Json channels(const ChannelsPlan& plan, const Progress& progress) override;

    std::size_t open_count() const override { return group_->size(); }

  private:
    using Clock = std::chrono::steady_clock;
    static constexpr auto tick = std::chrono::milliseconds(250);  // progress, and pacing

    // When the nth of calls spread at `rate` a second from `start` falls due, a day on at
    // most: a tiny rate gives a far time, not an overflow.
    static Clock::time_point nth_due(Clock::time_point start, std::size_t n, double rate) {
        auto seconds = std::min(double(n) / rate, 86400.0);
        return start + std::chrono::ceil<Clock::duration>(std::chrono::duration<double>(seconds));
    }
    // Sleeps until the next call is due, or `soonest`, whichever is first, but lets the next
    // call wait 10 ms at least (what falls due meanwhile goes out together): a worker with a
    // few calls a second (1,000 over a million's 67 workers) wakes for each of them, not a
    // hundred times a second. Then reports progress if a report is due.
    void sleep_until_due(Clock::time_point next_call, Clock::time_point soonest,
                         Clock::time_point& next_report, const char* phase,
                         const Progress& progress);

    // A short reason for an error: its code and the system's words ("not_connected:
    // Connection refused"), without the addresses that would make every error its own reason.
    static std::string reason_of(const Error& e);

    // Closes the oldest connection to `endpoint` still open (never the channels' publisher) and
    // opens one in its place, in its channels if it had some; false if none was open.
    bool replace_oldest(std::size_t endpoint);

    // Subscribes `c` to the personal channel `k` and its group's; both outcomes are counted
    // as calls. The caller has counted both in joining_. Any thread.
    void join_channels(const Connection& c, std::size_t k);

    // Asks for the publications due (up to `due` in all; chained: the next round, and the one
    // after once it is answered). Counted as calls, as the raw driver does. Any thread.
    void publish_next(std::uint64_t due = 0);

    // Shows progress until `counter` (guarded by mu_) reaches `target()` (called unlocked), has
    // not moved for 2 s, or the timeout.
    void settle(const std::uint64_t& counter, const std::function<std::uint64_t()>& target,
                const Progress& progress, const char* phase);

    // Forgets the connections that closed: in every list, or (mostly_closed) only in those
    // where they outnumber the open ones by more than 64, so that a loop may call it often
    // and still walk each connection a bounded number of times.
    void prune(bool mostly_closed = false);
    // `id` closes (or is being closed): no longer counted open to its endpoint. mu_ held.
    void forget_open(ConnectionId id);

    bool is_slow(const Connection& c) {
        std::lock_guard l(mu_);
        return slow_ids_.contains(c.id());
    }

    // The slow consumers read again and get what waited for them, counted apart from the
    // phase, so that the next phase starts clean: until each has its `count` messages (or
    // closed), nothing more came for 2 s (the server skipped some), or the timeout.
    void catch_up(unsigned count, Json& out, const Progress& progress);
    void reset();

    std::uint64_t drops() {
        std::lock_guard l(mu_);
        return drops_;
    }

    Json figures(const char* phase);
    // A call or an open that began at t0_us is over at end_ns: counted, and waiters woken.
    // count_finished: mu_ is held.
    void finished(bool ok, std::uint64_t t0_us, const Error* e, std::uint64_t end_ns = now_ns());
    void count_finished(bool ok, std::uint64_t t0_us, const Error* e,
                        std::uint64_t end_ns = now_ns());
    void wait_until_finished(std::size_t count, const Progress& progress, const char* phase);

    // Opens one connection; with `channel`, it joins that connection's channels once open.
    void open_one(std::size_t endpoint = GroupOpenOptions::any_endpoint,
                  std::optional<std::size_t> channel = std::nullopt);

    std::vector<Connection> snapshot();
    // Up to `count` open connections, taken in turn (each list's in order, then the next
    // list's: every connection as often as another); a step for each closed one passed and
    // each move to the next list, at most 3 * count + 64 + the lists (fewer found when the
    // lists hold many closed ones: prune(true) keeps them from it). mu_ held.
    std::vector<Connection> next_open(std::size_t count);

    // One echo call, begun at t0_us; with `until_ns` (now_ns), the next follows each reply
    // until that time.
    void call_once(const Connection& c, const std::atomic<std::uint64_t>* until_ns,
                   std::uint64_t t0_us = now_us());
    // One echo call counted in probes_ (an established client's, during a storm).
    void probe_once(const Connection& c);
    void on_message(const Connection& from, std::string_view text);

    const DriverSetup setup_;
    std::size_t next_endpoint_ = 0;
    std::atomic<std::uint64_t> calls_until_ns_{0};  // read by call chains on the IO thread

    // Declared before the runtime and the group: callbacks use them until those are gone.
    std::mutex mu_;
    Wakeup wakeup_;
    std::vector<std::deque<Connection>> conns_;  // per endpoint, oldest first
    std::uint64_t ok_ = 0, failed_ = 0, chains_ended_ = 0, last_ns_ = 0;
    std::map<std::string, std::uint64_t> errors_;
    Latency latency_;
    std::uint64_t drops_ = 0, first_drop_ns_ = 0;
    std::vector<std::size_t> opening_;  // per endpoint: opens under way
    // Per endpoint: connections open now, counted as they open and close (the hook), so that
    // a storm learns what is back without walking every connection (the lists keep closed
    // ones until pruned). endpoint_of_: each open connection's.
    std::vector<std::size_t> open_;
    std::unordered_map<ConnectionId, std::size_t> endpoint_of_;
    std::size_t probe_list_ = 0, probe_at_ = 0;  // where next_open goes on
    OpenWindow open_window_{1};                  // the connect phase's opens in flight (set by it)
    StormWatch storm_;
    std::map<std::string, std::uint64_t> drop_reasons_;
    struct Probes {
        std::uint64_t started = 0, ok = 0, failed = 0;
        Latency latency;
    } probes_;
    Deliveries deliveries_;         // of the broadcast or channels phase under way
    std::vector<Connection> slow_;  // paused during a broadcast (the main thread's)
    std::unordered_set<ConnectionId> slow_ids_;
    std::uint64_t slow_deliveries_ = 0;
    Publications publishing_;  // the channels phase's
    Connection publisher_;     // asks for them; never replaced
    ChannelLayout layout_;
    std::unordered_map<ConnectionId, std::size_t> channel_of_;  // its connections' channels
    bool channels_open_ = false;                                // the channels phase is under way
    std::size_t joining_ = 0;                                   // subscriptions under way

    Runtime runtime_;
    std::unique_ptr<ClientGroup> group_;
};

}  // namespace hawser::bench
