// ReplySlot: the reply end of one incoming call. Completed exactly once, from any thread; the
// reply is then sent on the connection's IO thread. Dropped without a reply, it answers
// Errc::handler_error so that no caller waits forever. A failed handler is reported through
// reply_exception (commands.hpp): the peer gets an error id, the server's log the details.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "hawser/error.hpp"
#include "rpc/gate.hpp"

namespace hawser::detail {

class Conn;
class Host;
struct CommandStatsCell;

class ReplySlot {
  public:
    // `compress`: whether the reply may be compressed (CommandOptions::compress).
    ReplySlot(std::weak_ptr<Conn> conn, std::uint64_t call_id,
              std::shared_ptr<CommandStatsCell> stats, std::shared_ptr<Host> host, Gate::Pass pass,
              bool compress = true);
    ~ReplySlot();
    ReplySlot(const ReplySlot&) = delete;
    ReplySlot& operator=(const ReplySlot&) = delete;

    // False if the slot was completed already (the first completion wins).
    bool complete(Errc code, std::string payload_or_message);
    bool done() const noexcept { return done_.load(std::memory_order_acquire); }
    std::shared_ptr<Conn> conn() const { return conn_.lock(); }

  private:
    std::weak_ptr<Conn> conn_;
    std::uint64_t call_id_;
    std::shared_ptr<CommandStatsCell> stats_;
    std::shared_ptr<Host> host_;  // keeps the command table alive while the handler runs
    Gate::Pass pass_;             // given back when the reply is handed over
    std::chrono::steady_clock::time_point started_;
    bool compress_;
    std::atomic<bool> done_{false};
};

// A fresh id for one failure, 8 hex digits: what the peer gets instead of the details, and what
// the server's log line carries beside them.
std::string new_error_id();
// The text a peer gets for a failure whose details were logged under `id`.
std::string peer_error_text(bool send_details, std::string_view generic, std::string_view details,
                            std::string_view id);

}  // namespace hawser::detail
