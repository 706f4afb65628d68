// Whole plaintext messages (header + payload), ready to be framed or sealed.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "hawser/options.hpp"
#include "wire/message.hpp"

namespace hawser::detail {

// Replaces `out` with the message; calls, directs and replies over the policy's threshold are
// compressed when that makes them smaller, unless `compress` is false (the message may mix
// attacker-chosen text with secrets: docs/security.md).
void encode_message(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id,
                    std::string_view name, std::span<const std::uint8_t> payload,
                    const TransportOptions& policy, bool compress = true);

// Error replies and goodbyes: code (2) | text (at most 1 KiB of it).
void encode_coded(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id, std::uint16_t code,
                  std::string_view text);

}  // namespace hawser::detail
