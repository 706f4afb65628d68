// The byte layout the cluster's binary envelopes share (broadcasts, publications, requests,
// answers): big-endian numbers, short texts as a u8 length and the bytes, and a reader that
// checks every take against what is left. A take that finds too little fails every take after
// it, so a decoder that reads several fields may check only the last.
// Thread affinity: none (values).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hawser::detail {

inline void put_number(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out += char(v >> (8 * i));
}

inline void put_short_text(std::string& out, std::string_view text) {  // at most 255 bytes
    out += char(text.size());
    out += text;
}

struct EnvelopeReader {
    std::string_view bytes;   // what is left
    bool short_read = false;  // a take found too little: so will every later one

    std::optional<std::string_view> take(std::size_t n) {
        if (short_read || bytes.size() < n) {
            short_read = true;
            return std::nullopt;
        }
        auto part = bytes.substr(0, n);
        bytes.remove_prefix(n);
        return part;
    }
    std::optional<std::uint64_t> number(std::size_t n) {
        auto b = take(n);
        if (!b) return std::nullopt;
        std::uint64_t v = 0;
        for (char c : *b) v = v << 8 | std::uint8_t(c);
        return v;
    }
    std::optional<std::string_view> short_text() {
        auto n = number(1);
        return n ? take(*n) : std::nullopt;
    }
};

}  // namespace hawser::detail
