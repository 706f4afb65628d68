// ReplySlot and ReplyHere (see reply_slot.hpp): a call's answer, from any thread through the
// connection's loop, or at once on it.
#include "rpc/reply_slot.hpp"

#include <sodium.h>

#include <cstdio>

#include "rpc/command_stats.hpp"
#include "rpc/conn.hpp"

namespace hawser::detail {

void record_answer(CommandStatsCell::Shard& figures, Errc code, std::size_t bytes,
                   TickClock::Ticks started) {
    figures.record(TickClock::since(started).count());
    if (code != Errc::ok)
        figures.add(figures.errors);
    else
        figures.add(figures.bytes_out, bytes);
}

ReplySlot::ReplySlot(std::weak_ptr<Conn> conn, std::uint64_t call_id, CommandStatsCell& stats,
                     std::shared_ptr<Host> host, Gate::Pass pass, bool compress,
                     TickClock::Ticks started)
    : conn_(std::move(conn)),
      call_id_(call_id),
      stats_(stats),
      host_(std::move(host)),
      pass_(std::move(pass)),
      started_(started),
      compress_(compress) {}

ReplySlot::~ReplySlot() {
    if (!done()) complete(Errc::handler_error, "the handler finished without replying");
}

bool ReplySlot::complete(Errc code, std::string payload) {
    if (done_.exchange(true, std::memory_order_acq_rel)) return false;
    record_answer(stats_.elsewhere(), code, payload.size(), started_);
    Gate::Pass leaving = std::move(pass_);  // the handler's work is done once this returns
    auto conn = conn_.lock();
    if (!conn) return true;  // the caller is gone; nobody to answer
    if (conn->loop().in_loop()) {
        conn->finish_call(call_id_, code, payload, compress_);
    } else {
        // The reference moves to the loop: a connection is never destroyed off its loop.
        auto& loop = conn->loop();
        loop.post([conn = std::move(conn), id = call_id_, code, payload = std::move(payload),
                   compress = compress_] { conn->finish_call(id, code, payload, compress); });
    }
    return true;
}

ReplyHere::ReplyHere(Conn& conn, std::uint64_t call_id, const Commands::Entry& entry,
                     Gate::Pass pass)
    : conn_(conn),
      call_id_(call_id),
      entry_(entry),
      pass_(std::move(pass)),
      started_(TickClock::now()) {}

ReplyHere::~ReplyHere() {
    if (!answered_ && !slot_) answer(Errc::handler_error, "the handler finished without replying");
}

void ReplyHere::answer(Errc code, std::string payload) {
    if (answered_) return;
    if (slot_) {  // kept: the slot is the one answer
        slot_->complete(code, std::move(payload));
        return;
    }
    answered_ = true;
    record_answer(entry_.stats->on_loop(conn_.loop().index()), code, payload.size(), started_);
    Gate::Pass leaving = std::move(pass_);  // the handler's work is done
    conn_.finish_call(call_id_, code, payload, entry_.options.compress);
}

std::shared_ptr<ReplySlot> ReplyHere::keep() {
    if (answered_) return nullptr;
    if (!slot_)
        slot_ = std::make_shared<ReplySlot>(conn_.weak_from_this(), call_id_, *entry_.stats,
                                            conn_.host().shared_from_this(), std::move(pass_),
                                            entry_.options.compress, started_);
    return slot_;
}

void ReplyHere::fail(std::exception_ptr e) {
    if (slot_) return reply_exception(slot_, entry_.name, e);
    auto text = logged_failure(conn_.host(), entry_.name, e);
    answer(Errc::handler_error, std::move(text));
}

void reply_ok(const std::shared_ptr<ReplySlot>& slot, std::string payload) {
    if (slot) slot->complete(Errc::ok, std::move(payload));
}

void reply_error(const std::shared_ptr<ReplySlot>& slot, Errc code, std::string message) {
    if (slot) slot->complete(code == Errc::ok ? Errc::handler_error : code, std::move(message));
}

std::string new_error_id() {
    char id[9];
    std::snprintf(id, sizeof id, "%08x", static_cast<unsigned>(randombytes_random()));
    return id;
}

std::string peer_error_text(bool send_details, std::string_view generic, std::string_view details,
                            std::string_view id) {
    return std::string(send_details ? details : generic) + " (error id " + std::string(id) + ")";
}

std::string logged_failure(Host& host, std::string_view command, std::exception_ptr e) {
    auto what = describe_exception(e);
    auto id = new_error_id();
    // A peer can make a handler fail at will: the log is rate-limited per command.
    host.log.warn(
        "handler_error:" + std::string(command),
        "hawser: command '" + std::string(command) + "' failed (error id " + id + "): " + what);
    return peer_error_text(host.send_error_details, "handler failed", what, id);
}

void reply_exception(const std::shared_ptr<ReplySlot>& slot, std::string_view command,
                     std::exception_ptr e) {
    if (!slot) return;
    if (auto conn = slot->conn()) {
        slot->complete(Errc::handler_error, logged_failure(conn->host(), command, e));
        return;
    }
    auto id = new_error_id();
    slot->complete(Errc::handler_error,
                   peer_error_text(false, "handler failed", describe_exception(e), id));
}

}  // namespace hawser::detail
