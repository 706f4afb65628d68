// The Hawser driver: one ClientGroup on one IO thread holds this worker's connections.
// Callbacks run on that IO thread and update the figures under one mutex; the worker's main
// thread paces the phases and reads the figures.
#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

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
            "bench.message", [this](const Request&, std::string_view text) { on_message(text); });
        group_->on_disconnect([this](const Connection&, CloseReason why) {
            if (why == CloseReason::local_close) return;
            std::lock_guard l(mu_);
            ++drops_;
            ++drop_reasons_[std::string(to_string(why))];
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

    Json broadcast(bool trigger, unsigned count, unsigned size, const Progress& progress) override {
        std::size_t expected = std::size_t(count) * group_->size();
        auto start_ns = now_ns();
        if (trigger) {
            std::vector<Connection> triggers;
            {
                std::lock_guard l(mu_);
                for (auto& per_endpoint : conns_) {
                    auto it = std::find_if(per_endpoint.begin(), per_endpoint.end(),
                                           [](const Connection& c) { return c.connected(); });
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
        std::lock_guard l(mu_);
        out["start_ns"] = start_ns;
        out["expected"] = expected;
        out["deliveries"] = deliveries_;
        out["first_ns"] = first_delivery_ns_;
        out["end_ns"] = last_delivery_ns_;
        out["latency"] = delivery_latency_.to_json();
        return out;
    }

    void arm() override {
        std::lock_guard l(mu_);
        deliveries_ = 0;
        first_delivery_ns_ = last_delivery_ns_ = 0;
        delivery_latency_ = {};
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
                if (!list.empty()) {
                    victim = list.front();
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
        group_->open(
            [this, t0, endpoint](Result<Connection> r) {
                if (r) {
                    std::lock_guard l(mu_);
                    conns_[endpoint].push_back(*r);
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

    void on_message(std::string_view text) {
        auto t = now_ns();
        // "<seq> <sent ns> ...": the send time is the second number.
        auto space = text.find(' ');
        std::uint64_t sent = 0;
        if (space != std::string_view::npos)
            std::from_chars(text.data() + space + 1, text.data() + text.size(), sent);
        std::lock_guard l(mu_);
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
    std::uint64_t drops_ = 0;
    std::map<std::string, std::uint64_t> drop_reasons_;
    std::uint64_t deliveries_ = 0, first_delivery_ns_ = 0, last_delivery_ns_ = 0;
    Latency delivery_latency_;

    Runtime runtime_;
    std::unique_ptr<ClientGroup> group_;
};

}  // namespace

std::unique_ptr<Driver> make_hawser_driver(const DriverSetup& setup) {
    return std::make_unique<HawserDriver>(setup);
}

}  // namespace hawser::bench
