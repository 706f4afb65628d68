// ProcessLoad: what this process costs the machine, for load reports — CPU (cores busy,
// averaged between two samples) and resident memory.
// Ownership: a value owned by the Cluster's reporter. Thread affinity: the reporter thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace hawser::detail {

class ProcessLoad {
  public:
    ProcessLoad();
    // Cores busy with this process since the previous sample (or since construction).
    double sample_cpu();
    static std::uint64_t resident_bytes();

  private:
    static double cpu_seconds();
    double last_cpu_;
    std::chrono::steady_clock::time_point last_at_;
};

}  // namespace hawser::detail
