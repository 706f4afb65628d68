// The Hawser driver: one ClientGroup on one IO thread holds this worker's connections.
// Callbacks run on that IO thread and update the figures under one mutex; the worker's main
// thread paces the phases and reads the figures.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "clock.hpp"
#include "driver.hpp"
#include "hawser/hawser.hpp"
#include "latency.hpp"

namespace hawser::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto tick = std::chrono::milliseconds(250);

// A short reason for an error: its code and the system's words ("not_connected: Connection
// refused"), without the addresses that would make every error its own reason.
std::string reason_of(const Error& e) {
    auto colon = e.message.rfind(": ");
    return std::string(to_string(e.code)) +
           (colon == std::string::npos ? "" : ": " + e.message.substr(colon + 2));
}

class HawserDriver final : public Driver {
  public:
    explicit HawserDriver(const DriverSetup& setup)
        : setup_(setup), runtime_({.io_threads = 1, .worker_threads = 1}) {
        conns_.resize(setup.endpoints.size());
        opening_.resize(setup.endpoints.size());
        ClientOptions o;
        o.endpoints = setup.endpoints;
        o.server_public_key = setup.server_key;
        o.transport.insecure_plaintext = setup.plaintext;
        o.timeouts.connect = setup.timeout;
        o.timeouts.call = setup.timeout;
        o.timeouts.heartbeat = setup.heartbeat;
        o.timeouts.idle =
            setup.heartbeat.count() ? 3 * setup.heartbeat : std::chrono::milliseconds(0);
        group_ = std::make_unique<ClientGroup>(runtime_, o);
        group_->commands().direct_console(
            "bench.message",
            [this](const Request& r, std::string_view text) { on_message(r.connection(), text); });
        group_->on_disconnect([this](const Connection&, CloseReason why) {
            if (why == CloseReason::local_close) return;
            std::lock_guard l(mu_);
            ++drops_;
            ++drop_reasons_[std::string(to_string(why))];
            if (!first_drop_ns_) first_drop_ns_ = now_ns();
        });
    }

    ~HawserDriver() override { group_.reset(); }

    Json connect(std::size_t count, double rate, const Progress& progress) override {
        reset();
        auto start = Clock::now();
        auto start_ns = now_ns();
        auto next_report = start + tick;
        for (std::size_t i = 0; i < count; ++i) {
            if (rate > 0)
                std::this_thread::sleep_until(
                    start + std::chrono::nanoseconds(std::int64_t(double(i) * 1e9 / rate)));
            {
                std::unique_lock l(mu_);
                cv_.wait_for(l, setup_.timeout,
                             [&] { return group_->opening() < setup_.max_opening; });
            }
            if (Clock::now() >= next_report) {
                next_report += tick;
                progress(figures("connect"));
            }
            open_one();
        }
        wait_until_finished(count, progress, "connect");
        auto out = figures("connect");
        out["start_ns"] = start_ns;
        return out;
    }

    Json hold(std::chrono::milliseconds duration, const Progress& progress) override {
        reset();
        {
            std::lock_guard l(mu_);
            drop_reasons_.clear();  // this phase's
        }
        auto drops_before = drops();
        auto end = Clock::now() + duration;
        auto start_ns = now_ns();
        while (Clock::now() < end) {
            std::this_thread::sleep_until(std::min(end, Clock::now() + tick));
            progress(figures("hold"));
        }
        auto out = figures("hold");
        out["start_ns"] = start_ns;
        out["end_ns"] = now_ns();
        out["drops"] = drops() - drops_before;
        std::lock_guard l(mu_);
        out["drop_reasons"] = drop_reasons_;
        return out;
    }

    Json ping(const Progress& progress) override {
        reset();
        auto conns = snapshot();
        auto start_ns = now_ns();
        for (auto& c : conns) call_once(c, nullptr);
        wait_until_finished(conns.size(), progress, "ping");
        auto out = figures("ping");
        out["start_ns"] = start_ns;
        return out;
    }

