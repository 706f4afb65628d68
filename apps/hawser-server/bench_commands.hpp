// Commands for hawser-bench, registered only with --bench-commands: they let any client make
// the server broadcast, so they are for benchmark servers, never production ones.
#pragma once

#include <functional>
#include <string_view>

#include "hawser/commands.hpp"
#include "hawser/error.hpp"

namespace hawser::app {

// How the server reaches every connection: its own (Server::broadcast) or, on a cluster node,
// every node's (Cluster::broadcast).
using BroadcastAll = std::function<Result<void>(std::string_view command, std::string_view text)>;
// How the server publishes to a channel (Cluster::publish); empty without a cluster.
using PublishTo = std::function<Result<void>(std::string_view channel, std::string_view command,
                                             std::string_view text)>;

// "bench.broadcast" with "<count> <size>": sends `count` one-way "bench.message"s of `size`
// bytes to every connection. Each starts "<seq> <CLOCK_MONOTONIC ns at send>", so a receiver on
// the same machine knows how long it took.
// "bench.publish" with "<worker> <personal> <group> <first> <count> <size>": `count`
// publications of hawser-bench's channels phase, each one "bench.message" of `size` bytes, going
// round the worker's `personal` channels and its groups of `group` from index `first`
// (apps/common/bench_channels.hpp). Answers how many.
void register_bench_commands(Commands& commands, BroadcastAll broadcast, PublishTo publish);

}  // namespace hawser::app
