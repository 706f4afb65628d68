// Checks file names sent by a remote peer (file transfers, the per-user file store) and returns
// their normal form. Names from the network are untrusted: no escaping the root with '..' or an
// absolute path, no control characters, no invalid UTF-8, none of the common invisible or
// bidirectional characters or lookalikes of '/' and '.'. Names are not Unicode-normalised: "café"
// typed two ways, or two names differing in case, are two names. Thread safety: a pure function,
// safe to call from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "hawser/error.hpp"

namespace hawser {

struct PathLimits {
    std::size_t max_bytes = 1024;           // whole normalised name
    std::size_t max_component_bytes = 255;  // one segment (ext4's NAME_MAX)
    std::size_t max_depth = 32;             // segments
};

// Checks a name a peer sent and returns its normal form: segments joined by '/', no empty
// segments, no "." segments, no trailing '/'. Refused: an empty result, a leading '/', any '\\'
// or ':' (Windows separators and drive letters), control characters (including NUL), any ".."
// segment (refused, never resolved), invalid UTF-8 (overlong, surrogates, above U+10FFFF,
// truncated), bidi controls, zero-width characters, U+FEFF, lookalikes for '/' and '.'
// (U+2044, U+2215, U+FF0E, U+FF0F), and names over the limits. Errors are
// Errc::invalid_argument with a message saying what is wrong.
Result<std::string> normalise_relative_path(std::string_view name, const PathLimits& limits = {});

}  // namespace hawser
