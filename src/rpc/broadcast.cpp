// fan_out (see broadcast.hpp).
#include "rpc/broadcast.hpp"

#include <unordered_map>

#include "rpc/conn.hpp"
#include "wire/encode.hpp"

namespace hawser::detail {

Result<void> fan_out(const std::shared_ptr<Host>& host, Kind kind, std::string_view command,
                     std::string_view payload, bool compress, FanOut to) {
    if (command.empty() || command.size() > max_command_name)
        return Error{Errc::invalid_argument, "command names are 1 to 255 bytes"};
    if (header_size(0, command) + payload.size() > host->limits.max_frame_bytes)
        return Error{Errc::limit_exceeded, "broadcast over the frame size limit"};
    auto frame = std::make_shared<std::vector<std::uint8_t>>();
    encode_message(*frame, kind, 0, command,
                   {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()},
                   host->channel.transport, compress);
    // Fan-outs waiting for the IO threads are bounded like a connection's send queue: a caller
    // faster than the loops gets `overloaded` instead of an unbounded backlog. What one holds is
    // its frame and, for a channel's publication, the ids of its subscribers (a small message
    // to a big channel holds more ids than bytes).
    auto size = frame->size() + (to.only ? to.only->size() * sizeof(ConnectionId) : 0);
    auto& pending = host->counters.broadcast_pending_bytes;
    // One is let through when nothing waits, however big: a channel bigger than the bound can
    // still be published to, one publication at a time.
    if (auto before = pending.fetch_add(size);
        before != 0 && before + size > host->limits.max_send_queue_bytes) {
        pending.fetch_sub(size);
        return Error{Errc::overloaded, "too many broadcasts are waiting for the IO threads"};
    }
    // Given back when the last IO thread is done with this fan-out.
    auto held = std::shared_ptr<void>(
        nullptr, [host, size](void*) { host->counters.broadcast_pending_bytes.fetch_sub(size); });
    auto send = [host, frame, each = std::move(to.each),
                 admit = std::move(to.admit)](const std::shared_ptr<Conn>& c) {
        if (admit && !admit(Connection(c))) return;
        if (c->congested()) {  // over its soft limit: a broadcast is not worth queueing
            if (each)
                each(false);
            else
                host->counters.broadcast_skipped.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        c->send_prepared(*frame);
        if (each) each(true);
    };
    auto& runtime = host->runtime;
    if (!to.only) {
        for (std::size_t i = 0; i < runtime.size(); ++i)
            runtime.loop(i).post([host, i, send, held] {
                for (auto& c : host->snapshot(i)) send(c);
            });
        return {};
    }
    // A connection's id names its loop (its low byte): one post per loop that has some.
    std::unordered_map<std::size_t, std::vector<ConnectionId>> by_loop;
    for (auto id : *to.only) by_loop[(id & 0xff) % runtime.size()].push_back(id);
    for (auto& [i, ids] : by_loop)
        runtime.loop(i).post([host, ids = std::move(ids), send, held] {
            for (auto id : ids)
                if (auto c = host->find(id)) send(c);
        });
    return {};
}

}  // namespace hawser::detail
