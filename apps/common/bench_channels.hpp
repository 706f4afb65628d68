// The channels phase's channels (driver.hpp): worker w's k-th connection is on its personal
// channel bench.u.<w>.<k> and on its group's, bench.g.<w>.<k / group>. Publications go round
// the worker's channels, each group's channel after its members' own ones (so that deliveries
// come at an even pace, a group's fan-out spread over the round): index i falls in block
// b = i / (group + 1), which holds the personal channels b * group ... and then group b. A
// round is every channel once.
// A request for publications names the worker, its personal channels, the group size, the
// first index and how many. Plain value; hawser-bench's drivers and raw server, and
// hawser-server's bench.publish.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

namespace hawser::bench {

struct ChannelLayout {
    std::size_t worker = 0;
    std::size_t personal = 0;  // connections, and personal channels
    std::size_t group = 10;    // connections per group channel (at least 1)

    std::size_t groups() const { return (personal + group - 1) / group; }
    std::size_t per_round() const { return personal + groups(); }

    std::string personal_channel(std::size_t k) const {
        return "bench.u." + std::to_string(worker) + "." + std::to_string(k);
    }
    std::string group_channel(std::size_t j) const {
        return "bench.g." + std::to_string(worker) + "." + std::to_string(j);
    }
    // Publication i of a round: the personal channel k, or (nullopt) its block's group.
    std::optional<std::size_t> personal_of(std::size_t i) const {
        auto block = i / (group + 1), at = i % (group + 1);
        auto members = std::min(group, personal - std::min(personal, block * group));
        if (at < members) return block * group + at;
        return std::nullopt;
    }
    std::string channel(std::size_t i) const {
        auto k = personal_of(i);
        return k ? personal_channel(*k) : group_channel(i / (group + 1));
    }
    // Connections a publication on channel i reaches.
    std::uint64_t reach(std::size_t i) const {
        if (personal_of(i)) return 1;
        auto block = i / (group + 1);
        return std::min(group, personal - block * group);
    }
    // Connections reached by publications first .. first + count - 1 (going round).
    std::uint64_t reach(std::uint64_t first, std::uint64_t count) const {
        const auto round = per_round();
        if (round == 0) return 0;
        std::uint64_t n = count / round * 2 * personal;
        for (std::uint64_t i = 0; i < count % round; ++i) n += reach((first + i) % round);
        return n;
    }
};

}  // namespace hawser::bench
