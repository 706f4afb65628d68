// UTF-8 as RFC 3629 has it: what a peer's text must be before anything shows or compares it.
// Thread safety: pure functions over their arguments.
#pragma once

#include <cstddef>
#include <string_view>

namespace hawser::detail {

// Decodes the UTF-8 sequence starting at s[i] (a lead byte >= 0x80). Returns its length, or 0
// if it is invalid: a stray continuation byte, an overlong form, a surrogate, a code point
// above U+10FFFF, or a sequence cut short.
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp);

// Whether all of `s` is valid UTF-8.
bool valid_utf8(std::string_view s);

}  // namespace hawser::detail
