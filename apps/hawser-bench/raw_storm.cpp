// The raw driver's reconnect storm (Driver::storm_arm, Driver::storm).
#include "raw_driver.hpp"

#include "clock.hpp"

namespace hawser::bench {

void RawDriver::storm_arm(std::size_t killed) {
    storm_.arm(per_endpoint(Peer::open), killed, drops_);
    first_drop_ns_ = 0;
}

Json RawDriver::storm(double /*probe_rate: raw servers answer pings only*/,
                      const Progress& progress) {
    reset();
    auto start_ns = now_ns();
    while (!storm_.all_back(drops_, open_) && !storm_.stalled(open_, 2 * setup_.timeout)) {
        auto open = per_endpoint(Peer::open), opening = per_endpoint(Peer::connecting);
        auto room = setup_.max_opening - std::min(setup_.max_opening, opening_);
        for (std::size_t e = 0; e < targets_.size(); ++e) {
            auto missing = storm_.missing(e, open[e] + opening[e]);
            for (; missing > 0 && room > 0; --missing, --room) open_one(e);
        }
        poll_until(Clock::now() + tick / 5, progress, "storm");  // as the Hawser driver paces
    }
    poll_while([&] { return opening_ > 0; }, progress, "storm");  // not the next phase's
    auto out = figures("storm");
    storm_.report(out, drops_, first_drop_ns_);
    out["start_ns"] = start_ns;
    return out;
}

}  // namespace hawser::bench
