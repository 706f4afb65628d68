// WebSocket's decoders: the upgrade request and answer parsers on any bytes, then the frame
// reader (wslay under WebSocketTransport) on any bytes split at any points. The first byte
// picks the read size and the side: a server after an accepted upgrade, a sniffing server
// after one, a sniffing server given the bytes as they are (native or not), or a client after
// the server's 101.
#include <cstdint>
#include <string>
#include <string_view>

#include "rpc/loop.hpp"
#include "rpc/memory_transport.hpp"
#include "rpc/websocket_transport.hpp"
#include "wire/http_upgrade.hpp"

using namespace hawser;
using namespace hawser::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::size_t chunk = 1 + data[0] % 64;
    int side = data[0] >> 6;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    http::UpgradePolicy policy;
    policy.max_request_bytes = 1024;
    policy.max_headers = 16;
    policy.allowed_origins = {"https://game.example"};
    auto request = http::read_request(in, policy);
    if (request.state == http::RequestOutcome::State::accepted &&
        (request.size > in.size() || request.size > policy.max_request_bytes))
        __builtin_trap();
    if (auto answer = http::read_response(in, "dGhlIHNhbXBsZSBub25jZQ==", 1024); answer && *answer)
        if (**answer > in.size()) __builtin_trap();

    static RuntimeImpl runtime(RuntimeOptions{1, 1}, Loop::ClockMode::manual);
    auto& loop = runtime.loop(0);
    auto [end, raw] = make_memory_pair(loop, loop, 1 << 20);
    std::error_code ec;
    std::string bytes;
    std::unique_ptr<WebSocketTransport> ws;
    if (side == 3) {
        ws = std::make_unique<WebSocketTransport>(loop.context(), std::move(end),
                                                  WebSocketTransport::ClientSide{"x", "/", ""});
        asio::const_buffer hello("hello", 5);  // written early: sends the request
        ws->write_some({&hello, 1}, ec);
        char request[4096];
        auto n = raw->read_some({reinterpret_cast<std::uint8_t*>(request), sizeof request}, ec);
        std::string_view sent(request, n);
        auto at = sent.find("Sec-WebSocket-Key: ");
        if (at == std::string_view::npos) __builtin_trap();
        auto key = sent.substr(at + 19, 24);
        bytes =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
            "Upgrade\r\nSec-WebSocket-Accept: " +
            http::accept_value(key) + "\r\n\r\n";
    } else {
        ws = std::make_unique<WebSocketTransport>(
            loop.context(), std::move(end),
            WebSocketTransport::ServerSide{std::make_shared<const http::UpgradePolicy>(),
                                           side != 0});
        if (side != 2)
            bytes =
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    }
    bytes += in;
    std::vector<std::uint8_t> buffer(chunk);
    for (std::size_t at = 0; at < bytes.size(); at += chunk) {
        asio::const_buffer part(bytes.data() + at, std::min(chunk, bytes.size() - at));
        raw->write_some({&part, 1}, ec);
        for (;;) {
            auto n = ws->read_some(buffer, ec);
            if (ec) break;
            if (n == 0 || n > buffer.size()) __builtin_trap();
            asio::const_buffer echo(buffer.data(), n);  // sent back, framed
            ws->write_some({&echo, 1}, ec);
        }
        if (ec && ec != asio::error::would_block) break;
        std::uint8_t drain[4096];
        while (raw->read_some(drain, ec) > 0) {
        }
    }
    return 0;
}
