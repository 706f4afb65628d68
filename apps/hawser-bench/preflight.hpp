// Preflight: whether this machine can run a plan, and what to change when it cannot (the port
// range, the file limit, memory, server processes); the source address each worker connects
// from. Plain functions; the coordinator's thread, before anything starts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "plan.hpp"

namespace hawser::bench {

// A /proc/meminfo field ("MemTotal:") in KiB; 0 if absent.
std::uint64_t meminfo_kib(const char* field);
// Nothing, or what stops `workers` workers and `servers` servers from running the plan.
std::optional<std::string> preflight(const Plan& plan, std::size_t workers, std::size_t servers);
// 127.0.x.y, from 127.0.0.2: one per worker, so that each has its own ephemeral ports.
std::string source_for(std::size_t worker);

}  // namespace hawser::bench
