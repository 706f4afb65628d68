// The message header parser and the coded (error/goodbye) payload parser.
#include <cstdint>
#include <span>

#include "wire/message.hpp"

using namespace hawser::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto m = parse_message(std::span<const std::uint8_t>(data, size));
    if (!m) return 0;
    if (m->payload.data() + m->payload.size() != data + size) __builtin_trap();
    if (m->name.size() > max_command_name) __builtin_trap();
    (void)parse_coded(m->payload);
    return 0;
}
