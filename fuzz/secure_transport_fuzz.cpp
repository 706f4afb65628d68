// The secure transport's receiving side behind a valid MAC: the input is a list of pieces,
// each sealed here with the sender's key, so the record parser (lengths, records split across
// pieces, reassembly, the size bound, holding a paused piece) sees arbitrary plaintext.
// Input: max-message selector (1) | { length (2, big-endian) | flags (1) | plaintext } ...
// where the plaintext is what the piece carries (type byte first) and flag bit 0 makes the
// reader pause after the piece's first message and scribble over the buffer it read.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "wire/secure_transport.hpp"

using namespace hawser::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t max_message = std::size_t(1) << (4 + data[0] % 14);  // 16 B .. 128 KiB
    noise::Key key{9};
    noise::CipherState send, recv;
    send.initialize_key(key);
    recv.initialize_key(key);
    SecureTransport reader(noise::CipherState{}, recv, SecureTransport::Clock::now());
    std::size_t at = 1;
    while (at + 3 <= size) {
        std::size_t len = std::size_t(data[at]) << 8 | data[at + 1];
        bool pause = data[at + 2] & 1;
        at += 3;
        len = std::min({len, size - at, SecureTransport::max_piece + 1});
        std::vector<std::uint8_t> body(len + noise::tag_len);
        if (!send.encrypt_with_ad({}, std::span(data + at, len), body.data())) return 0;
        if (len == 1 && data[at] == SecureTransport::piece_rekey) send.rekey();  // as a sender
        at += len;
        if (reader.open(body) != SecureTransport::Opened::ok) return 0;
        std::span<const std::uint8_t> message;
        for (bool first = true;; first = false) {
            auto next = reader.next(max_message, message);
            if (next == SecureTransport::Next::too_large) return 0;
            if (next == SecureTransport::Next::need_more) break;
            if (message.size() > max_message) __builtin_trap();
            volatile std::uint8_t touch = message.empty() ? 0 : message.back();
            (void)touch;
            if (first && pause) {
                reader.hold();
                std::fill(body.begin(), body.end(), 0xEE);
            }
        }
        if (reader.held() != 0) __builtin_trap();  // everything handed out
    }
    return 0;
}
