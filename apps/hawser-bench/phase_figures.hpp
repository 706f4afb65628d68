// What both drivers count alike in the phases they share: server messages delivered (broadcast,
// slow, channels), a reconnect storm's progress, the channels phase's publications, and
// waiting for a count that may stop short. Plain values; each driver guards them as it guards the
// rest of its figures.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_channels.hpp"
#include "clock.hpp"
#include "driver.hpp"
#include "latency.hpp"

namespace hawser::bench {

// Messages from the servers, each "<seq> <CLOCK_MONOTONIC ns at send> ...": how many, when the
// first and last came, and how long each took (every process on the machine reads one clock).
struct Deliveries {
    std::uint64_t count = 0, first_ns = 0, last_ns = 0;
    Latency latency;

    // `t`: when it came (taken before any lock the caller waits for).
    void record(std::string_view text, std::uint64_t t) {
        auto space = text.find(' ');
        std::uint64_t sent = 0;
        if (space != std::string_view::npos)
            std::from_chars(text.data() + space + 1, text.data() + text.size(), sent);
        if (sent && t > sent) latency.record((t - sent) / 1000);
        if (!first_ns) first_ns = t;
        last_ns = t;
        ++count;
    }
    // deliveries, first_ns, end_ns (the last) and latency.
    void report(Json& out) const {
        out["deliveries"] = count;
        out["first_ns"] = first_ns;
        out["end_ns"] = last_ns;
        out["latency"] = latency.to_json();
    }
};

// The slow consumers of `size` connections: `fraction` of them, rounded, spread evenly (every
// size / n-th), and one reader always kept (a broadcast's trigger is a call whose reply must
// be read). Their indices.
inline std::vector<std::size_t> spread_pick(std::size_t size, double fraction) {
    auto n = std::min<std::size_t>(std::size_t(std::llround(double(size) * fraction)),
                                   size == 0 ? 0 : size - 1);
    std::vector<std::size_t> picked;
    for (std::size_t i = 0; i < n; ++i) picked.push_back(i * size / n);
    return picked;
}

// A reconnect storm: what was open on each server when it was armed and what was killed. Back
// only once every connection to a killed server was seen to drop.
struct StormWatch {
    std::vector<std::size_t> targets;  // per endpoint: open when armed
    std::uint64_t expected_drops = 0;  // of those, on the servers to be killed
    std::uint64_t drops_at_arm = 0;    // the driver's drops then
    std::uint64_t back_999_ns = 0, back_ns = 0;
    std::size_t most_open = 0;       // the most seen open at once since armed
    std::uint64_t last_gain_ns = 0;  // when that was (0: not looked yet)

    void arm(std::vector<std::size_t> open, std::size_t killed, std::uint64_t drops) {
        targets = std::move(open);
        expected_drops = 0;
        for (std::size_t e = 0; e < std::min(killed, targets.size()); ++e)
            expected_drops += targets[e];
        drops_at_arm = drops;
        back_999_ns = back_ns = 0;
        most_open = 0;
        last_gain_ns = 0;
    }
    // True once nothing more has come back for `patience`, counted from the first look (the
    // phase's start) or from the last time more were open than ever before: a million back at
    // a few thousand a second takes minutes, and a storm that stopped gaining has ended.
    bool stalled(std::size_t open, std::chrono::nanoseconds patience) {
        auto now = now_ns();
        if (!last_gain_ns || open > most_open) {
            most_open = std::max(most_open, open);
            last_gain_ns = now;
        }
        return now - last_gain_ns >= std::uint64_t(patience.count());
    }
    std::size_t target() const {
        std::size_t n = 0;
        for (auto t : targets) n += t;
        return n;
    }
    // Connections to open again towards endpoint `e`, with `present` open or opening there.
    std::size_t missing(std::size_t e, std::size_t present) const {
        return targets[e] - std::min(targets[e], present);
    }
    // Notes when 99.9 % (rounded up) and all were back; true once all are.
    bool all_back(std::uint64_t drops, std::size_t open) {
        if (drops - drops_at_arm < expected_drops) return false;
        auto t = target();
        if (open >= t - t / 1000 && !back_999_ns) back_999_ns = now_ns();
        if (open < t) return false;
        back_ns = now_ns();
        return true;
    }
    // target, drops, first_drop_ns, back_999_ns, back_ns and end_ns (all back, or now).
    void report(Json& out, std::uint64_t drops, std::uint64_t first_drop_ns) const {
        out["target"] = target();
        out["drops"] = drops - drops_at_arm;
        out["first_drop_ns"] = first_drop_ns;
        out["back_999_ns"] = back_999_ns ? back_999_ns : back_ns;
        out["back_ns"] = back_ns;
        out["end_ns"] = back_ns ? back_ns : now_ns();
    }
};

// The channels phase's publications: how many are asked, how many every server asked has
// answered, and the deliveries those make.
struct Publications {
    std::uint64_t total = 0, asked = 0, answered = 0, in_flight = 0;
    std::uint64_t reach = 0;  // deliveries the answered publications make
    unsigned size = 0;        // bytes each
    bool chained = false;     // a round once the last is answered (else paced)
    bool failed = false;

