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

// "bench.broadcast" with "<count> <size>": sends `count` one-way "bench.message"s of `size`
// bytes to every connection. Each starts "<seq> <CLOCK_MONOTONIC ns at send>", so a receiver on
// the same machine knows how long it took.
void register_bench_commands(Commands& commands, BroadcastAll broadcast);

}  // namespace hawser::app
