// NodeRegistry (see node_registry.hpp).
#include "cluster/node_registry.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cluster/messages.hpp"

namespace hawser::detail {

bool NodeRegistry::update(NodeInfo info, Clock::time_point now, std::uint64_t run) {
    info.seen = now;
    auto it = nodes_.find(info.name);
    if (it == nodes_.end()) {
        auto name = info.name;
        nodes_.emplace(std::move(name), Known{std::move(info), run});
        return true;
    }
    // NATS keeps one publisher's order, but a report may also be replayed or forged by a
    // confused peer: never go back in time, except for a restart: another run (a restart
    // whose first reports did not reach NATS starts past 1), or sequence 1 from a node that
    // says no run.
    auto& known = it->second;
    if (run != 0 && run == known.superseded) return false;
    bool restarted = run != 0 && known.run != 0 && run != known.run;
    if (info.sequence <= known.info.sequence && !restarted && info.sequence != 1) return false;
    known = Known{std::move(info), run, restarted ? known.run : known.superseded};
    return true;
}

bool NodeRegistry::remove(std::string_view name, std::uint64_t run) {
    auto it = nodes_.find(std::string(name));
    if (it == nodes_.end()) return false;
    if (run != 0 && it->second.run != 0 && run != it->second.run) return false;
    nodes_.erase(it);
    return true;
}

std::chrono::milliseconds report_period(std::chrono::milliseconds interval, double heard_per_second,
                                        std::size_t nodes) {
    if (heard_per_second <= 0) return interval;
    double spread_ms = std::ceil(double(nodes) * 1000.0 / heard_per_second);
    auto most = std::chrono::duration_cast<std::chrono::milliseconds>(max_report_period);
    if (!(spread_ms < double(most.count()))) return std::max(interval, most);
    return std::max(interval, std::chrono::milliseconds(std::int64_t(spread_ms)));
}

std::vector<std::string> NodeRegistry::expire(Clock::time_point now, Clock::duration expiry,
                                              Clock::duration interval) {
    std::vector<std::string> gone;
    for (auto it = nodes_.begin(); it != nodes_.end();) {
        auto allowed = expiry;
        Clock::duration period = it->second.info.report_period;
        if (interval.count() > 0 && period > interval) {
            // expiry × period / interval in nanoseconds: the product needs 128 bits (3 s × 3.5 s
            // is 1e19 ns²), and the result saturates (a node_expiry of years must not wrap).
            auto stretched = __int128(expiry.count()) * period.count() / __int128(interval.count());
            allowed = stretched > std::numeric_limits<Clock::rep>::max()
                          ? Clock::duration::max()
                          : Clock::duration(Clock::rep(stretched));
        }
        if (now - it->second.info.seen >= allowed) {
            gone.push_back(it->first);
            it = nodes_.erase(it);
        } else {
            ++it;
        }
    }
    return gone;
}

bool NodeRegistry::every_other_node_says_its_period(std::string_view self) const {
    return std::all_of(nodes_.begin(), nodes_.end(), [&](const auto& entry) {
        return entry.first == self || entry.second.info.report_period.count() > 0;
    });
}

bool NodeRegistry::contains(std::string_view name) const {
    return nodes_.count(std::string(name)) != 0;
}

std::vector<NodeInfo> NodeRegistry::nodes() const {
    std::vector<NodeInfo> out;
    out.reserve(nodes_.size());
    for (const auto& [name, known] : nodes_) out.push_back(known.info);
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
    for (const auto& [name, known] : nodes_)
        if (eligible(known.info)) {
            candidates.push_back(&known.info);
            total += known.info.free_capacity();
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
    if (it != nodes_.end()) ++it->second.info.connections;
}

}  // namespace hawser::detail
