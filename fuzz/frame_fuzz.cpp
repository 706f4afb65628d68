// The frame decoder over any bytes split at any points, then the message parser on each body.
#include <cstdint>
#include <span>
#include <vector>

#include "wire/frame.hpp"
#include "wire/message.hpp"

using namespace hawser::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    // The first byte picks the read size, so splits are explored too.
    std::size_t chunk = 1 + data[0] % 64;
    std::vector<std::uint8_t> in(data + 1, data + size);
    FrameConfig cfg;
    cfg.max_body = 4096;
    FrameDecoder decoder;
    for (std::size_t at = 0; at < in.size(); at += chunk) {
        auto part = std::span(in).subspan(at, std::min(chunk, in.size() - at));
        auto err = decoder.feed(part, cfg, [](std::span<const std::uint8_t> body) {
            if (body.size() > 4096) __builtin_trap();  // never over the limit
            (void)parse_message(body);
            return true;
        });
        if (err != FrameError::none) break;
    }
    return 0;
}
