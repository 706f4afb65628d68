// The reply end of one incoming call (detail::ReplyTo in commands.hpp), in two forms:
// - ReplySlot: completed exactly once, from any thread; the reply is then sent on the
//   connection's IO thread. Dropped without a reply, it answers Errc::handler_error so that no
//   caller waits forever. Shared (Responder, coroutines, worker jobs).
// - ReplyHere: for a handler that runs now on the connection's IO thread. It lives on the
//   stack of the dispatch and sends an answer given during the handler straight away, with no
//   allocation and no reference counting; a handler that answers later makes it a ReplySlot.
// A failed handler is reported through reply_exception (commands.hpp): the peer gets an error
// id, the server's log the details.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/tick_clock.hpp"
#include "hawser/commands.hpp"
#include "hawser/error.hpp"
#include "rpc/command_stats.hpp"
#include "rpc/gate.hpp"

namespace hawser::detail {

class Conn;
class Host;

class ReplySlot {
  public:
    // `compress`: whether the reply may be compressed (CommandOptions::compress). `started`:
    // when the handler was called, for the command's handler time.
    ReplySlot(std::weak_ptr<Conn> conn, std::uint64_t call_id, CommandStatsCell& stats,
              std::shared_ptr<Host> host, Gate::Pass pass, bool compress, TickClock::Ticks started);
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
    CommandStatsCell& stats_;     // its command's, in the command table host_ keeps
    std::shared_ptr<Host> host_;  // keeps the command table alive while the handler runs
    Gate::Pass pass_;             // given back when the reply is handed over
    TickClock::Ticks started_;
    bool compress_;
    std::atomic<bool> done_{false};
};

// A shared slot as a ReplyTo: for handlers that run off the IO thread.
class SlotReply final : public ReplyTo {
  public:
    explicit SlotReply(std::shared_ptr<ReplySlot> slot) : slot_(std::move(slot)) {}
    void answer(Errc code, std::string payload) override {
        slot_->complete(code, std::move(payload));
    }
    std::shared_ptr<ReplySlot> keep() override { return slot_; }

  private:
    std::shared_ptr<ReplySlot> slot_;
};

// The answer of a call whose handler runs now, on the connection's IO thread. Stack only.
class ReplyHere final : public ReplyTo {
  public:
    ReplyHere(Conn& conn, std::uint64_t call_id, const Commands::Entry& entry, Gate::Pass pass);
    ~ReplyHere();  // a handler that neither answered nor kept the slot gets handler_error
    ReplyHere(const ReplyHere&) = delete;
    ReplyHere& operator=(const ReplyHere&) = delete;

    void answer(Errc code, std::string payload) override;
    std::shared_ptr<ReplySlot> keep() override;
    // The handler threw: logged under an error id, answered handler_error (or through the
    // slot, if it was kept).
    void fail(std::exception_ptr e);

  private:
    Conn& conn_;
    std::uint64_t call_id_;
    const Commands::Entry& entry_;
    Gate::Pass pass_;
    TickClock::Ticks started_;
    bool answered_ = false;
    std::shared_ptr<ReplySlot> slot_;  // once kept
};

// Records a finished handler in its command's figures (the shard of the recording thread).
void record_answer(CommandStatsCell::Shard& figures, Errc code, std::size_t bytes,
                   TickClock::Ticks started);
// Logs a handler's failure under a fresh error id; the text its caller gets.
std::string logged_failure(Host& host, std::string_view command, std::exception_ptr e);

// A fresh id for one failure, 8 hex digits: what the peer gets instead of the details, and what
// the server's log line carries beside them.
std::string new_error_id();
// The text a peer gets for a failure whose details were logged under `id`.
std::string peer_error_text(bool send_details, std::string_view generic, std::string_view details,
                            std::string_view id);

}  // namespace hawser::detail
