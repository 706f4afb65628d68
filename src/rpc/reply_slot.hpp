// ReplySlot: the reply end of one incoming call. Completed exactly once, from any thread; the
// reply is then sent on the connection's IO thread. Dropped without a reply, it answers
// Errc::handler_error so that no caller waits forever.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "hawser/error.hpp"
#include "rpc/gate.hpp"

namespace hawser::detail {

class Conn;
class Host;
struct CommandStatsCell;

class ReplySlot {
  public:
    ReplySlot(std::weak_ptr<Conn> conn, std::uint64_t call_id,
              std::shared_ptr<CommandStatsCell> stats, std::shared_ptr<Host> host, Gate::Pass pass);
    ~ReplySlot();
    ReplySlot(const ReplySlot&) = delete;
    ReplySlot& operator=(const ReplySlot&) = delete;

    // False if the slot was completed already (the first completion wins).
    bool complete(Errc code, std::string payload_or_message);
    bool done() const noexcept { return done_.load(std::memory_order_acquire); }

  private:
    std::weak_ptr<Conn> conn_;
    std::uint64_t call_id_;
    std::shared_ptr<CommandStatsCell> stats_;
    std::shared_ptr<Host> host_;  // keeps the command table alive while the handler runs
    Gate::Pass pass_;             // given back when the reply is handed over
    std::chrono::steady_clock::time_point started_;
    std::atomic<bool> done_{false};
};

}  // namespace hawser::detail
