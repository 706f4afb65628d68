// The raw driver's heartbeats (raw_driver.hpp): each open socket sends one as Hawser's client
// does, so that a phase carries the same background traffic on both sides.
#include <algorithm>

#include "clock.hpp"
#include "raw_driver.hpp"
#include "raw_wire.hpp"

namespace hawser::bench {

void RawDriver::schedule_heartbeats(int fd) {
    auto every = std::chrono::nanoseconds(setup_.heartbeat).count();
    if (every <= 0) return;
    auto& p = peers_[std::size_t(fd)];
    p.heard_ns = now_ns();  // just opened: quiet from now
    beats_.push({p.heard_ns + std::uint64_t(every), fd, p.serial});
}

void RawDriver::send_heartbeats(std::uint64_t now) {
    const auto every = std::uint64_t(std::chrono::nanoseconds(setup_.heartbeat).count());
    while (!beats_.empty() && beats_.top().due_ns <= now) {
        auto beat = beats_.top();
        beats_.pop();
        auto& p = peers_[std::size_t(beat.fd)];
        if (p.state != Peer::open || p.serial != beat.serial) continue;  // closed meanwhile
        auto due = std::max(p.heard_ns, p.beat_ns) + every;
        if (due <= now) {
            std::string frame;
            raw::append_frame(frame, raw::heartbeat, {});
            if (write_all(beat.fd, frame)) ++heartbeats_;
            p.beat_ns = now;
            due = now + every;
        }
        beats_.push({due, beat.fd, beat.serial});
    }
}

}  // namespace hawser::bench
