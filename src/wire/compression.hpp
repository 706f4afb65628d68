// Per-message payload compression (zstd or lz4). A compressed payload is
//   original size (4, big-endian) | compressed bytes
// so the receiver checks the size against its limit before it allocates or decompresses.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser::detail {

// The compressed form, or nothing when compression would not save space.
std::optional<std::string> compress(Compression algorithm, std::span<const std::uint8_t> payload);

// Errc::limit_exceeded when the original size is over `max_size` (a zip bomb), bad_payload when
// the bytes do not decompress to exactly the announced size.
Result<std::string> decompress(Compression algorithm, std::span<const std::uint8_t> compressed,
                               std::size_t max_size);

}  // namespace hawser::detail
