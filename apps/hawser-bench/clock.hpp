// The clock every process of a run shares: CLOCK_MONOTONIC is one clock for the whole machine,
// so a time taken by a server and one taken by a worker process can be subtracted.
#pragma once

#include <cstdint>
#include <ctime>

namespace hawser::bench {

inline std::uint64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}
inline std::uint64_t now_us() noexcept {
    return now_ns() / 1000;
}

}  // namespace hawser::bench
