// The big-stream payload parsers (open, accept, window, end, reset): the first byte picks one.
// Whatever parses must encode back to the same bytes.
#include <cstdint>
#include <span>
#include <vector>

#include "wire/message.hpp"
#include "wire/stream_messages.hpp"

using namespace hawser::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    auto payload = std::span<const std::uint8_t>(data + 1, size - 1);
    std::vector<std::uint8_t> out;
    switch (data[0] % 5) {
        case 0:
            if (auto open = parse_stream_open(payload)) {
                encode_stream_open(out, *open);
                if (!std::equal(out.begin(), out.end(), payload.begin(), payload.end()))
                    __builtin_trap();
            }
            break;
        case 1:
            if (auto accept = parse_stream_accept(payload)) {
                if (accept->window > max_stream_credit) __builtin_trap();
                encode_stream_accept(out, *accept);
                if (!std::equal(out.begin(), out.end(), payload.begin(), payload.end()))
                    __builtin_trap();
            }
            break;
        case 2:
            if (auto credit = parse_stream_credit(payload)) {
                if (*credit == 0 || *credit > max_stream_credit) __builtin_trap();
                encode_stream_credit(out, *credit);
                if (!std::equal(out.begin(), out.end(), payload.begin(), payload.end()))
                    __builtin_trap();
            }
            break;
        case 3:
            if (auto hash = parse_stream_end(payload))
                if (!std::equal(hash->begin(), hash->end(), payload.begin(), payload.end()))
                    __builtin_trap();
            break;
        default:
            (void)parse_coded(payload);
    }
    return 0;
}