    bool over() const { return in_flight == 0 && (failed || asked >= total); }
    // The next slice to ask, [first, first + count): up to `due` in all, or (chained) the next
    // round once nothing is in flight. Marks it asked.
    std::optional<std::pair<std::uint64_t, std::uint64_t>> take(std::uint64_t due,
                                                                const ChannelLayout& layout) {
        if (failed || asked >= total || (chained && in_flight > 0)) return std::nullopt;
        // At most what one request may ask.
        due = std::min({chained ? asked + layout.per_round() : due, total,
                        asked + PublishRequest::most(size)});
        if (due <= asked) return std::nullopt;
        std::pair<std::uint64_t, std::uint64_t> slice{asked, due - asked};
        asked = due;
        return slice;
    }
    // What bench.publish (or the raw server) is asked for a slice.
    std::string request(std::pair<std::uint64_t, std::uint64_t> slice,
                        const ChannelLayout& layout) const {
        return PublishRequest{layout, std::uint32_t(slice.first % layout.per_round()),
                              std::uint32_t(slice.second), size}
            .text();
    }
    void answer(std::pair<std::uint64_t, std::uint64_t> slice, const ChannelLayout& layout) {
        answered += slice.second;
        reach += layout.reach(slice.first, slice.second);
    }
    // publications, rounds and channels.
    void report(Json& out, const ChannelLayout& layout) const {
        out["publications"] = answered;
        out["rounds"] = layout.per_round() ? answered / layout.per_round() : 0;
        out["channels"] = layout.per_round();
    }
};

// The channels phase's clock: publications due at its rate (every 10 ms), replacements due at
// its churn rate.
class ChannelsPace {
  public:
    using Clock = std::chrono::steady_clock;
    explicit ChannelsPace(const ChannelsPlan& plan)
        : plan_(plan),
          every_(plan.churn_rate > 0 ? std::chrono::nanoseconds(std::int64_t(1e9 / plan.churn_rate))
                                     : std::chrono::nanoseconds(0)),
          next_churn_(start_ + every_) {}

    // When to look again.
    Clock::time_point wake() const {
        auto at = Clock::now() + std::chrono::milliseconds(10);
        return every_.count() ? std::min(at, next_churn_) : at;
    }
    // Publications due by now in all; 0 when they are chained instead.
    std::uint64_t publications_due() const {
        return plan_.rate > 0
                   ? std::uint64_t(std::chrono::duration<double>(Clock::now() - start_).count() *
                                   plan_.rate)
                   : 0;
    }
    // Replacements due since the last call.
    std::size_t replacements_due() {
        std::size_t n = 0;
        for (; every_.count() && Clock::now() >= next_churn_; next_churn_ += every_) ++n;
        return n;
    }

  private:
    ChannelsPlan plan_;
    Clock::time_point start_ = Clock::now();
    std::chrono::nanoseconds every_;
    Clock::time_point next_churn_;
};

// Waiting for a count that may stop short of its target (a server skipped some, a connection
// closed): over once it is reached, it has not moved for 2 s, or the deadline passed.
class Settling {
  public:
    explicit Settling(std::chrono::milliseconds timeout)
        : deadline_(std::chrono::steady_clock::now() + timeout),
          last_change_(std::chrono::steady_clock::now()) {}
    bool over(std::uint64_t count, std::uint64_t target) {
        auto now = std::chrono::steady_clock::now();
        if (count != seen_) {
            seen_ = count;
            last_change_ = now;
        }
        return count >= target || now >= deadline_ || now - last_change_ >= std::chrono::seconds(2);
    }

  private:
    std::chrono::steady_clock::time_point deadline_, last_change_;
    std::uint64_t seen_ = 0;
};

}  // namespace hawser::bench
