// The payloads of the big-stream messages, kinds 10-15 (docs/protocol.md, "Big streams"):
//   open    size (8) | flags (1) | metadata (a DataFrame, the rest)   name: the handler
//   accept  offset (8) | window (4)
//   data    the next bytes of the content
//   window  credit (4)                                                id 0: the connection
//   end     BLAKE2b-256 of the whole content (32)
//   reset   code (2) | UTF-8 text                                     code 0 after end: kept
// Integers are big-endian. Pure code: encode into a caller's buffer, decode without copying.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wire/message.hpp"

namespace hawser::detail {

inline constexpr Kind kind_stream_open = Kind(10);
inline constexpr Kind kind_stream_accept = Kind(11);
inline constexpr Kind kind_stream_data = Kind(12);
inline constexpr Kind kind_stream_window = Kind(13);
inline constexpr Kind kind_stream_end = Kind(14);
inline constexpr Kind kind_stream_reset = Kind(15);

inline constexpr std::uint64_t unknown_stream_size = ~std::uint64_t{0};
inline constexpr std::uint8_t stream_flag_resumable = 0x01;
inline constexpr std::size_t stream_hash_bytes = 32;
// A window or a credit never exceeds this: counters of in-flight bytes stay far from overflow.
inline constexpr std::uint32_t max_stream_credit = 0x7fffffff;

struct StreamOpen {
    std::uint64_t size = unknown_stream_size;
    bool resumable = false;
    std::span<const std::uint8_t> metadata;  // an undecoded DataFrame
};
struct StreamAccept {
    std::uint64_t offset = 0;
    std::uint32_t window = 0;
};
using StreamHash = std::array<std::uint8_t, stream_hash_bytes>;

void encode_stream_open(std::vector<std::uint8_t>& out, const StreamOpen& open);
void encode_stream_accept(std::vector<std::uint8_t>& out, const StreamAccept& accept);
void encode_stream_credit(std::vector<std::uint8_t>& out, std::uint32_t credit);

// nullopt: the payload does not have the shape above (the connection closes, malformed).
std::optional<StreamOpen> parse_stream_open(std::span<const std::uint8_t> payload);
std::optional<StreamAccept> parse_stream_accept(std::span<const std::uint8_t> payload);
std::optional<std::uint32_t> parse_stream_credit(std::span<const std::uint8_t> payload);
std::optional<StreamHash> parse_stream_end(std::span<const std::uint8_t> payload);

}  // namespace hawser::detail