    Json call(unsigned in_flight, std::chrono::milliseconds duration,
              const Progress& progress) override {
        reset();
        auto conns = snapshot();
        auto start_ns = now_ns();
        calls_until_.store(Clock::now() + duration);
        const auto until = calls_until_.load();
        std::size_t started = 0;
        for (auto& c : conns)
            for (unsigned i = 0; i < in_flight; ++i, ++started) call_once(c, &calls_until_);
        while (Clock::now() < until) {
            std::this_thread::sleep_until(std::min(until, Clock::now() + tick));
            progress(figures("call"));
        }
        // Every chain ends with one call that finds the deadline passed.
        {
            std::unique_lock l(mu_);
            cv_.wait_for(l, setup_.timeout, [&] { return chains_ended_ >= started; });
        }
        auto out = figures("call");
        out["start_ns"] = start_ns;
        out["end_ns"] = now_ns();
        return out;
    }

    void storm_arm(std::size_t killed) override {
        prune();
        std::lock_guard l(mu_);
        storm_targets_.clear();
        storm_expected_drops_ = 0;
        for (std::size_t e = 0; e < conns_.size(); ++e) {
            storm_targets_.push_back(conns_[e].size());
            if (e < killed) storm_expected_drops_ += conns_[e].size();
        }
        storm_drops_ = drops_;
        first_drop_ns_ = 0;
        drop_reasons_.clear();  // the storm's
    }

    Json storm(const Progress& progress) override {
        reset();
        auto start_ns = now_ns();
        std::size_t target = 0;
        for (auto t : storm_targets_) target += t;
        auto almost = target - target / 1000;  // 99.9 %, rounded up
        std::uint64_t back_999_ns = 0, back_ns = 0;
        auto deadline = Clock::now() + 2 * setup_.timeout;
        auto next_report = Clock::now() + tick;
        while (Clock::now() < deadline) {
            prune();
            std::vector<std::size_t> missing(conns_.size());
            std::size_t open = 0, opening = 0;
            bool all_dropped;
            {
                std::lock_guard l(mu_);
                all_dropped = drops_ - storm_drops_ >= storm_expected_drops_;
                for (std::size_t e = 0; e < conns_.size(); ++e) {
                    open += conns_[e].size();
                    opening += opening_[e];
                    missing[e] = storm_targets_[e] -
                                 std::min(storm_targets_[e], conns_[e].size() + opening_[e]);
                }
            }
            // Back only once every connection to a killed server was seen to drop.
            if (all_dropped && open >= almost && !back_999_ns) back_999_ns = now_ns();
            if (all_dropped && open >= target) {
                back_ns = now_ns();
                break;
            }
            // Each goes back to the server it lost, as many at once as a worker may open.
            auto room = setup_.max_opening - std::min(setup_.max_opening, opening);
            for (std::size_t e = 0; e < missing.size(); ++e)
                for (; missing[e] > 0 && room > 0; --missing[e], --room) open_one(e);
            std::this_thread::sleep_for(tick / 5);  // pacing the retries, as clients back off
            if (Clock::now() >= next_report) {
                next_report += tick;
                progress(figures("storm"));
            }
        }
        if (!back_999_ns && back_ns) back_999_ns = back_ns;
        // Opens still under way finish here, not in the next phase's figures.
        {
            std::unique_lock l(mu_);
            cv_.wait_for(l, setup_.timeout, [&] {
                return std::all_of(opening_.begin(), opening_.end(),
                                   [](std::size_t n) { return n == 0; });
            });
        }
        prune();
        auto out = figures("storm");
        std::lock_guard l(mu_);
        out["target"] = target;
        out["drops"] = drops_ - storm_drops_;
        out["drop_reasons"] = drop_reasons_;
        out["first_drop_ns"] = first_drop_ns_;
        out["start_ns"] = start_ns;  // reopening began: the servers were back
        out["back_999_ns"] = back_999_ns;
        out["back_ns"] = back_ns;
        out["end_ns"] = back_ns ? back_ns : now_ns();
        return out;
    }

