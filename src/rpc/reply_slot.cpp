// ReplySlot (see reply_slot.hpp): completes a call once from any thread and posts the reply
// to the connection's loop.
#include "rpc/reply_slot.hpp"

#include <sodium.h>

#include <cstdio>

#include "rpc/command_stats.hpp"
#include "rpc/conn.hpp"

namespace hawser::detail {

ReplySlot::ReplySlot(std::weak_ptr<Conn> conn, std::uint64_t call_id,
                     std::shared_ptr<CommandStatsCell> stats, std::shared_ptr<Host> host,
                     Gate::Pass pass, bool compress)
    : conn_(std::move(conn)),
      call_id_(call_id),
      stats_(std::move(stats)),
      host_(std::move(host)),
      pass_(std::move(pass)),
      started_(Clock::now()),
      compress_(compress) {}

ReplySlot::~ReplySlot() {
    if (!done()) complete(Errc::handler_error, "the handler finished without replying");
}

bool ReplySlot::complete(Errc code, std::string payload) {
    if (done_.exchange(true, std::memory_order_acq_rel)) return false;
    stats_->handler_ns.record(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started_).count());
    if (code != Errc::ok)
        stats_->errors.fetch_add(1, std::memory_order_relaxed);
    else
        stats_->bytes_out.fetch_add(payload.size(), std::memory_order_relaxed);
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

void reply_exception(const std::shared_ptr<ReplySlot>& slot, std::string_view command,
                     std::exception_ptr e) {
    if (!slot) return;
    auto what = describe_exception(e);
    auto id = new_error_id();
    bool details = false;
    if (auto conn = slot->conn()) {
        // A peer can make a handler fail at will: the log is rate-limited per command.
        details = conn->host().send_error_details;
        conn->host().log.warn(
            "handler_error:" + std::string(command),
            "hawser: command '" + std::string(command) + "' failed (error id " + id + "): " + what);
    }
    slot->complete(Errc::handler_error, peer_error_text(details, "handler failed", what, id));
}

}  // namespace hawser::detail
