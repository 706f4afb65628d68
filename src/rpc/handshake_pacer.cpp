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

void HandshakePacer::wait(std::shared_ptr<Conn> conn) {
    conn->set_waiting_for_pace(true);
    waiting_.push_back(std::move(conn));
}

std::shared_ptr<Conn> HandshakePacer::pop() {
    auto conn = std::move(waiting_.front());
    waiting_.pop_front();
    conn->set_waiting_for_pace(false);
    return conn;
}

std::deque<std::shared_ptr<Conn>> HandshakePacer::release(Clock::time_point now) {
    refill(now);
    std::deque<std::shared_ptr<Conn>> ready;
    while (!waiting_.empty()) {
        auto& next = *waiting_.front();
        if (next.is_closed()) {  // its handshake timed out while it waited
            pop();
            continue;
        }
        if (next.peer_gone()) {  // e.g. the client's own timeout was shorter than the wait
            pop()->close(CloseReason::peer_closed);
            continue;
        }
        if (paced()) {
            if (tokens_ < whole) break;
            tokens_ -= 1;
        }
        ready.push_back(pop());
    }
    return ready;
}

std::deque<std::shared_ptr<Conn>> HandshakePacer::take_all() {
    for (auto& conn : waiting_) conn->set_waiting_for_pace(false);
    return std::exchange(waiting_, {});
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
