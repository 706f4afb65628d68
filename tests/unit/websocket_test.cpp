// WebSocket: the HTTP upgrade parser, and WebSocketTransport over the in-memory transport,
// driven byte by byte from a raw end whose frames this file builds by hand from RFC 6455 (an
// independent check of what wslay and the transport do).
#include <gtest/gtest.h>

#include <asio/error.hpp>
#include <cstring>
#include <random>
#include <string>

#include "rpc/loop.hpp"
#include "rpc/memory_transport.hpp"
#include "rpc/websocket_transport.hpp"
#include "wire/http_upgrade.hpp"

namespace hawser::detail {
namespace {

using http::RequestOutcome;

// RFC 6455 section 1.3's example.
constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string upgrade_request(std::string_view extra = "", std::string_view path = "/",
                            std::string_view version = "13") {
    return "GET " + std::string(path) +
           " HTTP/1.1\r\nHost: game.example:7180\r\nUpgrade: websocket\r\n"
           "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " +
           std::string(rfc_key) + "\r\nSec-WebSocket-Version: " + std::string(version) + "\r\n" +
           std::string(extra) + "\r\n";
}

TEST(HttpUpgrade, AcceptValueIsTheRfcExample) {
    EXPECT_EQ(http::accept_value(rfc_key), rfc_accept);
}

TEST(HttpUpgrade, ReadsAValidRequestByteByByte) {
    auto request =
        upgrade_request("Origin: https://game.example\r\nSec-WebSocket-Protocol: x, hawser\r\n") +
        "\x82";  // the first byte of a frame after it
    http::UpgradePolicy policy;
    for (std::size_t n = 0; n + 1 < request.size(); ++n)
        ASSERT_EQ(http::read_request(request.substr(0, n), policy).state,
                  RequestOutcome::State::incomplete)
            << n;
    auto out = http::read_request(request, policy);
    ASSERT_EQ(out.state, RequestOutcome::State::accepted) << out.reason;
    EXPECT_EQ(out.size, request.size() - 1);
    EXPECT_EQ(out.upgrade.host, "game.example:7180");
    EXPECT_EQ(out.upgrade.origin, "https://game.example");
    EXPECT_TRUE(out.upgrade.hawser_subprotocol);
    auto response = http::accept_response(out.upgrade);
    EXPECT_NE(response.find("HTTP/1.1 101 "), std::string::npos);
    EXPECT_NE(response.find("Sec-WebSocket-Accept: " + std::string(rfc_accept) + "\r\n"),
              std::string::npos);
    EXPECT_NE(response.find("Sec-WebSocket-Protocol: hawser\r\n"), std::string::npos);
    // What a client reads of it.
    auto read = http::read_response(response + "rest", rfc_key);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(**read, response.size());
}

TEST(HttpUpgrade, RefusesBadRequestsWithTheRightStatus) {
    http::UpgradePolicy policy;
    policy.path = "/hawser";
    policy.allowed_origins = {"https://game.example"};
    struct Case {
        std::string request;
        int status;
    };
    auto base = [](std::string_view extra = "Origin: https://game.example\r\n",
                   std::string_view path = "/hawser", std::string_view version = "13") {
        return upgrade_request(extra, path, version);
    };
    std::vector<Case> cases = {
        {"POST / HTTP/1.1\r\n\r\n", 400},
        {"HWSR\x01\x02", 400},
        {base("Origin: https://evil.example\r\n"), 403},
        {base(""), 403},  // no Origin while a list is configured
        {base("Origin: https://game.example\r\n", "/other"), 404},
        {base("Origin: https://game.example\r\n", "/hawser", "8"), 426},
        {base("Origin: https://game.example\r\nOrigin: https://game.example\r\n"), 400},
        {base("Origin: https://game.example\r\n X-Folded: yes\r\n"), 400},
        {base("Origin: https://game.example\r\nBad Name: x\r\n"), 400},
        {base(std::string("Origin: https://game.example\r\nX: a\0b\r\n", 38)), 400},
        {"GET /hawser HTTP/1.0\r\nHost: x\r\n\r\n", 400},
        {"GET /hawser HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},  // no Host
        {"GET /hawser HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Origin: https://game.example\r\n\r\n",
         400},
        {"GET /hawser HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n"
         "Origin: https://game.example\r\n\r\n",
         400},  // a key of 5 bytes
        {"GET /hawser HTTP/1.1\nHost: x\n\n\r\n\r\n", 400},
    };
    for (const auto& c : cases) {
        auto out = http::read_request(c.request, policy);
        EXPECT_EQ(out.state, RequestOutcome::State::refused) << c.request;
        EXPECT_EQ(out.status, c.status) << c.request << " -> " << out.reason;
        EXPECT_FALSE(out.reason.empty());
    }
    // Too big, whole or still arriving; too many headers.
    policy.max_request_bytes = 512;
    auto big = base("Origin: https://game.example\r\nX-Pad: " + std::string(600, 'a') + "\r\n");
    EXPECT_EQ(http::read_request(big, policy).status, 431);
    EXPECT_EQ(http::read_request(big.substr(0, 520), policy).status, 431);
    policy.max_request_bytes = 8192;
    policy.max_headers = 8;
    std::string many = "Origin: https://game.example\r\n";
    for (int i = 0; i < 10; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
    EXPECT_EQ(http::read_request(base(many), policy).status, 431);
}

TEST(HttpUpgrade, BadLinesAreRefusedBeforeTheRequestEnds) {
    http::UpgradePolicy policy;
    policy.path = "/hawser";
    EXPECT_EQ(http::read_request("GET /hawser HTTP/1.1\nHost: x", policy).status, 400);
    EXPECT_EQ(http::read_request("GET /other HTTP/1.1\r\nHost: x", policy).status, 404);
    EXPECT_EQ(http::read_request("GET /hawser HTTP/1.0\r\n", policy).status, 400);
    EXPECT_EQ(http::read_request("GET /hawser HTTP/1.1\r\nHost: x", policy).state,
              RequestOutcome::State::incomplete);
    // Scanned as it arrives, a byte at a time, it reads as it does whole.
    auto request = upgrade_request("", "/hawser");
    http::RequestScan scan;
    for (std::size_t n = 1; n < request.size(); ++n)
        ASSERT_EQ(http::read_request(request.substr(0, n), policy, &scan).state,
                  RequestOutcome::State::incomplete)
            << n;
    auto out = http::read_request(request, policy, &scan);
    EXPECT_EQ(out.state, RequestOutcome::State::accepted) << out.reason;
    EXPECT_EQ(out.size, request.size());
    // What follows the head is frames, not lines: a bare LF there is no error.
    out = http::read_request(request + "\x82\x81\x0a\n\n\n\n", policy);
    EXPECT_EQ(out.state, RequestOutcome::State::accepted) << out.reason;
}

TEST(HttpUpgrade, ClientRefusesWrongAnswers) {
    auto key = http::new_key();
    ASSERT_EQ(key.size(), 24u);
    auto good =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        http::accept_value(key) + "\r\n\r\n";
    ASSERT_TRUE(http::read_response(good, key));
    EXPECT_FALSE(*http::read_response(good.substr(0, good.size() - 1), key));  // incomplete
    auto wrong_accept =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
        std::string(rfc_accept) + "\r\n\r\n";
    EXPECT_FALSE(http::read_response(wrong_accept, key));
    auto refused = http::refusal_response(403, "this Origin is not allowed");
    auto r = http::read_response(refused, key);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("403"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("this Origin is not allowed"), std::string::npos);
    EXPECT_FALSE(http::read_response(std::string(9000, 'x'), key));
    // A status line with a terminal escape in it is not repeated in the error.
    auto escape = http::read_response("HTTP/1.1 403 \x1b]0;owned\x07\r\n\r\n", key);
    ASSERT_FALSE(escape);
    EXPECT_EQ(escape.error().code, Errc::bad_payload);
    EXPECT_EQ(escape.error().message.find('\x1b'), std::string::npos) << escape.error().message;
    auto tab = http::read_response("HTTP/1.1 403 Not\tallowed\r\n\r\n", key);  // HTTP allows it
    ASSERT_FALSE(tab);
    EXPECT_EQ(tab.error().code, Errc::not_allowed);
}

// --- the transport, against a raw end ---

// A frame as RFC 6455 section 5.2 lays it out.
std::string frame(std::uint8_t opcode, std::string_view payload, bool mask = true, bool fin = true,
                  std::uint8_t rsv = 0) {
    std::string f;
    f += char((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    std::uint8_t m = mask ? 0x80 : 0;
    if (payload.size() < 126) {
        f += char(m | payload.size());
    } else if (payload.size() < 65536) {
        f += char(m | 126);
        f += char(payload.size() >> 8);
        f += char(payload.size() & 0xff);
    } else {
        f += char(m | 127);
        for (int i = 7; i >= 0; --i) f += char((std::uint64_t(payload.size()) >> (8 * i)) & 0xff);
    }
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (mask) f.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        f += mask ? char(payload[i] ^ key[i % 4]) : payload[i];
    return f;
}

// A parsed frame from the raw end's bytes.
struct Frame {
    std::uint8_t opcode = 0;
    bool fin = false, masked = false;
    std::string payload;
};
// The first whole frame in `bytes`, removed from it; nullopt when none is whole yet.
std::optional<Frame> take_frame(std::string& bytes) {
    if (bytes.size() < 2) return std::nullopt;
    auto b0 = std::uint8_t(bytes[0]), b1 = std::uint8_t(bytes[1]);
    std::size_t at = 2;
    std::uint64_t len = b1 & 0x7f;
    if (len == 126 || len == 127) {
        std::size_t n = len == 126 ? 2 : 8;
        if (bytes.size() < at + n) return std::nullopt;
        len = 0;
        for (std::size_t i = 0; i < n; ++i) len = (len << 8) | std::uint8_t(bytes[at + i]);
        at += n;
    }
    bool masked = b1 & 0x80;
    char key[4] = {};
    if (masked) {
        if (bytes.size() < at + 4) return std::nullopt;
        std::memcpy(key, bytes.data() + at, 4);
        at += 4;
    }
    if (bytes.size() < at + len) return std::nullopt;
    Frame f{std::uint8_t(b0 & 0x0f), bool(b0 & 0x80), masked, bytes.substr(at, len)};
    if (masked)
        for (std::size_t i = 0; i < f.payload.size(); ++i) f.payload[i] ^= key[i % 4];
    bytes.erase(0, at + len);
    return f;
}

class WebSocketPair : public ::testing::Test {
  protected:
    WebSocketPair()
        : runtime_(RuntimeOptions{1, 1}, Loop::ClockMode::manual), loop_(runtime_.loop(0)) {}

    // A server-side WebSocket on one end of a pair; `raw` is the other end.
    void serve(http::UpgradePolicy policy = {}, bool sniff = false,
               std::size_t capacity = 1 << 20) {
        auto [a, b] = make_memory_pair(loop_, loop_, capacity);
        ws = std::make_unique<WebSocketTransport>(
            loop_.context(), std::move(a),
            WebSocketTransport::ServerSide{
                std::make_shared<const http::UpgradePolicy>(std::move(policy)), sniff});
        raw = std::move(b);
    }

    void send_raw(std::string_view bytes) {
        asio::const_buffer b(bytes.data(), bytes.size());
        std::error_code ec;
        ASSERT_EQ(raw->write_some({&b, 1}, ec), bytes.size());
    }
    // Everything the raw end has been sent so far.
    std::string read_raw() {
        std::string out;
        std::uint8_t buf[65536];
        std::error_code ec;
        for (;;) {
            auto n = raw->read_some(buf, ec);
            if (ec) break;
            out.append(reinterpret_cast<char*>(buf), n);
        }
        return out;
    }
    // What the WebSocket side reads now, until it would block; `ec` holds how it stopped.
    std::string read_ws(std::error_code& ec) {
        std::string out;
        std::uint8_t buf[1000];  // small, so reads stop with input left over
        for (;;) {
            auto n = ws->read_some(buf, ec);
            if (ec) break;
            out.append(reinterpret_cast<char*>(buf), n);
        }
        return out;
    }
    std::string read_ws() {
        std::error_code ec;
        auto out = read_ws(ec);
        EXPECT_EQ(ec, asio::error::would_block) << ec.message();
        return out;
    }
    void write_ws(std::string_view bytes) {
        asio::const_buffer b(bytes.data(), bytes.size());
        std::error_code ec;
        ASSERT_EQ(ws->write_some({&b, 1}, ec), bytes.size()) << ec.message();
    }
    void upgrade() {
        send_raw(upgrade_request());
        EXPECT_EQ(read_ws(), "");
        auto answer = read_raw();
        ASSERT_EQ(answer.rfind("HTTP/1.1 101 ", 0), 0u) << answer;
        ASSERT_NE(answer.find(std::string(rfc_accept)), std::string::npos);
    }

    RuntimeImpl runtime_;
    Loop& loop_;
    std::unique_ptr<WebSocketTransport> ws;
    std::unique_ptr<Transport> raw;
};

TEST_F(WebSocketPair, CarriesBytesBothWaysInBinaryFrames) {
    serve();
    upgrade();
    // One message, another in three fragments, one of 70,000 bytes (a 64-bit length) and an
    // empty one: to the channel above it is all one byte stream.
    std::string big(70000, 'z');
    send_raw(frame(0x2, "hello ") + frame(0x2, "wor", true, false) + frame(0x0, "l", true, false) +
             frame(0x0, "d ", true, true) + frame(0x2, big) + frame(0x2, ""));
    EXPECT_EQ(read_ws(), "hello world " + big);
    write_ws("from the server");
    auto bytes = read_raw();
    auto f = take_frame(bytes);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 0x2);
    EXPECT_TRUE(f->fin);
    EXPECT_FALSE(f->masked);  // a server does not mask
    EXPECT_EQ(f->payload, "from the server");
    EXPECT_TRUE(bytes.empty());
}

TEST_F(WebSocketPair, AnswersPingsAndCloses) {
    serve();
    upgrade();
    send_raw(frame(0x9, "are you there") + frame(0x2, "data") + frame(0xA, "unasked pong"));
    EXPECT_EQ(read_ws(), "data");
    auto bytes = read_raw();
    auto pong = take_frame(bytes);
    ASSERT_TRUE(pong);
    EXPECT_EQ(pong->opcode, 0xA);
    EXPECT_EQ(pong->payload, "are you there");

    send_raw(frame(0x8, std::string("\x03\xe9", 2) + "going away \xe2\x80\x94 bye"));  // 1001
    std::error_code ec;
    read_ws(ec);
    EXPECT_EQ(ec, asio::error::eof);
    bytes = read_raw();
    auto close = take_frame(bytes);
    ASSERT_TRUE(close);
    EXPECT_EQ(close->opcode, 0x8);
    EXPECT_EQ(close->payload, std::string("\x03\xe9", 2));  // its code comes back
    EXPECT_EQ(ws->failure().reason, CloseReason::peer_closed);
    std::error_code after;
    EXPECT_EQ(ws->write_some({}, after), 0u);
    EXPECT_TRUE(after);  // nothing more is sent after the close
}

TEST_F(WebSocketPair, ProtocolBreachesCloseWithAReason) {
    struct Case {
        std::string bytes;
        std::uint16_t close_code;
        std::string says;
    };
    std::vector<Case> cases = {
        {frame(0x1, "text"), 1003, "text"},
        {frame(0x2, "unmasked", false), 1002, "not masked"},
        {frame(0x2, "rsv", true, true, 4), 1002, "reserved bits"},
        {frame(0x0, "orphan"), 1002, "continuation"},
        {frame(0x2, "a", true, false) + frame(0x2, "b"), 1002, "inside another"},
        {frame(0x3, "x"), 1002, "reserved opcode"},
        {frame(0x9, std::string(126, 'p')), 1002, "malformed"},
        {frame(0x8, "x"), 1002, "one-byte"},
        {frame(0x8, std::string("\x03\xed", 2)), 1002, "reserved code"},          // 1005
        {frame(0x8, std::string("\x03\xe8ok\xc0\xaf", 6)), 1007, "not UTF-8"},    // overlong '/'
        {frame(0x8, std::string("\x03\xe8\xed\xa0\x80", 5)), 1007, "not UTF-8"},  // a surrogate
    };
    for (const auto& c : cases) {
        serve();
        upgrade();
        send_raw(c.bytes);
        std::error_code ec;
        read_ws(ec);
        EXPECT_EQ(ec, std::errc::protocol_error) << c.says;
        EXPECT_EQ(ws->failure().reason, CloseReason::websocket_error);
        EXPECT_NE(ws->failure().detail.find(c.says), std::string::npos) << ws->failure().detail;
        auto bytes = read_raw();
        auto close = take_frame(bytes);
        ASSERT_TRUE(close) << c.says;
        EXPECT_EQ(close->opcode, 0x8);
        ASSERT_EQ(close->payload.size(), 2u);
        EXPECT_EQ((std::uint8_t(close->payload[0]) << 8) | std::uint8_t(close->payload[1]),
                  c.close_code)
            << c.says;
    }
}

TEST_F(WebSocketPair, RefusedUpgradeAnswersHttpAndFails) {
    http::UpgradePolicy policy;
    policy.allowed_origins = {"https://game.example"};
    serve(policy);
    send_raw(upgrade_request("Origin: https://evil.example\r\n"));
    std::error_code ec;
    read_ws(ec);
    EXPECT_EQ(ec, std::errc::protocol_error);
    EXPECT_EQ(ws->failure().reason, CloseReason::websocket_error);
    EXPECT_NE(ws->failure().detail.find("403"), std::string::npos);
    auto answer = read_raw();
    EXPECT_EQ(answer.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << answer;
}

TEST_F(WebSocketPair, SniffingPassesNativeBytesThrough) {
    using namespace std::string_literals;
    serve({}, true);
    auto native = "HWSR\x00\x02 and the rest of a native stream"s;
    send_raw(native.substr(0, 2));  // "HW" cannot begin "GET ": native at once
    EXPECT_EQ(read_ws(), "HW");
    send_raw(native.substr(2));
    EXPECT_EQ(read_ws(), native.substr(2));
    write_ws("answer");
    EXPECT_EQ(read_raw(), "answer");  // unframed

    serve({}, true);
    auto odd_mark = "GETX\x00\x02 a deployment whose mark begins with GET"s;
    send_raw(odd_mark.substr(0, 3));  // too few to tell yet
    EXPECT_EQ(read_ws(), "");
    send_raw(odd_mark.substr(3));
    EXPECT_EQ(read_ws(), odd_mark);

    serve({}, true);
    upgrade();  // "GET " on the same kind of port
    send_raw(frame(0x2, "framed"));
    EXPECT_EQ(read_ws(), "framed");
}

TEST_F(WebSocketPair, AClientAndAServerTalkThroughSmallBuffers) {
    // Both sides are WebSocketTransports; a 64 KiB pipe makes writes partial, so frames are cut
    // mid-header and mid-payload and resumed.
    auto [a, b] = make_memory_pair(loop_, loop_, 64 * 1024);
    WebSocketTransport server(loop_.context(), std::move(a),
                              {std::make_shared<const http::UpgradePolicy>(), false});
    WebSocketTransport client(loop_.context(), std::move(b), {"localhost:1", "/", ""});
    auto write = [](Transport& t, std::string_view& left) {
        asio::const_buffer buffers[2] = {
            {left.data(), left.size() / 2},
            {left.data() + left.size() / 2, left.size() - left.size() / 2}};
        std::error_code ec;
        auto n = t.write_some(buffers, ec);
        left.remove_prefix(n);
        return n;
    };
    auto read = [](Transport& t, std::string& into) {
        std::uint8_t buf[7000];
        std::error_code ec;
        for (;;) {
            auto n = t.read_some(buf, ec);
            if (ec) return ec;
            into.append(reinterpret_cast<char*>(buf), n);
        }
    };
    // The client writes before the upgrade is done (as a handshake message is).
    std::string hello = "noise hello";
    std::string_view left = hello;
    EXPECT_EQ(write(client, left), hello.size());
    std::string got_server, got_client;
    EXPECT_EQ(read(server, got_server), asio::error::would_block);  // takes the request
    EXPECT_EQ(read(client, got_client), asio::error::would_block);  // takes the 101
    EXPECT_EQ(read(server, got_server), asio::error::would_block);
    EXPECT_EQ(got_server, hello);

    std::mt19937 rng(7);
    std::string up(3 << 20, '\0'), down(2 << 20, '\0');
    for (auto& c : up) c = char(rng());
    for (auto& c : down) c = char(rng());
    std::string_view up_left = up, down_left = down;
    got_server.clear();
    for (int round = 0;
         round < 100000 && (!up_left.empty() || !down_left.empty() ||
                            got_server.size() < up.size() || got_client.size() < down.size());
         ++round) {
        if (!up_left.empty()) write(client, up_left);
        if (!down_left.empty()) write(server, down_left);
        EXPECT_EQ(read(server, got_server), asio::error::would_block);
        EXPECT_EQ(read(client, got_client), asio::error::would_block);
    }
    EXPECT_TRUE(got_server == up);
    EXPECT_TRUE(got_client == down);
    EXPECT_EQ(client.failure().detail, "");
    EXPECT_EQ(server.failure().detail, "");
}

// Records readiness reports.
struct Readiness : TransportUser {
    int readable = 0;
    void on_readable(std::error_code) override { ++readable; }
    void on_writable(std::error_code) override {}
};

TEST_F(WebSocketPair, ACloseThatCameWithDataIsReadyWithoutTheSocket) {
    serve();
    upgrade();
    send_raw(frame(0x2, "last words") + frame(0x8, ""));
    std::uint8_t buf[100];
    std::error_code ec;
    EXPECT_EQ(ws->read_some(buf, ec), 10u);  // a short read: the caller now waits
    auto user = std::make_shared<Readiness>();
    loop_.run_here([&] { ws->wait_readable(user); });
    EXPECT_EQ(user->readable, 1);  // the socket has nothing more to say, the transport has
    ws->read_some(buf, ec);
    EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(WebSocketPair, AFloodOfEmptyFramesIsTakenInTurns) {
    serve();
    upgrade();
    std::string flood;
    for (int i = 0; i < 1000; ++i) flood += frame(0xA, "");  // pongs nobody asked for
    send_raw(flood + frame(0x2, "after"));
    std::uint8_t buf[100];
    std::error_code ec;
    int reads = 0;
    std::string got;
    auto user = std::make_shared<Readiness>();
    while (got.empty() && reads < 100) {
        auto n = ws->read_some(buf, ec);
        ++reads;
        got.append(reinterpret_cast<char*>(buf), n);
        if (n == 0) {
            ASSERT_EQ(ec, asio::error::would_block);
            // Frames are left over: ready again at once, without the socket.
            int before = user->readable;
            loop_.run_here([&] { ws->wait_readable(user); });
            ASSERT_EQ(user->readable, before + 1);
        }
    }
    EXPECT_EQ(got, "after");
    EXPECT_GE(reads, 4);  // 1000 frames, at most 256 a read
}

TEST_F(WebSocketPair, PongsDoNotPileUpWhileThePeerDoesNotRead) {
    serve({}, false, 4096);  // a small socket buffer toward the peer
    upgrade();
    std::string ping = frame(0x9, std::string(100, 'p'));
    int sent = 0;
    for (int round = 0; round < 400; ++round) {
        std::string batch;
        for (int i = 0; i < 5; ++i) batch += ping;
        asio::const_buffer b(batch.data(), batch.size());
        std::error_code ec;
        if (raw->write_some({&b, 1}, ec) != batch.size()) break;  // (whole pings only)
        sent += 5;
        std::error_code rec;
        read_ws(rec);
    }
    EXPECT_GE(sent, 1000);
    // The peer reads at last, and whatever was owed follows: what fit and the latest pong,
    // not one pong per ping.
    int pongs = 0;
    std::string bytes;
    for (int round = 0; round < 10; ++round) {
        bytes += read_raw();
        while (auto f = take_frame(bytes)) {
            EXPECT_EQ(f->opcode, 0xA);
            ++pongs;
        }
        std::error_code rec;
        read_ws(rec);  // each read first writes what is owed
    }
    EXPECT_GT(pongs, 0);
    EXPECT_LT(pongs, 60);
}

TEST_F(WebSocketPair, APongWaitsForTheFrameUnderWay) {
    serve({}, false, 4096);
    upgrade();
    std::string big(10000, 'b');
    std::string_view left = big;
    asio::const_buffer b(left.data(), left.size());
    std::error_code ec;
    left.remove_prefix(ws->write_some({&b, 1}, ec));
    ASSERT_FALSE(left.empty());  // half sent
    send_raw(frame(0x9, "now"));
    EXPECT_EQ(read_ws(), "");
    std::string bytes;
    while (!left.empty()) {
        bytes += read_raw();
        asio::const_buffer rest(left.data(), left.size());
        left.remove_prefix(ws->write_some({&rest, 1}, ec));
    }
    bytes += read_raw();
    auto data = take_frame(bytes);
    ASSERT_TRUE(data);
    EXPECT_EQ(data->opcode, 0x2);
    EXPECT_EQ(data->payload, big);
    auto pong = take_frame(bytes);
    ASSERT_TRUE(pong);
    EXPECT_EQ(pong->opcode, 0xA);
    EXPECT_EQ(pong->payload, "now");
}

TEST_F(WebSocketPair, AClientRefusesAForgedAnswer) {
    auto [a, b] = make_memory_pair(loop_, loop_);
    WebSocketTransport client(loop_.context(), std::move(b), {"localhost:1", "/", ""});
    raw = std::move(a);
    std::string_view hello = "hello";
    asio::const_buffer buf(hello.data(), hello.size());
    std::error_code ec;
    client.write_some({&buf, 1}, ec);
    EXPECT_NE(read_raw().find("Sec-WebSocket-Key: "), std::string::npos);
    send_raw(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        std::string(rfc_accept) + "\r\n\r\n");
    std::uint8_t out[100];
    client.read_some(out, ec);
    EXPECT_EQ(ec, std::errc::protocol_error);
    EXPECT_NE(client.failure().detail.find("Sec-WebSocket-Accept"), std::string::npos);
    EXPECT_EQ(read_raw(), "");  // the early bytes never went out
}

}  // namespace
}  // namespace hawser::detail
