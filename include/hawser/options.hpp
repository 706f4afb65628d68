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
    std::uint32_t max_frame_bytes = 16u << 20;  // body of one frame
    std::uint32_t max_pending_calls = 4096;     // calls in flight per connection, each way
    // Unsent bytes per connection. Past the hard limit: closed `slow_consumer` at once. Past the
    // soft limit (0 = none) the connection is congested (broadcasts skip it, Connection::
    // congested() tells producers) and is closed `slow_consumer` if it stays there for the grace.
    std::size_t max_send_queue_bytes = 64u << 20;
    std::size_t send_queue_soft_bytes = 8u << 20;
    Milliseconds send_queue_soft_grace{10s};
    // One compressed message may grow to this; checked against its announced size before
    // anything is allocated. As large as a frame, so compression never changes what fits.
    std::uint32_t max_decompressed_bytes = 16u << 20;
    // DataFrame-command payloads over this are decoded on the worker pool, not the IO thread ...
    std::uint32_t worker_decode_bytes = 64u << 10;
    // ... and at most this many payload bytes per connection wait for that (more: `overloaded`).
    std::size_t max_worker_decode_bytes = 64u << 20;
    DecodeLimits dataframe;  // for every DataFrame received
    // Big streams (streams.hpp). What this side grants each stream it receives: the most a peer
    // may send ahead of what the application has read, so a connection buffers at most
    // max_incoming_streams x stream_window_bytes; and what all of them together may have on the
    // wire (given back as data arrives, so one unread stream never blocks the others).
    // (On loopback a window of 64 KiB already reaches full speed, and the window is what a call
    // may wait behind: docs/performance.md, "Big streams".)
    std::uint32_t stream_window_bytes = 256u << 10;
    std::uint32_t stream_connection_window_bytes = 1u << 20;
    // Sending: the most one data message carries. A call queued behind a stream waits for at
    // most about this many bytes of it.
    std::uint32_t stream_chunk_bytes = 32u << 10;
    // Both ways: what one turn of the IO loop hashes of a stream's content (BLAKE2b, at about
    // 0.55 GiB/s here: 8 KiB is about 15 us). Calls on the loop wait for at most one turn;
    // larger turns cost fewer loop passes, a few per cent of a stream's rate. (A sink's chunk
    // is hashed as it is sent, since its bytes are not kept.)
    std::uint32_t stream_hash_turn_bytes = 8u << 10;
    std::uint32_t max_incoming_streams = 64;    // open at once per connection (more: refused)
    std::uint32_t max_outgoing_streams = 1024;  // open at once per connection (more: refused)
};

// Any of these longer than a year counts as a year.
struct Timeouts {
    Milliseconds call{30s};      // default deadline of a call
    Milliseconds idle{90s};      // close after receiving nothing this long; 0 = never
    Milliseconds heartbeat{0};   // send a ping after this much quiet; 0 = never
    Milliseconds shutdown{10s};  // graceful shutdown: how long in-flight calls may finish
    Milliseconds connect{10s};   // client: whole connect attempt over every address
};

enum class Compression : std::uint8_t { none = 0, zstd = 1, lz4 = 2 };

// How messages travel once the connection is established. Both ends pick their own settings;
// each receives whatever the other sends.
struct TransportOptions {
    // Plaintext only when both server and client say so (benchmarks, debugging). Fixed for the
    // life of a connection: nothing downgrades it later.
    bool insecure_plaintext = false;
    std::uint64_t rekey_messages = 1u << 20;  // rekey the sending key after this many messages
    Milliseconds rekey_interval{600s};        // ... or this much time, whichever comes first
    // The algorithm. Whether a given message is compressed is also a per-command, per-call and
    // per-broadcast choice (CommandOptions, CallOptions): see "Compression and secrets" in
    // docs/security.md.
    Compression compression = Compression::zstd;
    std::uint32_t compress_threshold = 512;  // payloads at least this big are compressed if it pays
};

// Refusals before a handshake: each has a CloseReason and a counter (docs/security.md).
// A source address is an IPv4 /32 or an IPv6 /64.
struct AdmissionOptions {
    Milliseconds handshake_timeout{5s};
    std::size_t max_handshakes = 4096;        // in progress, whole process
    std::size_t max_handshakes_per_ip = 256;  // in progress, one source address
    // Key exchanges a second, whole server (shared evenly by its IO threads); past it a
    // handshake waits its turn, within handshake_timeout, so that a reconnect storm leaves the
    // established connections their share of the cores. 1 to 1e9, or 0 = as fast as they come.
    // Server::update_limits changes it for the handshakes waiting too.
    double max_handshakes_per_second = 0;
    std::size_t max_connections_per_address = 4096;  // open at once, one source; 0 = no cap
    double connections_per_second_per_ip = 200;      // sustained rate; 0 = unlimited
    double connection_burst_per_ip = 1000;           // bucket size for that rate
    // Sources with per-address state. When full, sources with nothing to remember are
    // forgotten; new ones past that share one entry (limits apply to them as a group).
    std::size_t max_tracked_addresses = 100000;
    std::vector<std::string> allow;  // CIDR ranges; empty = everyone not denied
    std::vector<std::string> deny;   // CIDR ranges, checked first
};

