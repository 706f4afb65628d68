// The server side of the handshake, and then the transport, on any bytes: the first byte picks
// the stride at which the input is cut into frame bodies; the handshake takes them until it is
// done and the transport of the real connection the rest, so both the hello parser and the
// Noise message readers are explored. (The transport's record parser behind a valid MAC is
// secure_transport_fuzz.)
#include <cstdint>
#include <span>
#include <vector>

#include "wire/secure_channel.hpp"

using namespace hawser::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto keys = noise::KeyPair::from_private(noise::Key{1, 2, 3});
    if (size < 2) return 0;
    std::vector<std::uint8_t> in(data + 1, data + size);
    // Split the input into bodies at a fixed stride chosen by the first byte.
    std::size_t stride = 1 + data[0] % 96;
    ServerHandshake server(hawser::ProtocolMark{}, data[0] & 1, keys);
    std::unique_ptr<SecureTransport> transport;
    for (std::size_t at = 0; at < in.size(); at += stride) {
        auto body = std::span(in).subspan(at, std::min(stride, in.size() - at));
        if (!transport) {
            auto step = server.on_frame(body);
            if (!step) return 0;
            if (step->done) {
                transport = server.transport(SecureTransport::Clock::now());
                if (!transport) return 0;  // plaintext agreement
            }
        } else {
            if (transport->open(body) != SecureTransport::Opened::ok) return 0;
            std::span<const std::uint8_t> message;
            while (transport->next(1u << 16, message) == SecureTransport::Next::message)
                if (message.size() > (1u << 16)) __builtin_trap();
        }
    }
    return 0;
}
