// NodeRegistry (see node_registry.hpp).
#include "cluster/node_registry.hpp"

#include <algorithm>

namespace hawser::detail {

bool NodeRegistry::update(NodeInfo info, Clock::time_point now) {
    info.seen = now;
    auto it = nodes_.find(info.name);
    if (it == nodes_.end()) {
        auto name = info.name;
        nodes_.emplace(std::move(name), std::move(info));
        return true;
    }
    // NATS keeps one publisher's order, but a report may also be replayed or forged by a
    // confused peer: never go back in time, except for a restart (which starts again at 1).
    if (info.sequence <= it->second.sequence && info.sequence != 1) return false;
    it->second = std::move(info);
    return true;
}

bool NodeRegistry::remove(std::string_view name) {
    auto it = nodes_.find(std::string(name));
    if (it == nodes_.end()) return false;
    nodes_.erase(it);
    return true;
}

std::vector<std::string> NodeRegistry::expire(Clock::time_point now, Clock::duration expiry) {
    std::vector<std::string> gone;
    for (auto it = nodes_.begin(); it != nodes_.end();) {
        if (now - it->second.seen >= expiry) {
            gone.push_back(it->first);
            it = nodes_.erase(it);
        } else {
            ++it;
        }
    }
    return gone;
}

bool NodeRegistry::contains(std::string_view name) const {
    return nodes_.count(std::string(name)) != 0;
}

std::vector<NodeInfo> NodeRegistry::nodes() const {
    std::vector<NodeInfo> out;
    out.reserve(nodes_.size());
    for (const auto& [name, info] : nodes_) out.push_back(info);
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return out;
}

std::optional<NodeInfo> NodeRegistry::pick(std::uint64_t random, std::string_view except) const {
    auto eligible = [&](const NodeInfo& n) {
        return !n.draining && n.free_capacity() > 0 && !n.endpoints.empty() && n.name != except;
    };
    // Sorted by name so that the same draw picks the same node whatever the map's order.
    std::vector<const NodeInfo*> candidates;
    unsigned __int128 total = 0;
    for (const auto& [name, info] : nodes_)
        if (eligible(info)) {
            candidates.push_back(&info);
            total += info.free_capacity();
        }
    if (candidates.empty()) return std::nullopt;
    std::sort(candidates.begin(), candidates.end(),
              [](auto* a, auto* b) { return a->name < b->name; });
    auto point = static_cast<unsigned __int128>(random) % total;
    for (const auto* c : candidates) {
        if (point < c->free_capacity()) return *c;
        point -= c->free_capacity();
    }
    return *candidates.back();  // not reached: the points add up to total
}

void NodeRegistry::routed_to(std::string_view name) {
    auto it = nodes_.find(std::string(name));
    if (it != nodes_.end()) ++it->second.connections;
}

}  // namespace hawser::detail
