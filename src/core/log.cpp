#include "core/log.hpp"

#include <spdlog/spdlog.h>

namespace hawser::detail {

void RateLimitedLog::warn(std::string_view kind, std::string_view message) {
    std::uint64_t suppressed = 0;
    {
        std::lock_guard lock(mu_);
        auto& e = entries_[std::string(kind)];
        auto now = std::chrono::steady_clock::now();
        if (e.last.time_since_epoch().count() != 0 && now - e.last < period_) {
            ++e.suppressed;
            return;
        }
        e.last = now;
        suppressed = std::exchange(e.suppressed, 0);
    }
    if (suppressed)
        spdlog::warn("{} ({} more like it suppressed)", message, suppressed);
    else
        spdlog::warn("{}", message);
}

}  // namespace hawser::detail
