// hawser-bench's server side (see bench_commands.hpp). Runs on the calling connection's IO thread.
#include "bench_commands.hpp"

#include <charconv>
#include <ctime>
#include <string>

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

}  // namespace

void register_bench_commands(Commands& commands, BroadcastAll broadcast) {
    commands.console(
        "bench.broadcast",
        [broadcast = std::move(broadcast)](const Request&, std::string_view arg) -> std::string {
            std::uint32_t count = 0, size = 0;
            auto space = arg.find(' ');
            auto bad = [] {
                return Exception({Errc::invalid_argument,
                                  "bench.broadcast takes \"<count> <size>\": count 1 to 10000, "
                                  "size 32 to 1 MiB, count x size at most 4 MiB"});
            };
            if (space == std::string_view::npos) throw bad();
            auto a = std::from_chars(arg.data(), arg.data() + space, count);
            auto b = std::from_chars(arg.data() + space + 1, arg.data() + arg.size(), size);
            if (a.ec != std::errc() || a.ptr != arg.data() + space || b.ec != std::errc() ||
                b.ptr != arg.data() + arg.size() || count == 0 || count > max_count || size < 32 ||
                size > max_size || std::uint64_t(count) * size > max_total)
                throw bad();
            for (std::uint32_t seq = 0; seq < count; ++seq) {
                auto text = std::to_string(seq) + " " + std::to_string(monotonic_ns()) + " ";
                text.resize(size, 'x');
                if (auto sent = broadcast("bench.message", text); !sent)
                    throw Exception(sent.error());
            }
            return std::to_string(count);
        });
}

}  // namespace hawser::app
