// The raw baseline's wire: what a hand-written epoll server and client would send, with no
// framework, no encryption and no marks. A frame is a 4-byte little-endian length, then one byte
// of type and the payload (length counts both).
//   ping      client -> server, 8 bytes; the server sends them back as a pong
//   trigger   client -> server, "<count> <size>": the server sends `count` messages to everyone
//   message   server -> client, "<seq> <CLOCK_MONOTONIC ns at send> " padded to size
//   subscribe client -> server, a channel name; answered with a pong
//   publish   client -> server, "<worker> <personal> <group> <first> <count> <size>": `count`
//             publications going round the worker's channels from index `first`
//             (apps/common/bench_channels.hpp), each a message to the subscribers it has here;
//             answered with a pong once all are queued
//   hello     both ways, first, with --raw-sealed only: an ephemeral public key (raw_seal.hpp);
//             every frame after it travels in sealed records
//   heartbeat client -> server after --heartbeat-ms of quiet, as Hawser's ping; the server sends
//             it back, as Hawser's pong
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace hawser::bench::raw {

enum Type : std::uint8_t {
    ping = 1,
    pong = 2,
    trigger = 3,
    message = 4,
    subscribe = 5,
    publish = 6,
    hello = 7,  // the sealed variant's key exchange (raw_seal.hpp), before anything else
    heartbeat = 8
};
constexpr std::uint32_t max_frame = 1u << 20;

inline void append_frame(std::string& out, Type type, std::string_view payload) {
    std::uint32_t len = std::uint32_t(payload.size() + 1);
    char head[5];
    std::memcpy(head, &len, 4);  // little-endian hosts only, as every Linux target here
    head[4] = char(type);
    out.append(head, 5);
    out.append(payload);
}

// Calls on_frame(type, payload) for each whole frame at the front of `buffer` and returns the
// bytes used; -1 on a frame over max_frame.
template <class OnFrame>
long parse_frames(std::string_view buffer, OnFrame&& on_frame) {
    std::size_t used = 0;
    while (buffer.size() - used >= 5) {
        std::uint32_t len = 0;
        std::memcpy(&len, buffer.data() + used, 4);
        if (len == 0 || len > max_frame) return -1;
        if (buffer.size() - used - 4 < len) break;
        on_frame(Type(std::uint8_t(buffer[used + 4])), buffer.substr(used + 5, len - 1));
        used += 4 + len;
    }
    return long(used);
}

}  // namespace hawser::bench::raw
