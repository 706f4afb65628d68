// The Hawser driver's channels phase (Driver::channels): subscriptions, paced or chained
// publications, replacements meanwhile.
#include "hawser_driver.hpp"

#include <algorithm>

#include "clock.hpp"
#include "hawser/cluster.hpp"

namespace hawser::bench {

Json HawserDriver::channels(const ChannelsPlan& plan, const Progress& progress) {
    reset();
    auto all = snapshot();
    const ChannelLayout layout{plan.worker, all.size(), std::max<std::size_t>(1, plan.group)};
    {
        std::lock_guard l(mu_);
        layout_ = layout;
        deliveries_ = {};  // progress shows these from the start
        channels_open_ = true;
        channel_of_.clear();
        for (std::size_t k = 0; k < all.size(); ++k) channel_of_[all[k].id()] = k;
    }
    // Paced as connects are: at most two subscriptions per --max-opening in flight.
    auto subscribe_ns = now_ns();
    auto deadline = Clock::now() + 2 * setup_.timeout;
    auto next_report = Clock::now() + tick;
    for (std::size_t k = 0; k < all.size(); ++k) {
        {
            std::unique_lock l(mu_);
            wakeup_.wait_until(l, deadline, [&] { return joining_ < 2 * setup_.max_opening; });
            joining_ += 2;
        }
        join_channels(all[k], k);
        if (Clock::now() >= next_report) {
            next_report += tick;
            progress(figures("channels"));
        }
    }
    wait_until_finished(2 * all.size(), progress, "channels");
    auto subscribed = figures("subscribe");  // the calls' latency
    subscribed["seconds"] = double(now_ns() - subscribe_ns) / 1e9;
    for (auto* key : {"phase", "open", "end_ns"}) subscribed.erase(key);
    reset();
    {
        std::lock_guard l(mu_);
        deliveries_ = {};
        // The servers are one cluster: one of them publishes. Each worker asks its own, or
        // the next that has a connection.
        publisher_ = {};
        for (std::size_t n = 0; n < conns_.size() && !publisher_.valid(); ++n)
            for (auto& c : conns_[(plan.worker + n) % conns_.size()])
                if (c.connected()) {
                    publisher_ = c;
                    break;
                }
        if (!publisher_.valid() && layout.personal > 0) ++errors_["publish: no connection open"];
        publishing_ = {.total = publisher_.valid() ? plan.rounds * layout.per_round() : 0,
                       .size = plan.size,
                       .chained = plan.rate <= 0};
    }
    ChannelsPace pace(plan);
    auto start_ns = now_ns();
    if (plan.rate <= 0) publish_next();
    // Paced publications and replacements until every publication was answered (or one
    // failed).
    next_report = Clock::now() + tick;
    std::size_t churned = 0, turn = 0;
    for (;;) {
        {
            std::unique_lock l(mu_);
            if (wakeup_.wait_until(l, pace.wake(), [&] { return publishing_.over(); })) break;
        }
        if (plan.rate > 0) publish_next(pace.publications_due());
        for (auto n = pace.replacements_due(); n > 0; --n)
            churned += replace_oldest(turn++ % conns_.size());
        if (Clock::now() >= next_report) {
            next_report += tick;
            progress(figures("channels"));
        }
    }
    std::uint64_t expected;
    {
        std::lock_guard l(mu_);
        expected = publishing_.reach;
    }
    settle(
        deliveries_.count, [&] { return expected; }, progress, "channels");
    // Replacements and their subscriptions under way finish here, not in the next phase.
    {
        std::unique_lock l(mu_);
        wakeup_.wait_for(l, setup_.timeout, [&] {
            return joining_ == 0 && std::all_of(opening_.begin(), opening_.end(),
                                                [](std::size_t n) { return n == 0; });
        });
    }
    auto out = figures("channels");
    std::lock_guard l(mu_);
    deliveries_.report(out);
    publishing_.report(out, layout);
    out["subscribe"] = subscribed;
    out["start_ns"] = start_ns;
    out["expected"] = expected;
    out["churned"] = churned;
    channel_of_.clear();
    channels_open_ = false;
    publishing_ = {};
    publisher_ = {};
    return out;
}

void HawserDriver::join_channels(const Connection& c, std::size_t k) {
    ChannelLayout layout;
    {
        std::lock_guard l(mu_);
        layout = layout_;
    }
    for (auto channel : {layout.personal_channel(k), layout.group_channel(k / layout.group)}) {
        auto t0 = now_us();
        c.call(Cluster::subscribe_command, channel, [this, t0](Result<std::string> r) {
            finished(bool(r), t0, r ? nullptr : &r.error());
            std::lock_guard l(mu_);
            --joining_;
            wakeup_.changed();
        });
    }
}

void HawserDriver::publish_next(std::uint64_t due) {
    std::string request;
    Connection publisher;
    std::pair<std::uint64_t, std::uint64_t> slice;
    {
        std::lock_guard l(mu_);
        auto next = publishing_.take(due, layout_);
        if (!next) return;
        slice = *next;
        ++publishing_.in_flight;
        publisher = publisher_;
        request = publishing_.request(slice, layout_);
    }
    auto t0 = now_us();
    publisher.call("bench.publish", request, [this, t0, slice](Result<std::string> r) {
        finished(bool(r), t0, r ? nullptr : &r.error());
        bool chain;
        {
            std::lock_guard l(mu_);
            --publishing_.in_flight;
            if (r)
                publishing_.answer(slice, layout_);
            else
                publishing_.failed = true;
            chain = r && publishing_.chained;
            wakeup_.changed();
        }
        if (chain) publish_next();
    });
}

}  // namespace hawser::bench
