// ProcessLoad (see process_load.hpp): getrusage for CPU time, /proc/self/statm for memory.
#include "cluster/process_load.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace hawser::detail {

ProcessLoad::ProcessLoad() : last_cpu_(cpu_seconds()), last_at_(std::chrono::steady_clock::now()) {}

double ProcessLoad::cpu_seconds() {
    rusage u{};
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
    auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return seconds(u.ru_utime) + seconds(u.ru_stime);
}

double ProcessLoad::sample_cpu() {
    auto now = std::chrono::steady_clock::now();
    auto cpu = cpu_seconds();
    double wall = std::chrono::duration<double>(now - last_at_).count();
    double busy = wall > 0 ? (cpu - last_cpu_) / wall : 0;
    last_cpu_ = cpu;
    last_at_ = now;
    return busy < 0 ? 0 : busy;
}

std::uint64_t ProcessLoad::resident_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int got = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    if (got != 2) return 0;
    return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace hawser::detail
