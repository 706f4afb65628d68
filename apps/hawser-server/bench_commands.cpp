// hawser-bench's server side (see bench_commands.hpp). Runs on the calling connection's IO thread.
#include "bench_commands.hpp"

#include <charconv>
#include <ctime>
#include <span>
#include <string>

#include "bench_channels.hpp"

namespace hawser::app {

namespace {

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

constexpr std::uint32_t max_count = 10'000;
constexpr std::uint32_t max_size = 1u << 20;
// All of them are queued before the handler returns: they must fit a connection's send queue
// below its soft limit (8 MiB by default), or congested connections would skip some.
constexpr std::uint64_t max_total = 4u << 20;
// bench.publish: all handed to NATS before the handler returns, on this IO thread.
constexpr std::uint32_t max_channels = 100'000;
constexpr std::uint32_t max_publications = 200'000;
constexpr std::uint32_t max_publish_size = 64u << 10;
constexpr std::uint64_t max_publish_total = 64u << 20;

// "<seq> <CLOCK_MONOTONIC ns> " padded to `size`.
std::string stamped(std::uint32_t seq, std::uint32_t size) {
    auto text = std::to_string(seq) + " " + std::to_string(monotonic_ns()) + " ";
    text.resize(size, 'x');
    return text;
}

// Whitespace-separated unsigned numbers, exactly `out.size()` of them.
bool parse_numbers(std::string_view arg, std::span<std::uint32_t> out) {
    const char* p = arg.data();
    const char* end = arg.data() + arg.size();
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (i > 0 && (p == end || *p++ != ' ')) return false;
        auto r = std::from_chars(p, end, out[i]);
        if (r.ec != std::errc()) return false;
        p = r.ptr;
    }
    return p == end;
}

// A console handler whose typed errors reach the caller as they are (Responder::fail); a thrown
// one would reach it as handler_error with its text hidden (hawser/commands.hpp).
template <class F>
auto answering(F f) {
    return [f = std::move(f)](const Request&, std::string arg, Responder<std::string> reply) {
        auto r = f(arg);
        if (r)
            reply.reply(std::move(*r));
        else
            reply.fail(r.error().code, r.error().message);
    };
}

}  // namespace

void register_bench_commands(Commands& commands, BroadcastAll broadcast, PublishTo publish) {
    commands.console(
        "bench.broadcast",
        answering([broadcast = std::move(broadcast)](std::string_view arg) -> Result<std::string> {
            std::uint32_t n[2]{};
            bool parsed = parse_numbers(arg, n);
            const auto count = n[0], size = n[1];
            if (!parsed || count == 0 || count > max_count || size < 32 || size > max_size ||
                std::uint64_t(count) * size > max_total)
                return Error{Errc::invalid_argument,
                             "bench.broadcast takes \"<count> <size>\": count 1 to 10000, size 32 "
                             "to 1 MiB, count x size at most 4 MiB"};
            for (std::uint32_t seq = 0; seq < count; ++seq)
                if (auto sent = broadcast("bench.message", stamped(seq, size)); !sent)
                    return sent.error();
            return std::to_string(count);
        }));
    commands.console(
        "bench.publish",
        answering([publish = std::move(publish)](std::string_view arg) -> Result<std::string> {
            std::uint32_t n[6]{};
            bool parsed = parse_numbers(arg, n);
            const bench::ChannelLayout layout{n[0], n[1], n[2]};
            const auto first = n[3], count = n[4], size = n[5];
            if (!parsed || layout.personal == 0 || layout.personal > max_channels ||
                layout.group == 0 || layout.group > max_channels || count > max_publications ||
                size < 32 || size > max_publish_size ||
                std::uint64_t(count) * size > max_publish_total)
                return Error{Errc::invalid_argument,
                             "bench.publish takes \"<worker> <personal> <group> <first> <count> "
                             "<size>\": personal and group 1 to 100000, count up to 200000, size "
                             "32 to 64 KiB, count x size at most 64 MiB"};
            if (!publish) return Error{Errc::invalid_argument, "bench.publish needs a cluster"};
            const auto round = layout.per_round();
            for (std::uint32_t c = 0; c < count; ++c) {
                auto channel = layout.channel((std::uint64_t(first) + c) % round);
                if (auto sent = publish(channel, "bench.message", stamped(c, size)); !sent)
                    return sent.error();
            }
            return std::to_string(count);
        }));
}

}  // namespace hawser::app
