// The Hawser driver (hawser_driver.hpp): its setup, the plumbing every phase uses, and the
// phases that are one loop each: connect, hold, ping, call, soak and churn.
#include "hawser_driver.hpp"

#include <algorithm>
#include <thread>

#include "clock.hpp"

namespace hawser::bench {

std::string HawserDriver::reason_of(const Error& e) {
    auto colon = e.message.rfind(": ");
    return std::string(to_string(e.code)) +
           (colon == std::string::npos ? "" : ": " + e.message.substr(colon + 2));
}

HawserDriver::HawserDriver(const DriverSetup& setup)
    : setup_(setup), runtime_({.io_threads = 1, .worker_threads = 1}) {
    conns_.resize(setup.endpoints.size());
    opening_.resize(setup.endpoints.size());
    open_.resize(setup.endpoints.size());
    ClientOptions o;
    o.endpoints = setup.endpoints;
    o.server_public_key = setup.server_key;
    o.transport.insecure_plaintext = setup.plaintext;
    o.timeouts.connect = setup.timeout;
    o.timeouts.call = setup.timeout;
    o.timeouts.heartbeat = setup.heartbeat;
    o.timeouts.idle = setup.heartbeat.count() ? 3 * setup.heartbeat : std::chrono::milliseconds(0);
    group_ = std::make_unique<ClientGroup>(runtime_, o);
    group_->commands().direct_console(
        "bench.message",
        [this](const Request& r, std::string_view text) { on_message(r.connection(), text); });
    group_->on_disconnect([this](const Connection& c, CloseReason why) {
        std::lock_guard l(mu_);
        // After its open callback: both run on its IO thread, the callback first.
        forget_open(c.id());
        if (why == CloseReason::local_close) return;
        ++drops_;
        ++drop_reasons_[std::string(to_string(why))];
        if (!first_drop_ns_) first_drop_ns_ = now_ns();
    });
}

Json HawserDriver::connect(std::size_t count, double rate, const Progress& progress) {
    reset();
    auto start = Clock::now();
    auto start_ns = now_ns();
    auto next_report = start + tick;
    {
        std::lock_guard l(mu_);
        open_window_ = OpenWindow(setup_.max_opening);
    }
    for (std::size_t i = 0; i < count; ++i) {
        if (rate > 0)
            std::this_thread::sleep_until(
                start + std::chrono::nanoseconds(std::int64_t(double(i) * 1e9 / rate)));
        {
            std::unique_lock l(mu_);
            wakeup_.wait_for(l, setup_.timeout,
                             [&] { return group_->opening() < open_window_.size(); });
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
    std::lock_guard l(mu_);
    out["opening_lowest"] = open_window_.lowest();  // below --max-opening: opens failed
    return out;
}

Json HawserDriver::hold(std::chrono::milliseconds duration, const Progress& progress) {
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

Json HawserDriver::ping(const Progress& progress) {
    reset();
    auto conns = snapshot();
    auto start_ns = now_ns();
    for (auto& c : conns) call_once(c, nullptr);
    wait_until_finished(conns.size(), progress, "ping");
    auto out = figures("ping");
    out["start_ns"] = start_ns;
    return out;
}

Json HawserDriver::call(unsigned in_flight, std::chrono::milliseconds duration,
                        const Progress& progress) {
    reset();
    auto conns = snapshot();
    auto start_ns = now_ns();
    const auto until = Clock::now() + duration;
    calls_until_ns_.store(now_ns() + std::uint64_t(std::chrono::nanoseconds(duration).count()));
    std::size_t started = 0;
    for (auto& c : conns)
        for (unsigned i = 0; i < in_flight; ++i, ++started) call_once(c, &calls_until_ns_);
    while (Clock::now() < until) {
        std::this_thread::sleep_until(std::min(until, Clock::now() + tick));
        progress(figures("call"));
    }
    // Every chain ends with one call that finds the deadline passed.
    {
        std::unique_lock l(mu_);
        wakeup_.wait_for(l, setup_.timeout, [&] { return chains_ended_ >= started; });
    }
    auto out = figures("call");
    out["start_ns"] = start_ns;
    out["end_ns"] = now_ns();
    return out;
}

Json HawserDriver::soak(double rate, std::chrono::milliseconds duration, const Progress& progress) {
    reset();
    auto conns = snapshot();
    auto start = Clock::now();
    auto start_ns = now_ns();
    auto next_report = start + tick;
    std::size_t started = 0;
    for (auto now = start; now < start + duration && !conns.empty(); now = Clock::now()) {
        // The calls due by now go out together.
        auto due = std::size_t(std::chrono::duration<double>(now - start).count() * rate);
        for (; started < due; ++started) call_once(conns[started % conns.size()], nullptr);
        sleep_until_due(nth_due(start, started + 1, rate), start + duration, next_report, "soak",
                        progress);
    }
    wait_until_finished(started, progress, "soak");
    auto out = figures("soak");
    out["start_ns"] = start_ns;
    out["end_ns"] = now_ns();
    return out;
}

void HawserDriver::sleep_until_due(Clock::time_point next_call, Clock::time_point soonest,
                                   Clock::time_point& next_report, const char* phase,
                                   const Progress& progress) {
    auto floor = Clock::now() + tick / 25;
    std::this_thread::sleep_until(std::min({soonest, next_report, std::max(floor, next_call)}));
    if (Clock::now() < next_report) return;
    // One report however long the sleep overran (a starved worker), not one per tick missed.
    while (next_report <= Clock::now()) next_report += tick;
    progress(figures(phase));
}

Json HawserDriver::churn(double rate, std::chrono::milliseconds duration,
                         const Progress& progress) {
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
        if (!replace_oldest(i % conns_.size())) open_one(i % conns_.size());
        ++opened;
    }
    wait_until_finished(opened, progress, "churn");
    auto out = figures("churn");
    out["start_ns"] = start_ns;
    return out;
}

bool HawserDriver::replace_oldest(std::size_t endpoint) {
    Connection victim;
    std::optional<std::size_t> channel;
    {
        std::lock_guard l(mu_);
        auto& list = conns_[endpoint];
        for (std::size_t n = list.size(); n > 0 && !victim.valid(); --n) {
            auto c = list.front();
            list.pop_front();
            if (!c.connected()) continue;
            if (publisher_.valid() && c.id() == publisher_.id()) {
                list.push_back(c);
                continue;
            }
            victim = c;
            forget_open(c.id());  // closing now: no longer open to a storm armed next
            if (auto it = channel_of_.find(c.id()); it != channel_of_.end()) {
                channel = it->second;
                channel_of_.erase(it);
            }
        }
    }
    if (!victim.valid()) return false;
    victim.close();
    open_one(endpoint, channel);
    return true;
}

void HawserDriver::prune(bool mostly_closed) {
    std::lock_guard l(mu_);
    for (std::size_t e = 0; e < conns_.size(); ++e)
        if (!mostly_closed || conns_[e].size() > 2 * open_[e] + 64)
            std::erase_if(conns_[e], [](const Connection& c) { return !c.connected(); });
}

void HawserDriver::reset() {
    std::lock_guard l(mu_);
    ok_ = failed_ = chains_ended_ = 0;
    errors_.clear();
    latency_ = {};
    last_ns_ = 0;
}

Json HawserDriver::figures(const char* phase) {
    std::lock_guard l(mu_);
    return {
        {"phase", phase},
        {"ok", ok_},
        {"failed", failed_},
        {"errors", errors_},
        {"open", group_->size()},
        {"end_ns", last_ns_},
        // A phase that delivers shows its deliveries' latency; the others their calls'.
        {"latency", (std::string_view(phase) == "broadcast" || std::string_view(phase) == "channels"
                         ? deliveries_.latency
                         : latency_)
                        .to_json()}};
}

void HawserDriver::finished(bool ok, std::uint64_t t0_us, const Error* e, std::uint64_t end_ns) {
    std::lock_guard l(mu_);
    count_finished(ok, t0_us, e, end_ns);
}

void HawserDriver::count_finished(bool ok, std::uint64_t t0_us, const Error* e,
                                  std::uint64_t end_ns) {
    if (ok) {
        ++ok_;
        latency_.record(end_ns / 1000 - t0_us);
    } else {
        ++failed_;
        ++errors_[reason_of(*e)];
    }
    last_ns_ = end_ns;
    wakeup_.changed();
}

void HawserDriver::wait_until_finished(std::size_t count, const Progress& progress,
                                       const char* phase) {
    auto deadline = Clock::now() + 2 * setup_.timeout;
    while (Clock::now() < deadline) {
        std::unique_lock l(mu_);
        if (wakeup_.wait_for(l, tick, [&] { return ok_ + failed_ >= count; })) return;
        l.unlock();
        progress(figures(phase));
    }
}

void HawserDriver::open_one(std::size_t endpoint, std::optional<std::size_t> channel) {
    if (endpoint == GroupOpenOptions::any_endpoint)
        endpoint = next_endpoint_++ % setup_.endpoints.size();
    auto t0 = now_us();
    {
        std::lock_guard l(mu_);
        ++opening_[endpoint];
    }
    group_->open(
        [this, t0, endpoint, channel](Result<Connection> r) {
            bool join;
            {
                // One step for whoever waits on opening_, ok_ and joining_: never seen between.
                std::lock_guard l(mu_);
                --opening_[endpoint];
                if (r) {
                    conns_[endpoint].push_back(*r);
                    endpoint_of_.emplace(r->id(), endpoint);
                    ++open_[endpoint];
                }
                r ? open_window_.succeeded() : open_window_.failed();
                join = r && channel && channels_open_;  // not once the phase is over
                if (join) {
                    channel_of_[r->id()] = *channel;
                    joining_ += 2;
                }
                count_finished(bool(r), t0, r ? nullptr : &r.error());
            }
            if (join) join_channels(*r, *channel);
        },
        {.source_address = setup_.source_address, .endpoint = endpoint});
}

std::vector<Connection> HawserDriver::next_open(std::size_t count) {
    std::vector<Connection> out;
    std::size_t total = 0;
    for (auto& list : conns_) total += list.size();
    if (total == 0) return out;
    // Pruned every 50 ms in a storm (prune(true)), a list holds about as many closed as open,
    // and 64 more; a step also moves to the next list.
    const auto most_steps = 3 * count + 64 + conns_.size();
    for (std::size_t steps = 0; out.size() < count && steps < most_steps; ++steps) {
        auto& list = conns_[probe_list_];
        if (probe_at_ >= list.size()) {
            probe_list_ = (probe_list_ + 1) % conns_.size();
            probe_at_ = 0;
            continue;
        }
        const auto& c = list[probe_at_++];
        if (c.connected()) out.push_back(c);
    }
    return out;
}

void HawserDriver::forget_open(ConnectionId id) {
    if (auto it = endpoint_of_.find(id); it != endpoint_of_.end()) {
        --open_[it->second];
        endpoint_of_.erase(it);
    }
}

std::vector<Connection> HawserDriver::snapshot() {
    std::lock_guard l(mu_);
    std::vector<Connection> all;
    for (auto& list : conns_)
        for (auto& c : list)
            if (c.connected()) all.push_back(c);
    return all;
}

void HawserDriver::call_once(const Connection& c, const std::atomic<std::uint64_t>* until_ns,
                             std::uint64_t t0_us) {
    c.call("echo", std::string(), [this, c, t0_us, until_ns](Result<std::string> r) {
        // One clock read a call (about 30 ns here; four a call were a fifth of this process's
        // time with 64 in flight): the reply's time ends this call and begins the next, so the
        // next one's latency includes this bookkeeping, never less than its own.
        auto t = now_ns();
        finished(bool(r), t0_us, r ? nullptr : &r.error(), t);
        if (!until_ns) return;
        if (r && t < until_ns->load(std::memory_order_relaxed))
            return call_once(c, until_ns, t / 1000);
        std::lock_guard l(mu_);
        ++chains_ended_;
        wakeup_.changed();
    });
}

void HawserDriver::on_message(const Connection& from, std::string_view text) {
    auto t = now_ns();
    std::lock_guard l(mu_);
    if (slow_ids_.contains(from.id())) {
        ++slow_deliveries_;
        return;
    }
    deliveries_.record(text, t);
    wakeup_.changed();
}

void HawserDriver::settle(const std::uint64_t& counter,
                          const std::function<std::uint64_t()>& target, const Progress& progress,
                          const char* phase) {
    Settling settling(setup_.timeout);
    for (;;) {
        auto goal = target();
        std::unique_lock l(mu_);
        if (wakeup_.wait_for(l, tick, [&] { return counter >= goal; }) ||
            settling.over(counter, goal))
            return;
        l.unlock();
        progress(figures(phase));
    }
}

std::unique_ptr<Driver> make_hawser_driver(const DriverSetup& setup) {
    return std::make_unique<HawserDriver>(setup);
}

}  // namespace hawser::bench
