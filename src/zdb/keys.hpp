// Byte encodings shared by ZDB's layout: ids as 8-byte big-endian keys, so that key order is id
// order, and the same encoding for the counters kept in the meta column family.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace hawser::zdb {

inline std::string encode_u64(std::uint64_t v) {
    std::string k(8, '\0');
    for (int i = 0; i < 8; ++i) k[i] = static_cast<char>(v >> (56 - 8 * i));
    return k;
}

// Reads the first 8 bytes (fewer if the input is shorter) as a big-endian number.
inline std::uint64_t decode_u64(std::string_view k) {
    if (k.size() >= 8) {  // every id key: one load (this runs for every record scanned)
        std::uint64_t v;
        std::memcpy(&v, k.data(), 8);
        return std::endian::native == std::endian::little ? __builtin_bswap64(v) : v;
    }
    std::uint64_t v = 0;
    for (char c : k) v = v << 8 | static_cast<std::uint8_t>(c);
    return v;
}

// The smallest key greater than every key that starts with `prefix` ("" if there is none).
inline std::string prefix_end(std::string prefix) {
    while (!prefix.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(prefix.back());
        if (last != 0xff) {
            ++last;
            return prefix;
        }
        prefix.pop_back();
    }
    return prefix;
}

}  // namespace hawser::zdb
