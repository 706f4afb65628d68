// Bad bytes close one connection with a reason; the server keeps serving everyone else.
#include <sys/resource.h>

#include <map>
#include <random>

#include "support.hpp"
#include "wire/compression.hpp"

using namespace hawser;
using namespace hawser::test;
using detail::Kind;

namespace {

// A plaintext server, so raw sockets can speak the message layer after the plaintext hello;
// the secure transport's own bad input is in secure_test.cpp.
struct Target {
    Server server{plaintext_server()};
    std::unique_ptr<Client> good;
    Target() {
        echo_commands(server.commands());
        server.start().value();
        auto co = client_for(server);
        co.transport.insecure_plaintext = true;
        good = std::make_unique<Client>(co);
        good->connect().value();
    }
    void expect_still_serving() {
        EXPECT_EQ(good->connection().call("echo", "fine", use_wait).value(), "fine");
    }
    // Sends bytes on a fresh raw connection and returns the reason in the server's goodbye.
    int send_and_read_reason(const std::vector<std::uint8_t>& bytes, bool hello = true) {
        RawSocket s(server.ports()[0]);
        if (hello) s.plaintext_hello();
        s.send(bytes);
        return goodbye_reason(s.read_until_closed());
    }
};

}  // namespace

TEST(BadInput, WrongMark) {
    Target t;
    std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(t.send_and_read_reason({http.begin(), http.end()}, false),
              int(CloseReason::bad_mark));
    EXPECT_EQ(t.server.stats().closed(CloseReason::bad_mark), 1u);
    t.expect_still_serving();
}

TEST(BadInput, FrameOverTheLimit) {
    Target t;
    std::vector<std::uint8_t> head(8);
    ProtocolMark m;
    std::copy(m.head.begin(), m.head.end(), head.begin());
    detail::put_u32(head.data() + 4, 0xffffffffu);
    EXPECT_EQ(t.send_and_read_reason(head, false), int(CloseReason::frame_too_large));
    t.expect_still_serving();
}

TEST(BadInput, MalformedMessageHeader) {
    Target t;
    std::vector<std::uint8_t> frame;
    detail::append_frame(frame, ProtocolMark{}, 3,
                         [](std::uint8_t* p) { p[0] = 99, p[1] = 0, p[2] = 0; });
    EXPECT_EQ(t.send_and_read_reason(frame), int(CloseReason::malformed));
    auto flagged = encode_message(Kind::call_console, 1, "echo", "x");
    flagged[9] = 0x01;  // compression flag: not supported on a plaintext link yet
    EXPECT_EQ(t.send_and_read_reason(flagged), int(CloseReason::malformed));
    auto error_without_code = encode_message(Kind::error, 1, "", "");
    EXPECT_EQ(t.send_and_read_reason(error_without_code), int(CloseReason::malformed));
    EXPECT_EQ(t.server.stats().closed(CloseReason::malformed), 3u);
    // Replies to calls the server never made: id 0, and an id it has not used.
    for (auto kind : {Kind::reply, Kind::error})
        for (std::uint64_t id : {0, 1})
            EXPECT_EQ(
                t.send_and_read_reason(encode_message(kind, id, "", std::string("\0\x05", 2))),
                int(CloseReason::protocol_error))
                << int(kind) << " " << id;
    t.expect_still_serving();
}

TEST(BadInput, UndecodableDataFrameFailsTheCallNotTheConnection) {
    Target t;
    RawSocket s(t.server.ports()[0]);
    s.plaintext_hello();
    s.send(encode_message(Kind::call_dataframe, 7, "echo.frame", std::string("\xc1", 1)));
    s.send(encode_message(Kind::call_console, 8, "echo", "ok"));
    ::shutdown(s.fd(), SHUT_WR);
    auto bytes = s.read_until_closed();
    // Both replies came back: an error for 7, the echo for 8.
    detail::FrameDecoder d;
    std::vector<std::pair<Kind, std::uint64_t>> got;
    d.feed(std::span(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()),
           detail::FrameConfig{}, [&](std::span<const std::uint8_t> body) {
               auto m = detail::parse_message(body);
               if (m) got.emplace_back(m->kind, m->id);
               return true;
           });
    ASSERT_GE(got.size(), 2u);
    EXPECT_EQ(got[0], std::pair(Kind::error, std::uint64_t(7)));
    EXPECT_EQ(got[1], std::pair(Kind::reply, std::uint64_t(8)));
}