    Json soak(double rate, std::chrono::milliseconds duration, const Progress& progress) override {
        reset();
        auto conns = snapshot();
        auto start = Clock::now();
        auto start_ns = now_ns();
        auto next_report = start + tick;
        std::size_t started = 0;
        for (auto now = start; now < start + duration && !conns.empty(); now = Clock::now()) {
            // The calls due by now go out together, every 10 ms.
            auto due = std::size_t(std::chrono::duration<double>(now - start).count() * rate);
            for (; started < due; ++started) call_once(conns[started % conns.size()], nullptr);
            std::this_thread::sleep_until(std::min(start + duration, now + tick / 25));
            if (Clock::now() >= next_report) {
                next_report += tick;
                progress(figures("soak"));
            }
        }
        wait_until_finished(started, progress, "soak");
        auto out = figures("soak");
        out["start_ns"] = start_ns;
        out["end_ns"] = now_ns();
        return out;
    }

    Json broadcast(bool trigger, unsigned count, unsigned size, const Progress& progress) override {
        std::size_t readers = 0;
        for (auto& c : snapshot()) readers += !is_slow(c);
        std::size_t expected = std::size_t(count) * readers;
        auto start_ns = now_ns();
        if (trigger) {
            std::vector<Connection> triggers;
            {
                std::lock_guard l(mu_);
                for (auto& per_endpoint : conns_) {
                    auto it = std::find_if(
                        per_endpoint.begin(), per_endpoint.end(), [this](const Connection& c) {
                            return c.connected() && !slow_ids_.contains(c.id());  // reads replies
                        });
                    if (it != per_endpoint.end()) triggers.push_back(*it);
                    if (setup_.cluster && !triggers.empty()) break;  // one reaches every node
                }
            }
            for (auto& c : triggers) {
                auto r = c.call("bench.broadcast",
                                std::to_string(count) + " " + std::to_string(size), use_wait);
                if (!r) {
                    std::lock_guard l(mu_);
                    ++errors_["trigger: " + reason_of(r.error())];
                }
            }
        }
        auto deadline = Clock::now() + setup_.timeout;
        while (Clock::now() < deadline) {
            std::unique_lock l(mu_);
            if (cv_.wait_for(l, tick, [&] { return deliveries_ >= expected; })) break;
            l.unlock();
            progress(figures("broadcast"));
        }
        auto out = figures("broadcast");
        {
            std::lock_guard l(mu_);
            out["start_ns"] = start_ns;
            out["expected"] = expected;
            out["deliveries"] = deliveries_;
            out["first_ns"] = first_delivery_ns_;
            out["end_ns"] = last_delivery_ns_;
            out["latency"] = delivery_latency_.to_json();
            if (!slow_.empty()) {
                out["slow"] = slow_.size();
                out["slow_deliveries"] = slow_deliveries_;  // none: they paused first
                slow_deliveries_ = 0;
            }
        }
        if (!slow_.empty()) catch_up(count, out, progress);
        return out;
    }

    void arm(double slow_fraction) override {
        auto all = snapshot();
        {
            std::lock_guard l(mu_);
            deliveries_ = slow_deliveries_ = 0;
            first_delivery_ns_ = last_delivery_ns_ = 0;
            delivery_latency_ = {};
            slow_.clear();
            slow_ids_.clear();
            // Rounded, and one reader kept: the trigger is a call, and needs its reply read.
            auto n =
                std::min<std::size_t>(std::size_t(std::llround(double(all.size()) * slow_fraction)),
                                      all.empty() ? 0 : all.size() - 1);
            for (std::size_t i = 0; i < n; ++i) {  // spread: every (size / n)-th connection
                auto& c = all[i * all.size() / n];
                slow_.push_back(c);
                slow_ids_.insert(c.id());
            }
        }
        if (slow_.empty()) return;
        for (auto& c : slow_) c.pause_reading();
        // The pauses were posted to the group's one IO thread; a round trip posted after them
        // returns once they have all taken effect.
        for (auto& c : all)
            if (!slow_ids_.contains(c.id())) {
                (void)c.call("echo", std::string(), use_wait);
                break;
            }
    }

