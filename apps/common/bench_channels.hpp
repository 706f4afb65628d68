// The channels phase's channels (driver.hpp): worker w's k-th connection is on its personal
// channel bench.u.<w>.<k> and on its group's, bench.g.<w>.<k / group>. Publications go round
// the worker's channels, each group's channel after its members' own ones (so that deliveries
// come at an even pace, a group's fan-out spread over the round): index i falls in block
// b = i / (group + 1), which holds the personal channels b * group ... and then group b. A
// round is every channel once.
// Also what the benchmark commands accept (hawser-server's bench.broadcast and bench.publish,
// and hawser-bench's raw server alike) and how a request for publications is written.
// Plain values; hawser-bench's drivers and raw server, and hawser-server --bench-commands.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

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

// What one benchmark request may ask: all of it is queued before the request is answered.
constexpr std::uint32_t max_broadcasts = 10'000;         // bench.broadcast: messages
constexpr std::uint32_t max_broadcast_bytes = 1u << 20;  // each
// count x size: within a connection's send queue below its soft limit (8 MiB by default), or
// congested connections would skip some.
constexpr std::uint64_t max_broadcast_total = 4u << 20;
constexpr std::uint32_t max_channels = 100'000;         // personal channels, and group size
constexpr std::uint32_t max_publications = 200'000;     // bench.publish: publications
constexpr std::uint32_t max_publish_bytes = 64u << 10;  // each
constexpr std::uint64_t max_publish_total = 64u << 20;  // count x size

// Exactly `out.size()` unsigned numbers separated by single spaces.
inline bool parse_numbers(std::string_view text, std::span<std::uint32_t> out) {
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (i > 0 && (p == end || *p++ != ' ')) return false;
        auto r = std::from_chars(p, end, out[i]);
        if (r.ec != std::errc()) return false;
        p = r.ptr;
    }
    return p == end;
}

// "<worker> <personal> <group> <first> <count> <size>": `count` publications of `size` bytes
// going round the layout's channels from index `first`.
struct PublishRequest {
    ChannelLayout layout;
    std::uint32_t first = 0, count = 0, size = 0;

    // Within the limits above, or nullopt.
    static std::optional<PublishRequest> parse(std::string_view text) {
        std::uint32_t n[6]{};
        if (!parse_numbers(text, n)) return std::nullopt;
        PublishRequest r{{n[0], n[1], n[2]}, n[3], n[4], n[5]};
        if (n[1] == 0 || n[1] > max_channels || n[2] == 0 || n[2] > max_channels ||
            r.count > max_publications || r.size < 32 || r.size > max_publish_bytes ||
            std::uint64_t(r.count) * r.size > max_publish_total)
            return std::nullopt;
        return r;
    }
    std::string text() const {
        return std::to_string(layout.worker) + " " + std::to_string(layout.personal) + " " +
               std::to_string(layout.group) + " " + std::to_string(first) + " " +
               std::to_string(count) + " " + std::to_string(size);
    }
    // The channel of its c-th publication.
    std::string channel(std::uint32_t c) const {
        return layout.channel((std::uint64_t(first) + c) % layout.per_round());
    }
    // The most publications of `size` bytes one request may ask.
    static std::uint32_t most(std::uint32_t size) {
        return std::uint32_t(
            std::min<std::uint64_t>(max_publications, max_publish_total / std::max(size, 1u)));
    }
};

}  // namespace hawser::bench
