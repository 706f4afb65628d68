// Preflight (see preflight.hpp).
#include "preflight.hpp"

#include <sys/resource.h>

#include <fstream>

namespace hawser::bench {

std::uint64_t meminfo_kib(const char* field) {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0) return std::stoull(line.substr(std::string(field).size()));
    return 0;
}

std::optional<std::string> preflight(const Plan& p, std::size_t workers, std::size_t servers) {
    if (workers > 250 * 250) return "too many workers for the 127.0.x.y source addresses";
    std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
    std::size_t lo = 0, hi = 0;
    range >> lo >> hi;
    // Each worker has its own source address; its ports are per destination.
    auto per_target = (p.per_worker + servers - 1) / servers;
    if (hi > lo && per_target > hi - lo + 1)
        return "each worker needs " + std::to_string(per_target) +
               " ports towards each server but net.ipv4.ip_local_port_range has " +
               std::to_string(hi - lo + 1) +
               ": lower --per-worker, add servers, or widen it (sysctl -w "
               "net.ipv4.ip_local_port_range=\"1024 65535\")";
    if (p.endpoints.empty() && p.spawn_cluster * 19000 < p.connections)
        return std::to_string(p.connections) + " connections need at least " +
               std::to_string((p.connections + 18999) / 19000) +
               " server processes (--spawn-cluster): a process holds at most ~19,000";
    // Kernel ~10 KiB per loopback pair, client ~2 KiB, server ~1.5 KiB.
    auto need_kib = p.connections * (10 + 2) + p.connections * 3 / 2;
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_max != RLIM_INFINITY && files.rlim_max < p.per_worker + 100)
        return "a worker needs " + std::to_string(p.per_worker + 100) +
               " open files but the hard limit is " + std::to_string(files.rlim_max) +
               ": lower --per-worker or raise the limit (ulimit -Hn)";
    auto available = meminfo_kib("MemAvailable:");
    if (available && need_kib > available * 9 / 10)
        return "about " + std::to_string(need_kib >> 20) + " GiB needed, " +
               std::to_string(available >> 20) + " GiB available: fewer --connections";
    return std::nullopt;
}

std::string source_for(std::size_t worker) {
    return "127.0." + std::to_string(worker / 250) + "." + std::to_string(2 + worker % 250);
}

}  // namespace hawser::bench
