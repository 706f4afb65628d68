// The wall clock in Unix milliseconds: what session, message and file times are kept in.
#pragma once

#include <chrono>
#include <cstdint>

namespace hawser::cloud::detail {

inline std::int64_t unix_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace hawser::cloud::detail
