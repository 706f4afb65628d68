// Resident memory of a process, as the kernel reports it (VmRSS in /proc/<pid>/status).
#pragma once

#include <sys/types.h>

#include <fstream>
#include <string>

namespace hawser::bench {

// In KiB; -1 if the process is gone.
inline long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

}  // namespace hawser::bench
