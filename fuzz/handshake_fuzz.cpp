// The server side of the handshake, and then the transport, on any bytes: the first byte picks
// how many of the following frame bodies go to the handshake (the rest go to the transport of
// a real connection), so both the hello parser and the Noise message readers are explored.
#include <cstdint>
#include <span>
#include <vector>

#include "wire/secure_channel.hpp"

using namespace hawser::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto keys = noise::KeyPair::from_private(noise::Key{1, 2, 3});
    if (size < 2) return 0;
    std::span<const std::uint8_t> in(data + 1, size - 1);
    // Split the input into bodies at a fixed stride chosen by the first byte.
    std::size_t stride = 1 + data[0] % 96;
    ServerHandshake server(hawser::ProtocolMark{}, data[0] & 1, keys);
    std::unique_ptr<SecureTransport> transport;
    std::vector<std::uint8_t> scratch;
    for (std::size_t at = 0; at < in.size(); at += stride) {
        auto body = in.subspan(at, std::min(stride, in.size() - at));
        if (!transport) {
            auto step = server.on_frame(body);
            if (!step) return 0;
            if (step->done) {
                transport = server.transport(SecureTransport::Clock::now());
                if (!transport) return 0;  // plaintext agreement
            }
        } else {
            std::span<const std::uint8_t> message;
            auto r = transport->open(body, 1u << 16, scratch, message);
            if (r == SecureTransport::Opened::message && message.size() > (1u << 16))
                __builtin_trap();
            if (r != SecureTransport::Opened::need_more && r != SecureTransport::Opened::message)
                return 0;
        }
    }
    return 0;
}
