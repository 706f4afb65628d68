// Bad bytes close one connection with a reason; the server keeps serving everyone else.
#include <random>

#include "support.hpp"

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
        EXPECT_EQ(good->connection().wait_console("echo", "fine").value(), "fine");
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
    t.expect_still_serving();
}

TEST(BadInput, UndecodableDataFrameFailsTheCallNotTheConnection) {
    Target t;
    RawSocket s(t.server.ports()[0]);
    s.plaintext_hello();
    s.send(encode_message(Kind::call_stream, 7, "echo.frame", std::string("\xc1", 1)));
    s.send(encode_message(Kind::call_console, 8, "echo", "ok"));
    ::shutdown(s.fd(), SHUT_WR);
    auto bytes = s.read_until_closed();
    // Both replies came back: an error for 7, the echo for 8.
    detail::FrameDecoder d;
    std::vector<std::pair<Kind, std::uint64_t>> got;
    d.feed(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
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
