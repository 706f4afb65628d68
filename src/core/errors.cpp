#include "hawser/error.hpp"

#include <array>

namespace hawser {

std::string_view to_string(Errc code) noexcept {
    static constexpr std::array<std::string_view, 18> names = {
        "ok",
        "unknown_command",
        "handler_error",
        "wrong_kind",
        "timeout",
        "cancelled",
        "disconnected",
        "too_many_pending",
        "shutting_down",
        "bad_payload",
        "would_deadlock",
        "not_connected",
        "type_mismatch",
        "end_of_data",
        "limit_exceeded",
        "invalid_argument",
        "not_found",
        "storage_error",
    };
    auto i = static_cast<std::size_t>(code);
    return i < names.size() ? names[i] : "unknown_error";
}

std::string_view to_string(CloseReason reason) noexcept {
    static constexpr std::array<std::string_view, close_reason_count> names = {
        "none",           "peer_closed",      "local_close",       "io_error",
        "bad_mark",       "frame_too_large",  "malformed",         "slow_consumer",
        "idle_timeout",   "shutdown",         "max_connections",   "protocol_error",
        "connect_failed", "handshake_failed", "handshake_timeout", "bad_mac",
        "too_large",      "denied",           "rate_limited",      "too_many_handshakes",
    };
    auto i = static_cast<std::size_t>(reason);
    return i < names.size() ? names[i] : "unknown_reason";
}

}  // namespace hawser
