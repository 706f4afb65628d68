// Where a cluster node sends a client: the answer to a route request (a DataFrame map) or the
// text of a redirect goodbye ("<node> <key or -> <endpoint>[,<endpoint>...]"), parsed and
// checked (docs/cluster.md, "Routing"; docs/protocol.md, "Redirects"). The node sends them
// over the channel the client authenticated, so the key they carry is trusted.
// Thread affinity: none (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "wire/noise.hpp"

namespace hawser::detail {

struct ClusterHop {
    std::string node;               // where to go
    std::string here;               // the node that answered (route replies only)
    std::optional<noise::Key> key;  // the target's key; none in plaintext mode
    std::vector<std::string> endpoints;
};

constexpr std::size_t max_hop_endpoints = 16;

Result<ClusterHop> parse_route_reply(std::string_view reply, const DecodeLimits& limits,
                                     bool plaintext);
Result<ClusterHop> parse_redirect(std::string_view text, bool plaintext);

}  // namespace hawser::detail
