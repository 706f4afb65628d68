// The channels phase's channels (driver.hpp): worker w's k-th connection is on its personal
// channel bench.u.<w>.<k> and on its group's, bench.g.<w>.<k / group>. Publications go round
// the worker's channels in order: index i is bench.u.<w>.<i> for i < personal, then
// bench.g.<w>.<i - personal>, and a round is every one of them once.
// Plain value; shared by both drivers and the raw server (hawser-server's bench.publish
// names them the same way).
#pragma once

#include <algorithm>
#include <cstdint>
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
    std::string channel(std::size_t i) const {
        return i < personal ? personal_channel(i) : group_channel(i - personal);
    }
    // Connections a publication on channel i reaches.
    std::uint64_t reach(std::size_t i) const {
        return i < personal ? 1 : std::min(group, personal - (i - personal) * group);
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
