// Configuration of servers and clients. Every limit is explicit; the defaults are documented in
// docs/design.md. Plain values: build them on any thread, hand them over at construction.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hawser/dataframe.hpp"

namespace hawser {

using namespace std::chrono_literals;
using Milliseconds = std::chrono::milliseconds;

// Four bytes before and after every frame. Drops scanners and stray clients cheaply and tells
// deployments apart. It is not security: anyone can read it off the wire (docs/security.md).
struct ProtocolMark {
    std::array<std::uint8_t, 4> head{'H', 'W', 'S', 'R'};
    std::array<std::uint8_t, 4> tail{'h', 'w', 's', 'r'};
    bool operator==(const ProtocolMark&) const = default;
};

struct Limits {
    std::uint32_t max_frame_bytes = 16u << 20;     // body of one frame
    std::uint32_t max_pending_calls = 4096;        // calls in flight per connection, each way
    std::size_t max_send_queue_bytes = 64u << 20;  // unsent bytes before `slow_consumer`
    DecodeLimits dataframe;                        // for every DataFrame received
};

struct Timeouts {
    Milliseconds call{30s};      // default deadline of a call
    Milliseconds idle{90s};      // close after receiving nothing this long; 0 = never
    Milliseconds heartbeat{0};   // send a ping after this much quiet; 0 = never
    Milliseconds shutdown{10s};  // graceful shutdown: how long in-flight calls may finish
    Milliseconds connect{10s};   // client: whole connect attempt over every address
};

struct ServerOptions {
    // "host:port" or "[v6]:port". "[::]:7100" is dual-stack (IPv4-mapped accepted too).
    std::vector<std::string> listen{"[::]:7100"};
    std::size_t io_threads = 0;      // 0 = one per core
    std::size_t worker_threads = 2;  // for handlers marked on_worker
    bool reuse_port = true;          // SO_REUSEPORT: several processes may share the port
    int backlog = 4096;
    std::size_t max_connections = 0;  // 0 = limited only by file descriptors
    ProtocolMark mark;
    Limits limits;
    Timeouts timeouts;
};

struct ReconnectPolicy {
    bool enabled = false;
    Milliseconds min_delay{100ms};
    Milliseconds max_delay{10s};  // backoff doubles up to here, with jitter
};

struct ClientOptions {
    // Tried in order until one answers; each name may resolve to several A and AAAA records,
    // which are raced Happy-Eyeballs style.
    std::vector<std::string> endpoints{"localhost:7100"};
    Milliseconds happy_eyeballs_delay{250ms};
    ReconnectPolicy reconnect;
    ProtocolMark mark;
    Limits limits;
    Timeouts timeouts{.idle = 60s, .heartbeat = 20s};
};

}  // namespace hawser
