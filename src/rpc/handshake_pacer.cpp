// HandshakePacer (see handshake_pacer.hpp): a token bucket and a queue, on one loop.
#include "rpc/handshake_pacer.hpp"

#include <algorithm>

#include "rpc/conn.hpp"

namespace hawser::detail {

namespace {
// A token is whole within this: sums of fractions fall a hair short of 1.
constexpr double whole = 1 - 1e-9;
}  // namespace

void HandshakePacer::set_rate(double per_second) noexcept {
    rate_ = per_second > 0 ? per_second : 0;
    burst_ = std::max(1.0, rate_ / 100);  // 10 ms worth
    tokens_ = last_ ? std::min(tokens_, burst_) : burst_;
}

void HandshakePacer::refill(Clock::time_point now) noexcept {
    if (last_ && now > *last_)
        tokens_ =
            std::min(burst_, tokens_ + std::chrono::duration<double>(now - *last_).count() * rate_);
    if (!last_ || now > *last_) last_ = now;
}

bool HandshakePacer::take(Clock::time_point now) noexcept {
    if (!paced()) return true;
    refill(now);
    if (!waiting_.empty() || tokens_ < whole) return false;  // in arrival order
    tokens_ -= 1;
    return true;
}

std::deque<std::shared_ptr<Conn>> HandshakePacer::release(Clock::time_point now) {
    refill(now);
    std::deque<std::shared_ptr<Conn>> ready;
    while (!waiting_.empty()) {
        if (waiting_.front()->is_closed()) {  // its handshake timed out while it waited
            waiting_.pop_front();
            continue;
        }
        if (paced()) {
            if (tokens_ < whole) break;
            tokens_ -= 1;
        }
        ready.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
    }
    return ready;
}

std::optional<Clock::time_point> HandshakePacer::next_due(Clock::time_point now) const noexcept {
    if (waiting_.empty()) return std::nullopt;
    if (!paced()) return now;
    // Rounded up, so that the token is there when the wake-up comes. A loop's share is the
    // server's rate over its IO threads (docs/security.md says to keep it at least one per
    // handshake timeout); an hour bounds the arithmetic whatever it is.
    auto short_by = std::max(0.0, 1 - tokens_);
    return now + std::chrono::ceil<Clock::duration>(
                     std::chrono::duration<double>(std::min(short_by / rate_, 3600.0)));
}

}  // namespace hawser::detail
