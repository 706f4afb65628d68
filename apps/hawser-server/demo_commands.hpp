// The demo commands of the README tour and the browser examples: a server that answers, pushes
// and, on a cluster, lets clients talk on channels. Handlers run on the caller's IO thread.
#pragma once

#include <functional>
#include <string_view>

#include "hawser/commands.hpp"
#include "hawser/error.hpp"

namespace hawser::app {

// How a demo chat line reaches a channel's subscribers on every node (Cluster::publish); empty
// when the server is not a cluster node. `may_publish` says whether a connection may speak on a
// channel: the same rule as subscribing (Cluster's client_channel_prefixes).
struct DemoChannels {
    std::function<Result<void>(std::string_view channel, std::string_view line)> publish;
    std::function<bool(std::string_view channel)> may_publish;
};

// hello, echo, echo.frame, sum, log; push, call.back and call.back.frame (the server reaching
// the client);
// chat.say when `channels.publish` is set.
void register_demo_commands(Commands& commands, DemoChannels channels);

}  // namespace hawser::app
