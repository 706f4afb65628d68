// Message header inside a frame body (docs/protocol.md):
//   kind(1) | flags(1) | call id (LEB128 varint, ≤ 10 bytes) | name length(1) | name | payload
// Pure code: encode into a caller's buffer, decode from a frame body without copying.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace hawser::detail {

enum class Kind : std::uint8_t {
    call_console = 1,
    call_dataframe = 2,
    direct_console = 3,
    direct_dataframe = 4,
    reply = 5,
    error = 6,
    ping = 7,
    pong = 8,
    goodbye = 9,
    // 10..15 are reserved for big streams and cluster links, which register their own
    // handlers (rpc/message_kinds.hpp).
};
inline constexpr std::size_t max_kind = 15;

// Flag bits: 0-1 compression of the payload (0 none, 1 zstd, 2 lz4; 3 is invalid). The others
// are zero; a receiver closes the connection as malformed on any it does not know.
inline constexpr std::uint8_t flag_compression_mask = 0x03;

inline constexpr std::size_t max_command_name = 255;
inline constexpr std::size_t max_message_header = 1 + 1 + 10 + 1 + max_command_name;

struct MessageView {
    Kind kind{};
    std::uint8_t flags = 0;
    std::uint64_t id = 0;
    std::string_view name;
    std::span<const std::uint8_t> payload;
};

inline bool is_call(Kind k) {
    return k == Kind::call_console || k == Kind::call_dataframe;
}
inline bool is_direct(Kind k) {
    return k == Kind::direct_console || k == Kind::direct_dataframe;
}
inline bool is_dataframe(Kind k) {
    return k == Kind::call_dataframe || k == Kind::direct_dataframe;
}

inline std::size_t header_size(std::uint64_t id, std::string_view name) {
    std::size_t varint = 1;
    while (id >>= 7) ++varint;
    return 3 + varint + name.size();  // kind, flags, name length
}

// Writes the header at `p`, returning the first byte after it (where the payload goes).
inline std::uint8_t* write_header(std::uint8_t* p, Kind kind, std::uint8_t flags, std::uint64_t id,
                                  std::string_view name) {
    *p++ = static_cast<std::uint8_t>(kind);
    *p++ = flags;
    do {
        std::uint8_t b = id & 0x7f;
        id >>= 7;
        *p++ = id ? (b | 0x80) : b;
    } while (id != 0);
    *p++ = static_cast<std::uint8_t>(name.size());
    for (char c : name) *p++ = static_cast<std::uint8_t>(c);
    return p;
}

// Parses a frame body. nullopt means malformed: kind 0 or over 15, bad varint, name past the
// end. Whether anyone handles the kind is the receiver's registry's business.
inline std::optional<MessageView> parse_message(std::span<const std::uint8_t> body) {
    const std::uint8_t* p = body.data();
    const std::uint8_t* end = p + body.size();
    if (end - p < 4) return std::nullopt;
    MessageView m;
    std::uint8_t kind = *p++;
    if (kind < 1 || kind > max_kind) return std::nullopt;
    m.kind = static_cast<Kind>(kind);
    m.flags = *p++;
    for (int shift = 0;; shift += 7) {
        if (p == end || shift > 63) return std::nullopt;
        std::uint8_t b = *p++;
        if (shift == 63 && (b & 0x7e)) return std::nullopt;  // would overflow 64 bits
        m.id |= std::uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
    }
    if (p == end) return std::nullopt;
    std::size_t name_len = *p++;
    if (static_cast<std::size_t>(end - p) < name_len) return std::nullopt;
    m.name = std::string_view(reinterpret_cast<const char*>(p), name_len);
    p += name_len;
    m.payload = std::span<const std::uint8_t>(p, end);
    return m;
}

// Error and goodbye payloads: code(2, big-endian) | UTF-8 text.
inline std::optional<std::pair<std::uint16_t, std::string_view>> parse_coded(
    std::span<const std::uint8_t> payload) {
    if (payload.size() < 2) return std::nullopt;
    return std::pair{
        static_cast<std::uint16_t>(payload[0] << 8 | payload[1]),
        std::string_view(reinterpret_cast<const char*>(payload.data() + 2), payload.size() - 2)};
}

}  // namespace hawser::detail
