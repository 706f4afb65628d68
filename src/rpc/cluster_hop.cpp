// Route replies and redirect texts (see cluster_hop.hpp).
#include "rpc/cluster_hop.hpp"

namespace hawser::detail {

namespace {

Error bad(std::string what) {
    return Error{Errc::bad_payload, std::move(what)};
}

Result<ClusterHop> checked(ClusterHop hop, std::string_view key, bool plaintext,
                           std::string_view what) {
    if (hop.node.empty() || hop.endpoints.empty() || hop.endpoints.size() > max_hop_endpoints)
        return bad(std::string(what) + " without a node and 1 to 16 endpoints");
    if (!plaintext) {
        hop.key = noise::key_from_hex(key);
        if (!hop.key) return bad(std::string(what) + " without a valid node key");
    }
    return hop;
}

}  // namespace

Result<ClusterHop> parse_route_reply(std::string_view reply, const DecodeLimits& limits,
                                     bool plaintext) {
    auto frame = DataFrame::decode(reply, limits);
    if (!frame) return frame.error();
    auto map = frame->read_map();
    if (!map) return map.error();
    auto text = [&](const char* name) -> std::string {
        auto it = map->find(name);
        return it != map->end() && it->second.is<std::string>() ? it->second.as<std::string>()
                                                                : std::string();
    };
    ClusterHop hop;
    hop.node = text("node");
    hop.here = text("here");
    if (auto it = map->find("endpoints"); it != map->end() && it->second.is<Array>())
        for (const auto& e : it->second.as<Array>())
            if (e.is<std::string>()) hop.endpoints.push_back(e.as<std::string>());
    return checked(std::move(hop), text("public_key"), plaintext, "route reply");
}

Result<ClusterHop> parse_redirect(std::string_view text, bool plaintext) {
    auto first = text.find(' ');
    auto second = first == std::string_view::npos ? first : text.find(' ', first + 1);
    if (second == std::string_view::npos) return bad("redirect without a node, key and endpoints");
    ClusterHop hop;
    hop.node = text.substr(0, first);
    auto key = text.substr(first + 1, second - first - 1);
    for (std::size_t at = second + 1; at <= text.size();) {
        auto end = std::min(text.find(',', at), text.size());
        if (end > at) hop.endpoints.emplace_back(text.substr(at, end - at));
        at = end + 1;
    }
    return checked(std::move(hop), key, plaintext, "redirect");
}

}  // namespace hawser::detail
