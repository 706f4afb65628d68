// Validation and normal form of file names sent by a peer (see hawser/relative_path.hpp).
// Thread safety: pure functions over their arguments; no shared state.
#include "hawser/relative_path.hpp"

#include <cstdio>
#include <utility>

#include "core/utf8.hpp"

namespace hawser {

namespace {

Error fail(std::string what) {
    return Error{Errc::invalid_argument, "path: " + std::move(what)};
}

std::string hex(const char* format, unsigned long value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, format, value);
    return buf;
}

// Characters that hide or disguise what a name is: bidi controls, zero-width characters, the
// byte order mark, and lookalikes for '/' and '.'.
bool deceptive(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9F) ||      // C1 controls (0x9B is a terminal escape)
           cp == 0x00AD || cp == 0x061C ||    // soft hyphen, Arabic letter mark
           cp == 0x180E ||                    // Mongolian vowel separator
           (cp >= 0x2060 && cp <= 0x2064) ||  // word joiner and invisible operators
           cp == 0x2024 || cp == 0xFE52 ||    // one dot leader, small full stop
           cp == 0x29F8 ||                    // big solidus
           (cp >= 0x200B && cp <= 0x200F) ||  // zero-width space/non-joiner/joiner, LRM, RLM
           (cp >= 0x202A && cp <= 0x202E) ||  // bidi embeddings and overrides
           (cp >= 0x2066 && cp <= 0x2069) ||  // bidi isolates
           cp == 0xFEFF ||                    // zero-width no-break space (BOM)
           cp == 0x2044 || cp == 0x2215 ||    // fraction slash, division slash
           cp == 0xFF0E || cp == 0xFF0F;      // fullwidth full stop, fullwidth solidus
}

// Checks the bytes name[begin, end) of one segment; offsets in messages count from the start of
// the whole name. Returns an empty string if the segment is fine, else what is wrong.
std::string check_bytes(std::string_view name, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end;) {
        auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F)
                return hex("control character 0x%02lX", c) + " at byte " + std::to_string(i);
            if (c == '\\') return "'\\' is not allowed (use '/' between segments)";
            if (c == ':') return "':' is not allowed (drive letters, alternate streams)";
            ++i;
            continue;
        }
        char32_t cp = 0;
        std::size_t len = detail::decode_utf8(name.substr(0, end), i, cp);
        if (len == 0) return "invalid UTF-8 at byte " + std::to_string(i);
        if (deceptive(cp))
            return hex("U+%04lX", cp) + " is not allowed (invisible, bidi or lookalike character)";
        i += len;
    }
    return {};
}

}  // namespace

Result<std::string> normalise_relative_path(std::string_view name, const PathLimits& limits) {
    if (name.empty()) return fail("the name is empty");
    if (name.front() == '/') return fail("absolute paths are not allowed");
    std::string out;
    std::size_t depth = 0;
    for (std::size_t pos = 0; pos < name.size();) {
        std::size_t end = name.find('/', pos);
        if (end == std::string_view::npos) end = name.size();
        std::string_view segment = name.substr(pos, end - pos);
        std::size_t begin = pos;
        pos = end + 1;
        if (segment.empty() || segment == ".") continue;
        if (segment == "..") return fail("'..' is not allowed");
        if (segment.size() > limits.max_component_bytes)
            return fail("a segment is over max_component_bytes (" +
                        std::to_string(limits.max_component_bytes) + ")");
        if (auto what = check_bytes(name, begin, end); !what.empty()) return fail(std::move(what));
        if (++depth > limits.max_depth)
            return fail("more segments than max_depth (" + std::to_string(limits.max_depth) + ")");
        if (out.size() + (out.empty() ? 0 : 1) + segment.size() > limits.max_bytes)
            return fail("the normalised name is over max_bytes (" +
                        std::to_string(limits.max_bytes) + ")");
        if (!out.empty()) out += '/';
        out += segment;
    }
    if (out.empty()) return fail("nothing is left once '.' segments and '/' are removed");
    return out;
}

}  // namespace hawser
