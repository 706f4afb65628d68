// hawser-bench's server side (see bench_commands.hpp). Runs on the calling connection's IO thread.
#include "bench_commands.hpp"

#include <ctime>
#include <string>

#include "bench_channels.hpp"

namespace hawser::app {

namespace {

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

// "<seq> <CLOCK_MONOTONIC ns> " padded to `size`.
std::string stamped(std::uint32_t seq, std::uint32_t size) {
    auto text = std::to_string(seq) + " " + std::to_string(monotonic_ns()) + " ";
    text.resize(size, 'x');
    return text;
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
            bool parsed = bench::parse_numbers(arg, n);
            const auto count = n[0], size = n[1];
            if (!parsed || count == 0 || count > bench::max_broadcasts || size < 32 ||
                size > bench::max_broadcast_bytes ||
                std::uint64_t(count) * size > bench::max_broadcast_total)
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
            auto request = bench::PublishRequest::parse(arg);
            if (!request)
                return Error{Errc::invalid_argument,
                             "bench.publish takes \"<worker> <personal> <group> <first> <count> "
                             "<size>\": personal and group 1 to 100000, count up to 200000, size "
                             "32 to 64 KiB, count x size at most 64 MiB"};
            if (!publish) return Error{Errc::cluster_unavailable, "bench.publish needs a cluster"};
            for (std::uint32_t c = 0; c < request->count; ++c)
                if (auto sent =
                        publish(request->channel(c), "bench.message", stamped(c, request->size));
                    !sent)
                    return sent.error();
            return std::to_string(request->count);
        }));
}

}  // namespace hawser::app