// WebSocket (RFC 6455), for browsers (docs/protocol.md, "WebSocket"): Hawser's frames travel in
// binary WebSocket messages, with the same handshake and encryption inside them.
struct WebSocketOptions {
    // Addresses where every connection is a WebSocket, written as `listen` ("[::]:7180").
    std::vector<std::string> listen;
    // Also upgrade on the native `listen` addresses: a connection whose first bytes are "GET "
    // is a WebSocket, any other is native (each connection there then costs ~450 bytes more).
    bool on_native_ports = false;
    std::string path = "/";  // the request path upgrades must ask for (a query is ignored)
    // Origins allowed, as browsers send them ("https://game.example"); empty: any Origin, and
    // requests without one.
    std::vector<std::string> allowed_origins;
    // The upgrade request, headers included; its time is bounded by the handshake timeout.
    std::size_t max_request_bytes = 8192;
    std::size_t max_headers = 64;
};

struct ServerOptions {
    // "host:port" or "[v6]:port". "[::]:7100" is dual-stack (IPv4-mapped accepted too).
    std::vector<std::string> listen{"[::]:7100"};
    std::size_t io_threads = 0;                 // 0 = one per core
    std::size_t worker_threads = 2;             // for handlers marked on_worker
    std::size_t max_worker_jobs = 65536;        // worker queue bound (RuntimeOptions)
    std::size_t max_worker_bytes = 256u << 20;  // ... and in payload bytes
    // SO_REUSEPORT, only when asked: processes that share a port are one service (same key).
    // Off, a second server on a port in use fails at start instead of taking part of its load.
    bool reuse_port = false;
    int backlog = 4096;
    std::size_t max_connections = 0;  // 0 = limited only by file descriptors
    ProtocolMark mark;
    Limits limits;
    Timeouts timeouts;
    TransportOptions transport;
    AdmissionOptions admission;
    // Errors sent to peers carry a generic text and an error id that the server logs with the
    // details (a handler's exception, why a handshake failed). Development only: send the details.
    bool send_error_details = false;
    // The server's static key pair lives in <data_dir>/server.key (mode 0600), generated on
    // first start. An empty data_dir keeps a fresh key in memory only (tests).
    std::string data_dir = "hawser-data";
    // Client authentication by static key (docs/security.md, "Client keys"). A client that
    // fails it is closed with CloseReason::key_not_allowed.
    // Public keys (64 hex digits) of the clients allowed in; when not empty, a client must
    // present one of them. Checked at start().
    std::vector<std::string> allowed_client_keys;
    // Refuse clients that present no static key (NK) even when the list is empty.
    bool require_client_key = false;
    WebSocketOptions websocket;
};

struct ReconnectPolicy {
    bool enabled = false;
    Milliseconds min_delay{100ms};
    Milliseconds max_delay{10s};  // backoff doubles up to here, with jitter
};

// A client that reaches its server through a WebSocket upgrade (a server's websocket.listen
// ports, or native ports with websocket.on_native_ports), as a browser does.
struct ClientWebSocketOptions {
    bool enabled = false;
    std::string path = "/";
    std::string host;    // the Host header; empty: the address connected to
    std::string origin;  // sent as Origin unless empty
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
    TransportOptions transport;
    // The server's static public key, 64 hex digits (hawser-server --print-public-key). The
    // client refuses to connect without it unless trust_on_first_use is set, in which case it
    // learns the key from the first server (Noise XX), logs it and pins it from then on.
    std::string server_public_key;
    bool trust_on_first_use = false;
    // The client's own static key, which proves who it is to the server (Noise XX; see
    // docs/security.md). Either a key file — loaded, or created on first use like the server's
    // (mode 0600, directory 0700) — or the private key itself as 64 hex digits. Not both.
    // Without one the client stays anonymous (Noise NK).
    std::string client_key_file;
    std::string client_private_key;
    // Cluster entry: `endpoints` are entry nodes of a Hawser cluster. After connecting to one,
    // the client asks it where to go (Cluster::route_command) and moves to that node, trusting
    // the node's key as vouched for by the entry node it authenticated. Reconnects start again
    // at the entry endpoints, so a dead node's clients spread over the others.
    bool cluster = false;
    ClientWebSocketOptions websocket;
};

}  // namespace hawser
