// A validating pre-scan of MessagePack bytes, before msgpack-cxx builds anything from them.
// Pure function: any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"

namespace hawser::detail {

// What a pre-scan found: how many values sit at the top level.
struct Scanned {
    std::size_t top_level = 0;
};

// Walks a MessagePack stream without building anything. Each header is checked against the
// limits and against the bytes left (every announced element takes at least one byte) before
// msgpack-cxx would allocate for it, so what a frame costs to decode is bounded by the bytes it
// really holds: values * sizeof(msgpack::object) plus string contents.
Result<Scanned> scan_msgpack(std::string_view bytes, const DecodeLimits& limits);

}  // namespace hawser::detail