TEST(BadInput, RandomTruncatedAndFlippedBytes) {
    Target t;
    std::mt19937 rng(1234);
    auto good_frame = encode_message(Kind::call_console, 1, "echo", "payload");
    for (int round = 0; round < 60; ++round) {
        std::vector<std::uint8_t> bytes;
        switch (round % 3) {
            case 0:  // random bytes
                bytes.resize(1 + rng() % 256);
                for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
                break;
            case 1:  // truncated frame, then hang up
                bytes.assign(good_frame.begin(), good_frame.begin() + rng() % good_frame.size());
                break;
            case 2:  // one flipped bit
                bytes = good_frame;
                bytes[rng() % bytes.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                break;
        }
        RawSocket s(t.server.ports()[0]);
        if (round % 2) s.plaintext_hello();  // half at the handshake, half at the message layer
        s.send(bytes);
        ::shutdown(s.fd(), SHUT_WR);
        s.read_until_closed();
    }
    t.expect_still_serving();
    EXPECT_TRUE(eventually([&] { return t.server.connection_count() == 1; }));
}

namespace {

long peak_rss_kib() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

// A message whose payload is compressed with zstd, as a peer would send it.
std::vector<std::uint8_t> compressed_message(Kind kind, std::uint64_t id, std::string_view name,
                                             std::string_view payload) {
    auto packed = detail::compress(
        Compression::zstd, {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()});
    if (!packed) throw std::runtime_error("incompressible");
    auto out = encode_message(kind, id, name, *packed);
    out[9] = static_cast<std::uint8_t>(Compression::zstd);  // the flags byte after mark and length
    return out;
}

// Reads replies from a raw socket until those with the given ids came; kind, code and text each.
std::map<std::uint64_t, std::pair<Kind, std::string>> read_replies(RawSocket& s,
                                                                   std::size_t count) {
    detail::FrameDecoder d;
    std::map<std::uint64_t, std::pair<Kind, std::string>> got;
    char buf[65536];
    while (got.size() < count) {
        pollfd p{s.fd(), POLLIN, 0};
        if (::poll(&p, 1, 30000) <= 0) throw std::runtime_error("no reply");
        auto n = ::recv(s.fd(), buf, sizeof buf, 0);
        if (n <= 0) throw std::runtime_error("closed before the replies came");
        d.feed(std::span(reinterpret_cast<std::uint8_t*>(buf), std::size_t(n)),
               detail::FrameConfig{}, [&](std::span<const std::uint8_t> body) {
                   auto m = detail::parse_message(body);
                   if (m && m->kind == Kind::error) {
                       auto coded = detail::parse_coded(m->payload);
                       got[m->id] = {m->kind, std::to_string(coded->first) + " " +
                                                  std::string(coded->second)};
                   } else if (m) {
                       got[m->id] = {m->kind, std::string(m->payload.begin(), m->payload.end())};
                   }
                   return true;
               });
    }
    return got;
}

}  // namespace

// A few KB of zstd that inflate to 16 MiB of nils nested in arrays: msgpack-cxx alone would
// build ~400 MB of objects for it on the IO thread. The call fails with a clear error, the
// server's memory barely moves, and the connection goes on.
TEST(BadInput, CompressedDataFrameBombFailsTheCallCheaply) {
    Target t;
    std::string bomb = {'\xdc', char(64000 >> 8), char(64000 & 0xff)};
    for (int i = 0; i < 64000; ++i) {
        bomb += {'\xdc', '\x00', '\xff'};
        bomb.append(255, '\xc0');
    }
    auto message = compressed_message(Kind::call_dataframe, 7, "echo.frame", bomb);
    ASSERT_LT(message.size(), 100u << 10);
    std::string().swap(bomb);
    RawSocket s(t.server.ports()[0]);
    s.plaintext_hello();
    auto before = peak_rss_kib();
    s.send(message);
    s.send(encode_message(Kind::call_console, 8, "echo", "ok"));
    auto replies = read_replies(s, 2);
    auto grown_kib = peak_rss_kib() - before;
    EXPECT_EQ(replies[7].first, Kind::error);
    EXPECT_EQ(replies[7].second.rfind(std::to_string(int(Errc::limit_exceeded)) + " ", 0), 0u)
        << replies[7].second;
    EXPECT_NE(replies[7].second.find("values"), std::string::npos) << replies[7].second;
    EXPECT_EQ(replies[8], std::pair(Kind::reply, std::string("ok")));
    EXPECT_LT(grown_kib, 128 * 1024) << "the server grew by " << grown_kib << " KiB";
    t.expect_still_serving();
}

TEST(BadInput, DecompressionHasItsOwnBudget) {
    auto so = plaintext_server();
    so.limits.max_decompressed_bytes = 1u << 20;
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    RawSocket s(server.ports()[0]);
    s.plaintext_hello();
    s.send(compressed_message(Kind::call_console, 1, "echo", std::string(2u << 20, 'a')));
    EXPECT_EQ(goodbye_reason(s.read_until_closed()), int(CloseReason::too_large));
}

// Before the handshake everything is in clear: a refusal names the reason and an error id, not
// what the server requires.
TEST(BadInput, HandshakeRefusalsDoNotDescribeTheServer) {
    auto refuse = [](ServerOptions so) {
        Server server(so);
        server.start().value();
        RawSocket s(server.ports()[0]);
        std::vector<std::uint8_t> hello;  // a plaintext-mode hello to an encrypted server
        detail::append_frame(hello, ProtocolMark{}, 2,
                             [](std::uint8_t* p) { p[0] = detail::wire_version, p[1] = 0; });
        s.send(hello);
        return s.read_until_closed();
    };
    auto bytes = refuse(loopback_server());
    EXPECT_EQ(goodbye_reason(bytes), int(CloseReason::handshake_failed));
    EXPECT_EQ(bytes.find("encryption"), std::string::npos) << bytes;
    EXPECT_EQ(bytes.find("plaintext"), std::string::npos) << bytes;
    EXPECT_NE(bytes.find("error id "), std::string::npos) << bytes;
    auto dev = loopback_server();
    dev.send_error_details = true;
    EXPECT_NE(refuse(dev).find("requires encryption"), std::string::npos);
}
