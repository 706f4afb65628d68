#include "rpc/reply_slot.hpp"

#include "rpc/command_stats.hpp"
#include "rpc/conn.hpp"

namespace hawser::detail {

ReplySlot::ReplySlot(std::weak_ptr<Conn> conn, std::uint64_t call_id,
                     std::shared_ptr<CommandStatsCell> stats, std::shared_ptr<Host> host,
                     Gate::Pass pass)
    : conn_(std::move(conn)),
      call_id_(call_id),
      stats_(std::move(stats)),
      host_(std::move(host)),
      pass_(std::move(pass)),
      started_(Clock::now()) {}

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
        conn->finish_call(call_id_, code, payload);
    } else {
        conn->loop().post([conn, id = call_id_, code, payload = std::move(payload)] {
            conn->finish_call(id, code, payload);
        });
    }
    return true;
}

void reply_ok(const std::shared_ptr<ReplySlot>& slot, std::string payload) {
    if (slot) slot->complete(Errc::ok, std::move(payload));
}

void reply_error(const std::shared_ptr<ReplySlot>& slot, Errc code, std::string message) {
    if (slot) slot->complete(code == Errc::ok ? Errc::handler_error : code, std::move(message));
}

}  // namespace hawser::detail
