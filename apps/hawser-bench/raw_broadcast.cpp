// The raw driver's broadcast phase, and its slow consumers (Driver::arm, Driver::broadcast).
#include "raw_driver.hpp"

#include <sys/epoll.h>

#include "clock.hpp"
#include "raw_wire.hpp"

namespace hawser::bench {

void RawDriver::arm(double slow_fraction) {
    deliveries_ = {};
    slow_deliveries_ = 0;
    std::vector<int> all;
    for_each_open([&](int fd) { all.push_back(fd); });
    slow_.clear();
    for (auto i : spread_pick(all.size(), slow_fraction)) {
        auto fd = all[i];
        peers_[std::size_t(fd)].slow = true;
        slow_.emplace_back(fd, peers_[std::size_t(fd)].serial);
        watch(fd, 0);  // not read until the broadcast is over
    }
}

Json RawDriver::broadcast(bool trigger, unsigned count, unsigned size, const Progress& progress) {
    std::size_t expected = std::size_t(count) * (open_ - slow_.size());
    auto start_ns = now_ns();
    heartbeats_ = heartbeats_answered_ = 0;  // this phase's
    if (trigger) {
        // Raw servers are not a cluster: each endpoint is asked on one of its connections.
        std::vector<bool> asked(targets_.size());
        for_each_open([&](int fd) {
            auto& p = peers_[std::size_t(fd)];
            if (asked[p.endpoint]) return;
            asked[p.endpoint] = true;
            std::string frame;
            raw::append_frame(frame, raw::trigger,
                              std::to_string(count) + " " + std::to_string(size));
            write_all(fd, frame);
        });
    }
    auto deadline = Clock::now() + setup_.timeout;
    poll_while([&] { return deliveries_.count < expected && Clock::now() < deadline; }, progress,
               "broadcast");
    auto out = figures("broadcast");
    if (!slow_.empty()) {
        out["slow"] = slow_.size();
        out["slow_deliveries"] = slow_deliveries_;  // none: not read
        slow_deliveries_ = 0;
        catch_up(count, out, progress);
    }
    out["start_ns"] = start_ns;
    out["expected"] = expected;
    deliveries_.report(out);
    return out;
}

void RawDriver::catch_up(unsigned count, Json& out, const Progress& progress) {
    auto open_slow = [&] {
        std::size_t n = 0;
        for (auto [fd, serial] : slow_) {
            auto& p = peers_[std::size_t(fd)];
            n += p.state == Peer::open && p.serial == serial;
        }
        return n;
    };
    for (auto [fd, serial] : slow_) {
        auto& p = peers_[std::size_t(fd)];
        if (p.state == Peer::open && p.serial == serial) watch(fd, EPOLLIN);
    }
    Settling settling(setup_.timeout);
    poll_while([&] { return !settling.over(slow_deliveries_, std::uint64_t(count) * open_slow()); },
               progress, "broadcast");
    out["slow_caught_up"] = slow_deliveries_;
    out["slow_closed"] = slow_.size() - open_slow();
    for (auto [fd, serial] : slow_) {
        auto& p = peers_[std::size_t(fd)];
        if (p.serial == serial) p.slow = false;
    }
    slow_.clear();
}

}  // namespace hawser::bench
