// UTF-8 decoding (see utf8.hpp).
#include "core/utf8.hpp"

namespace hawser::detail {

std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    char32_t min;
    if (c >= 0xC2 && c <= 0xDF) {  // 0xC0 and 0xC1 can only start overlong forms
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (s.size() - i < len) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        char32_t cp;
        auto len = decode_utf8(s, i, cp);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

}  // namespace hawser::detail
