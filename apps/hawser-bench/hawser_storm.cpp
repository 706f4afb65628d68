// The Hawser driver's reconnect storm (Driver::storm_arm, Driver::storm).
#include "hawser_driver.hpp"

#include <algorithm>
#include <thread>

#include "clock.hpp"

namespace hawser::bench {

void HawserDriver::storm_arm(std::size_t killed) {
    prune();
    std::lock_guard l(mu_);
    storm_.arm(open_, killed, drops_);
    first_drop_ns_ = 0;
    drop_reasons_.clear();  // the storm's
}

void HawserDriver::probe_once(const Connection& c) {
    auto t0 = now_us();
    {
        std::lock_guard l(mu_);
        ++probes_.started;
    }
    c.call("echo", std::string(), [this, t0](Result<std::string> r) {
        std::lock_guard l(mu_);
        if (r)
            ++probes_.ok, probes_.latency.record(now_us() - t0);
        else
            ++probes_.failed;
        wakeup_.changed();
    });
}

Json HawserDriver::storm(double probe_rate, const Progress& progress) {
    reset();
    {
        std::lock_guard l(mu_);
        probes_ = {};
    }
    auto start = Clock::now();
    auto start_ns = now_ns();
    auto next_report = start + tick;
    std::size_t probed = 0;
    auto next_reopen = start;
    for (;;) {
        // The probes due by now (paced as the soak phase's calls, so that the two compare),
        // over what is open (back already, or never dropped), in turn; those due
        // while nothing was open, or more than a short walk finds, are dropped, not fired
        // together later.
        auto due =
            std::size_t(std::chrono::duration<double>(Clock::now() - start).count() * probe_rate);
        if (probed < due) {
            std::vector<Connection> targets;
            {
                std::lock_guard l(mu_);
                targets = next_open(due - probed);
            }
            for (const auto& c : targets) probe_once(c);
            probed = due;
        }
        // Each goes back to the server it lost, as many at once as a worker may open, every
        // 50 ms: pacing the retries, as clients back off. What is open is counted as it opens
        // and closes, not by a walk over every connection (which, every 50 ms in 67 workers,
        // took a fifth of the machine as a million came back).
        if (Clock::now() >= next_reopen) {
            next_reopen = Clock::now() + tick / 5;
            prune(true);
            std::vector<std::size_t> missing(conns_.size());
            std::size_t open = 0, opening = 0;
            {
                std::lock_guard l(mu_);
                for (std::size_t e = 0; e < conns_.size(); ++e) {
                    open += open_[e];
                    opening += opening_[e];
                    missing[e] = storm_.missing(e, open_[e] + opening_[e]);
                }
                if (storm_.all_back(drops_, open) || storm_.stalled(open, 2 * setup_.timeout))
                    break;
            }
            auto room = setup_.max_opening - std::min(setup_.max_opening, opening);
            for (std::size_t e = 0; e < missing.size(); ++e)
                for (; missing[e] > 0 && room > 0; --missing[e], --room) open_one(e);
        }
        auto next_probe = probe_rate > 0 ? nth_due(start, probed + 1, probe_rate) : next_reopen;
        sleep_until_due(next_probe, next_reopen, next_report, "storm", progress);
    }
    // Opens still under way finish here, not in the next phase's figures.
    {
        std::unique_lock l(mu_);
        wakeup_.wait_for(l, setup_.timeout, [&] {
            return probes_.ok + probes_.failed == probes_.started &&
                   std::all_of(opening_.begin(), opening_.end(),
                               [](std::size_t n) { return n == 0; });
        });
    }
    prune();
    auto out = figures("storm");
    std::lock_guard l(mu_);
    if (probe_rate > 0)
        out["established"] = {
            {"ok", probes_.ok}, {"failed", probes_.failed}, {"latency", probes_.latency.to_json()}};
    storm_.report(out, drops_, first_drop_ns_);
    out["drop_reasons"] = drop_reasons_;
    out["start_ns"] = start_ns;  // reopening began: the servers were back
    return out;
}

}  // namespace hawser::bench
