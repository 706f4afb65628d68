// HandshakePacer: holds a server's key exchanges on one loop to a rate
// (AdmissionOptions::max_handshakes_per_second). A server's key exchange costs three X25519
// operations (about 150 us); in a reconnect storm thousands arrive at once, and even one per
// turn of the loop they take the cores from the established connections. Past the rate a
// handshake waits here, in arrival order, rather than being refused: the handshake timeout
// still bounds the wait, and admission (max_handshakes) bounds how many wait. A handshake takes
// one turn, at its first read, whatever follows (a WebSocket upgrade, a hello split over reads,
// the third message of XX); a plaintext agreement takes one too. A token bucket of 10 ms worth
// (at least one) lets a calm server answer a handful at once.
// Thread affinity: one per loop of a server's Host, used on that loop only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "rpc/loop.hpp"

namespace hawser::detail {

class HandshakePacer {
  public:
    // Handshakes a second on this loop; 0 = each at once. A change keeps what waits (release
    // hands it on at the new rate).
    void set_rate(double per_second) noexcept;
    bool paced() const noexcept { return rate_ > 0 && !stopped_; }
    // The server is going away: nothing waits from now on (what does is take_all()'s).
    void stop() noexcept { stopped_ = true; }

    // Whether a handshake may go now (it takes a token); false: wait() it.
    bool take(Clock::time_point now) noexcept;
    void wait(std::shared_ptr<Conn> conn);
    // The connections whose turn has come, oldest first. Those closed meanwhile (a handshake
    // timeout) are dropped, and those whose peer left are closed: neither takes a token.
    std::deque<std::shared_ptr<Conn>> release(Clock::time_point now);
    // When the next waiting step's token is due, if any waits.
    std::optional<Clock::time_point> next_due(Clock::time_point now) const noexcept;
    // Hands over what waits (the server is going away): its owner closes them.
    std::deque<std::shared_ptr<Conn>> take_all();

    // Whether a wake-up is armed for next_due (the owner arms one at a time), and which: a
    // rate change arms a sooner one, and the one it replaces finds itself stale.
    bool armed = false;
    std::uint64_t wake_up = 0;

  private:
    void refill(Clock::time_point now) noexcept;
    std::shared_ptr<Conn> pop();

    double rate_ = 0, burst_ = 1, tokens_ = 1;
    bool stopped_ = false;
    std::optional<Clock::time_point> last_;
    std::deque<std::shared_ptr<Conn>> waiting_;
};

}  // namespace hawser::detail
