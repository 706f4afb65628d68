// Fan-out of one one-way command to many connections: encoded (and compressed) once, then
// each IO thread hands the same bytes to its own connections' send queues, skipping those over
// their soft send limit. Server::broadcast sends to every connection; the cluster's channels to
// their subscribers on this node.
// Thread affinity: any thread; the sends happen on the connections' loops. Fan-outs waiting for
// the loops are bounded in bytes (Limits::max_send_queue_bytes): past it, `overloaded`.
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "hawser/connection.hpp"
#include "rpc/host.hpp"

namespace hawser::detail {

struct FanOut {
    // Only these connections (ids of `host`'s); every connection when null.
    const std::vector<ConnectionId>* only = nullptr;
    // Runs on the loop for each connection reached: true if the bytes were queued, false if it
    // was skipped as congested. Empty: skips are counted in Stats::broadcast_skipped.
    std::function<void(bool)> each;
    // Runs on the loop before each connection: false passes it by (not sent, not counted).
    std::function<bool(const Connection&)> admit;
};

Result<void> fan_out(const std::shared_ptr<Host>& host, Kind kind, std::string_view command,
                     std::string_view payload, bool compress, FanOut to = {});

}  // namespace hawser::detail