    Json churn(double rate, std::chrono::milliseconds duration, const Progress& progress) override {
        reset();
        auto start = Clock::now();
        auto start_ns = now_ns();
        auto end = start + duration;
        auto next_report = start + tick;
        std::size_t opened = 0;
        for (std::size_t i = 0;; ++i) {
            auto at = start + std::chrono::nanoseconds(std::int64_t(double(i) * 1e9 / rate));
            if (at >= end) break;
            std::this_thread::sleep_until(at);
            if (Clock::now() >= next_report) {
                next_report += tick;
                progress(figures("churn"));
            }
            // The oldest connection goes; a new one takes its place.
            Connection victim;
            {
                std::lock_guard l(mu_);
                auto& list = conns_[i % conns_.size()];
                while (!list.empty() && !victim.valid()) {  // the oldest still open
                    if (list.front().connected()) victim = list.front();
                    list.pop_front();
                }
            }
            if (victim.valid()) victim.close();
            open_one(i % conns_.size());
            ++opened;
        }
        wait_until_finished(opened, progress, "churn");
        auto out = figures("churn");
        out["start_ns"] = start_ns;
        return out;
    }

    std::size_t open_count() const override { return group_->size(); }

  private:
    // Forgets the connections that closed.
    void prune() {
        std::lock_guard l(mu_);
        for (auto& list : conns_)
            std::erase_if(list, [](const Connection& c) { return !c.connected(); });
    }

    bool is_slow(const Connection& c) {
        std::lock_guard l(mu_);
        return slow_ids_.contains(c.id());
    }

    // The slow consumers read again and get what waited for them, counted apart from the
    // phase, so that the next phase starts clean: until each has its `count` messages (or
    // closed), nothing more came for 2 s (the server skipped some), or the timeout.
    void catch_up(unsigned count, Json& out, const Progress& progress) {
        for (auto& c : slow_) c.resume_reading();
        auto open_slow = [&] {
            std::size_t n = 0;
            for (auto& c : slow_) n += c.connected();
            return n;
        };
        auto deadline = Clock::now() + setup_.timeout;
        auto last_change = Clock::now();
        std::uint64_t seen = 0;
        while (Clock::now() < deadline && Clock::now() - last_change < std::chrono::seconds(2)) {
            auto backlog = std::uint64_t(count) * open_slow();
            std::unique_lock l(mu_);
            if (cv_.wait_for(l, tick, [&] { return slow_deliveries_ >= backlog; })) break;
            if (slow_deliveries_ != seen) {
                seen = slow_deliveries_;
                last_change = Clock::now();
            }
            l.unlock();
            progress(figures("broadcast"));
        }
        auto still_open = open_slow();
        std::lock_guard l(mu_);
        out["slow_caught_up"] = slow_deliveries_;  // of count x slow, if none was skipped
        out["slow_closed"] = slow_.size() - still_open;
        slow_.clear();
        slow_ids_.clear();
    }

    void reset() {
        std::lock_guard l(mu_);
        ok_ = failed_ = chains_ended_ = 0;
        errors_.clear();
        latency_ = {};
        last_ns_ = 0;
    }

    std::uint64_t drops() {
        std::lock_guard l(mu_);
        return drops_;
    }

    Json figures(const char* phase) {
        std::lock_guard l(mu_);
        return {{"phase", phase},
                {"ok", ok_},
                {"failed", failed_},
                {"errors", errors_},
                {"open", group_->size()},
                {"end_ns", last_ns_},
                {"latency", latency_.to_json()}};
    }

    void finished(bool ok, std::uint64_t t0_us, const Error* e) {
        std::lock_guard l(mu_);
        if (ok) {
            ++ok_;
            latency_.record(now_us() - t0_us);
        } else {
            ++failed_;
            ++errors_[reason_of(*e)];
        }
        last_ns_ = now_ns();
        cv_.notify_all();
    }

