// Counters of one command, shared by every IO and worker thread that runs it.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/histogram.hpp"

namespace hawser::detail {

struct CommandStatsCell {
    std::atomic<std::uint64_t> calls{0}, errors{0}, bytes_in{0}, bytes_out{0};
    Histogram handler_ns;
};

}  // namespace hawser::detail
