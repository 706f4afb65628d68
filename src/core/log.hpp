// Logging goes through spdlog. Events that a peer can trigger at will (bad frames, refused
// connections) are logged through RateLimitedLog so that an attack cannot flood the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hawser::detail {

class RateLimitedLog {
  public:
    explicit RateLimitedLog(std::chrono::seconds period = std::chrono::seconds(10))
        : period_(period) {}
    // Logs the first event of a kind, then at most one per period with the count suppressed.
    void warn(std::string_view kind, std::string_view message);

  private:
    struct Entry {
        std::chrono::steady_clock::time_point last{};
        std::uint64_t suppressed = 0;
    };
    std::chrono::seconds period_;
    std::mutex mu_;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace hawser::detail