    void wait_until_finished(std::size_t count, const Progress& progress, const char* phase) {
        auto deadline = Clock::now() + 2 * setup_.timeout;
        while (Clock::now() < deadline) {
            std::unique_lock l(mu_);
            if (cv_.wait_for(l, tick, [&] { return ok_ + failed_ >= count; })) return;
            l.unlock();
            progress(figures(phase));
        }
    }

    void open_one(std::size_t endpoint = GroupOpenOptions::any_endpoint) {
        if (endpoint == GroupOpenOptions::any_endpoint)
            endpoint = next_endpoint_++ % setup_.endpoints.size();
        auto t0 = now_us();
        {
            std::lock_guard l(mu_);
            ++opening_[endpoint];
        }
        group_->open(
            [this, t0, endpoint](Result<Connection> r) {
                {
                    std::lock_guard l(mu_);
                    --opening_[endpoint];
                    if (r) conns_[endpoint].push_back(*r);
                }
                finished(bool(r), t0, r ? nullptr : &r.error());
            },
            {.source_address = setup_.source_address, .endpoint = endpoint});
    }

    std::vector<Connection> snapshot() {
        std::lock_guard l(mu_);
        std::vector<Connection> all;
        for (auto& list : conns_)
            for (auto& c : list)
                if (c.connected()) all.push_back(c);
        return all;
    }

    // One echo call; with `until`, the next follows each reply until that time.
    void call_once(const Connection& c, const std::atomic<Clock::time_point>* until) {
        auto t0 = now_us();
        c.call("echo", std::string(), [this, c, t0, until](Result<std::string> r) {
            finished(bool(r), t0, r ? nullptr : &r.error());
            if (!until) return;
            if (r && Clock::now() < until->load()) return call_once(c, until);
            std::lock_guard l(mu_);
            ++chains_ended_;
            cv_.notify_all();
        });
    }

    void on_message(const Connection& from, std::string_view text) {
        auto t = now_ns();
        // "<seq> <sent ns> ...": the send time is the second number.
        auto space = text.find(' ');
        std::uint64_t sent = 0;
        if (space != std::string_view::npos)
            std::from_chars(text.data() + space + 1, text.data() + text.size(), sent);
        std::lock_guard l(mu_);
        if (slow_ids_.contains(from.id())) {
            ++slow_deliveries_;
            return;
        }
        if (sent && t > sent) delivery_latency_.record((t - sent) / 1000);
        if (!first_delivery_ns_) first_delivery_ns_ = t;
        last_delivery_ns_ = t;
        ++deliveries_;
        cv_.notify_all();
    }

    const DriverSetup setup_;
    std::size_t next_endpoint_ = 0;
    std::atomic<Clock::time_point> calls_until_{};  // read by call chains on the IO thread

    // Declared before the runtime and the group: callbacks use them until those are gone.
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::deque<Connection>> conns_;  // per endpoint, oldest first
    std::uint64_t ok_ = 0, failed_ = 0, chains_ended_ = 0, last_ns_ = 0;
    std::map<std::string, std::uint64_t> errors_;
    Latency latency_;
    std::uint64_t drops_ = 0, first_drop_ns_ = 0;
    std::vector<std::size_t> opening_;        // per endpoint: opens under way
    std::vector<std::size_t> storm_targets_;  // per endpoint: open when the storm was armed
    std::uint64_t storm_expected_drops_ = 0;  // of those, on the servers to be killed
    std::uint64_t storm_drops_ = 0;           // drops_ then
    std::map<std::string, std::uint64_t> drop_reasons_;
    std::uint64_t deliveries_ = 0, first_delivery_ns_ = 0, last_delivery_ns_ = 0;
    Latency delivery_latency_;
    std::vector<Connection> slow_;  // paused during a broadcast (the main thread's)
    std::unordered_set<ConnectionId> slow_ids_;
    std::uint64_t slow_deliveries_ = 0;

    Runtime runtime_;
    std::unique_ptr<ClientGroup> group_;
};

}  // namespace

std::unique_ptr<Driver> make_hawser_driver(const DriverSetup& setup) {
    return std::make_unique<HawserDriver>(setup);
}

}  // namespace hawser::bench
