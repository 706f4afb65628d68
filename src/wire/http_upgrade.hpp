// The HTTP/1.1 upgrade that starts a WebSocket (RFC 6455 section 4): parsing the client's
// request and the server's answer with bounds, and writing both. Pure functions on bytes, no
// I/O: the WebSocket transport feeds them what it has read (docs/protocol.md, "WebSocket").
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/error.hpp"

namespace hawser::detail::http {

// What a server accepts as an upgrade request.
struct UpgradePolicy {
    std::string path = "/";                    // the request target (a query string is ignored)
    std::vector<std::string> allowed_origins;  // empty: any Origin, and requests without one
    std::size_t max_request_bytes = 8192;      // request line and headers (at most 64 KiB)
    std::size_t max_headers = 64;
};

// The subprotocol a Hawser client offers; a server that sees it offered names it back.
inline constexpr std::string_view subprotocol = "hawser";

struct Upgrade {
    std::string path, host, origin;
    std::string key;  // Sec-WebSocket-Key as sent (base64 of 16 bytes)
    bool hawser_subprotocol = false;
};

// How reading a request went: not complete yet, accepted, or refused with an HTTP status.
struct RequestOutcome {
    enum class State { incomplete, accepted, refused } state = State::incomplete;
    Upgrade upgrade;       // accepted
    std::size_t size = 0;  // accepted: bytes of the request (anything after them is WebSocket)
    int status = 0;        // refused: 400, 403, 404, 426 or 431
    std::string reason;    // refused: why, for the log and the response body
};

// How far read_request has looked into a request that is still arriving, so that each call
// looks only at what is new.
struct RequestScan {
    std::size_t scanned = 0;
    bool request_line_checked = false;
};

// `bytes` is everything received so far. A request is refused as soon as what arrived cannot
// become a valid one (not GET, a line not ending in CRLF, a bad request line or path, over the
// size), so a client learns early and nothing waits for the rest of a bad request. With `scan`
// kept between calls, the work is linear in the request's size however it is cut.
RequestOutcome read_request(std::string_view bytes, const UpgradePolicy& policy,
                            RequestScan* scan = nullptr);

// 101 Switching Protocols for an accepted request.
std::string accept_response(const Upgrade& upgrade);
// A refusal: the status, `Connection: close` and the reason as a text body.
std::string refusal_response(int status, std::string_view reason);

// --- the client's side ---

// A fresh Sec-WebSocket-Key (16 random bytes, base64).
std::string new_key();
std::string request(std::string_view host, std::string_view path, std::string_view origin,
                    std::string_view key);
// nullopt: the answer is not complete yet; otherwise the bytes it took (anything after them is
// WebSocket). An error when it is not a 101 naming the key's accept value (the status line
// and body of a refusal are in the message), or when it grows past `max_bytes`.
Result<std::optional<std::size_t>> read_response(std::string_view bytes, std::string_view key,
                                                 std::size_t max_bytes = 8192);

// base64(SHA-1(key + the RFC's GUID)): what Sec-WebSocket-Accept must say for `key`.
std::string accept_value(std::string_view key);

}  // namespace hawser::detail::http
