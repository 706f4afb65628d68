// The Hawser driver's broadcast phase, and its slow consumers (Driver::arm, Driver::broadcast).
#include "hawser_driver.hpp"

#include <algorithm>

#include "clock.hpp"

namespace hawser::bench {

Json HawserDriver::broadcast(bool trigger, unsigned count, unsigned size,
                             const Progress& progress) {
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
            auto r = c.call("bench.broadcast", std::to_string(count) + " " + std::to_string(size),
                            use_wait);
            if (!r) {
                std::lock_guard l(mu_);
                ++errors_["trigger: " + reason_of(r.error())];
            }
        }
    }
    auto deadline = Clock::now() + setup_.timeout;
    while (Clock::now() < deadline) {
        std::unique_lock l(mu_);
        if (wakeup_.wait_for(l, tick, [&] { return deliveries_.count >= expected; })) break;
        l.unlock();
        progress(figures("broadcast"));
    }
    auto out = figures("broadcast");
    {
        std::lock_guard l(mu_);
        out["start_ns"] = start_ns;
        out["expected"] = expected;
        deliveries_.report(out);
        if (!slow_.empty()) {
            out["slow"] = slow_.size();
            out["slow_deliveries"] = slow_deliveries_;  // none: they paused first
            slow_deliveries_ = 0;
        }
    }
    if (!slow_.empty()) catch_up(count, out, progress);
    return out;
}

void HawserDriver::arm(double slow_fraction) {
    auto all = snapshot();
    {
        std::lock_guard l(mu_);
        deliveries_ = {};
        slow_deliveries_ = 0;
        slow_.clear();
        slow_ids_.clear();
        for (auto i : spread_pick(all.size(), slow_fraction)) {
            slow_.push_back(all[i]);
            slow_ids_.insert(all[i].id());
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

void HawserDriver::catch_up(unsigned count, Json& out, const Progress& progress) {
    for (auto& c : slow_) c.resume_reading();
    auto open_slow = [&] {
        std::size_t n = 0;
        for (auto& c : slow_) n += c.connected();
        return n;
    };
    settle(
        slow_deliveries_, [&] { return std::uint64_t(count) * open_slow(); }, progress,
        "broadcast");
    auto still_open = open_slow();
    std::lock_guard l(mu_);
    out["slow_caught_up"] = slow_deliveries_;  // of count x slow, if none was skipped
    out["slow_closed"] = slow_.size() - still_open;
    slow_.clear();
    slow_ids_.clear();
}

}  // namespace hawser::bench
