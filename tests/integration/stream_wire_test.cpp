// Big streams at the message layer: a raw plaintext peer written from docs/protocol.md alone
// plays the other side, to check that windows hold the sender exactly and that every kind of
// bad stream input gets its typed reset or a protocol_error close, never more.
#include <deque>

#include "support.hpp"
#include "wire/stream_messages.hpp"

using namespace hawser;
using namespace hawser::test;
using detail::Kind;

namespace {

constexpr Kind open_ = Kind(10), accept_ = Kind(11), data_ = Kind(12), window_ = Kind(13),
               end_ = Kind(14), reset_ = Kind(15);

struct Msg {
    Kind kind;
    std::uint64_t id;
    std::string name, payload;
};

std::string be(std::uint64_t v, int bytes) {
    std::string s;
    for (int i = bytes - 1; i >= 0; --i) s.push_back(char(v >> (8 * i)));
    return s;
}

std::uint64_t from_be(std::string_view s) {
    std::uint64_t v = 0;
    for (unsigned char c : s) v = v << 8 | c;
    return v;
}

std::string end_hash(std::string_view content) {
    ContentHasher h;
    h.update(content);
    auto d = h.digest();
    return std::string(d.begin(), d.end());
}

class RawPeer {
  public:
    explicit RawPeer(std::uint16_t port) : socket_(port) { socket_.plaintext_hello(); }

    void send(Kind kind, std::uint64_t id, std::string_view name, std::string_view payload) {
        socket_.send(encode_message(kind, id, name, payload));
    }
    void send_raw(std::string_view bytes) { socket_.send(bytes); }
    // The next message; throws if the connection closes or nothing comes in time.
    Msg next(std::chrono::milliseconds limit = 10s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (queue_.empty()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) throw std::runtime_error("no message in time");
            pollfd p{socket_.fd(), POLLIN, 0};
            if (::poll(&p, 1, int(left.count())) <= 0) continue;
            std::uint8_t buf[65536];
            auto n = ::recv(socket_.fd(), buf, sizeof buf, 0);
            if (n <= 0) throw std::runtime_error("closed");
            decoder_.feed(
                std::span(buf, std::size_t(n)), detail::FrameConfig{},
                [&](std::span<const std::uint8_t> body) {
                    auto m = detail::parse_message(body);
                    if (!m) throw std::runtime_error("bad message from the server");
                    queue_.push_back({m->kind, m->id, std::string(m->name),
                                      std::string(reinterpret_cast<const char*>(m->payload.data()),
                                                  m->payload.size())});
                    return true;
                });
        }
        auto m = queue_.front();
        queue_.pop_front();
        return m;
    }
    Msg next_of(Kind kind) {
        for (;;) {
            auto m = next();
            if (m.kind == kind) return m;
            if (m.kind == Kind::goodbye)
                throw std::runtime_error("goodbye " +
                                         std::to_string(from_be(m.payload.substr(0, 2))));
        }
    }
    // Reads until the goodbye; returns its reason.
    int goodbye() {
        for (;;) {
            auto m = next();
            if (m.kind == Kind::goodbye) return int(from_be(m.payload.substr(0, 2)));
        }
    }
    // Opens stream `id` to handler `name` and returns the window its accept granted.
    std::uint64_t open(std::uint64_t id, std::string_view name, std::uint64_t size = ~0ull) {
        send(open_, id, name, be(size, 8) + std::string(1, '\0'));
        auto accept = next_of(accept_);
        EXPECT_EQ(accept.id, id);
        EXPECT_EQ(from_be(accept.payload.substr(0, 8)), 0u);
        return from_be(accept.payload.substr(8, 4));
    }
    // The code of the next reset.
    int reset_code(std::uint64_t id) {
        auto m = next_of(reset_);
        EXPECT_EQ(m.id, id);
        return int(from_be(m.payload.substr(0, 2)));
    }
    void ping_pong(std::uint64_t id) {
        send(Kind::ping, id, "", "");
        auto m = next_of(Kind::pong);
        EXPECT_EQ(m.id, id);
    }

  private:
    RawSocket socket_;
    detail::FrameDecoder decoder_;
    std::deque<Msg> queue_;
};

// A server whose "hold" handler accepts and keeps every stream without reading.
struct HoldingServer {
    std::mutex mu;
    std::vector<StreamSource> held;
    Server server;
    explicit HoldingServer(ServerOptions o = plaintext_server()) : server(o) {
        server.commands().stream("hold", [this](const Request&, IncomingStream in) {
            std::lock_guard l(mu);
            held.push_back(in.accept().value());
        });
        server.start().value();
    }
    std::uint16_t port() { return server.ports().at(0); }
};

}  // namespace

TEST(StreamWire, TheSenderNeverPassesTheWindowsItWasGranted) {
    auto content = std::string(2u << 20, '\0');
    for (std::size_t i = 0; i < content.size(); ++i) content[i] = char(i * 7 + i / 4096);
    auto outcome = std::make_shared<Slot<Result<void>>>();
    Server server(plaintext_server());
    server.on_connect([&](const Connection& c) {
        c.send_stream("x", content, [outcome](Result<void> r) { outcome->set(r); });
    });
    server.start().value();
    RawPeer peer(server.ports().at(0));
    auto open = peer.next_of(open_);
    EXPECT_EQ(open.id % 2, 0u);  // the server's ids are even
    EXPECT_EQ(open.name, "x");
    EXPECT_EQ(from_be(open.payload.substr(0, 8)), content.size());
    EXPECT_EQ(open.payload[8], 1);  // resumable
    const std::uint64_t window = 65536;
    peer.send(window_, 0, "", be(1u << 20, 4));  // the connection's window
    peer.send(accept_, open.id, "", be(0, 8) + be(window, 4));
    std::string got;
    while (got.size() < window) {
        auto m = peer.next_of(data_);
        ASSERT_EQ(m.id, open.id);
        ASSERT_LE(m.payload.size(), 32u << 10);  // one chunk at most
        got += m.payload;
    }
    EXPECT_EQ(got.size(), window);
    // Two round trips later still nothing more: the window holds it.
    peer.ping_pong(1);
    peer.ping_pong(2);
    // The stream's window reopens, the connection's (1 MiB in all) then holds it.
    peer.send(window_, open.id, "", be(content.size(), 4));
    while (got.size() < (1u << 20)) got += peer.next_of(data_).payload;
    peer.ping_pong(3);
    EXPECT_EQ(got.size(), 1u << 20);
    peer.send(window_, 0, "", be(content.size(), 4));
    Msg m;
    while ((m = peer.next()).kind == data_) got += m.payload;
    ASSERT_EQ(m.kind, end_);
    EXPECT_EQ(got, content);
    EXPECT_EQ(m.payload, end_hash(content));
    EXPECT_FALSE(outcome->has());  // it waits for the verdict
    peer.send(reset_, open.id, "", be(0, 2));
    EXPECT_TRUE(outcome->get());
}

TEST(StreamWire, DataPastTheWindowClosesTheConnection) {
    HoldingServer s;
    RawPeer peer(s.port());
    auto window = peer.open(1, "hold");
    peer.send(data_, 1, "", std::string(window + 1, 'a'));
    EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
}

TEST(StreamWire, DataForAStreamNeverOpenedClosesTheConnection) {
    HoldingServer s;
    RawPeer peer(s.port());
    peer.open(1, "hold");
    peer.send(data_, 7, "", "abc");
    EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
}

TEST(StreamWire, DataAfterTheEndClosesTheConnection) {
    HoldingServer s;
    RawPeer peer(s.port());
    peer.open(1, "hold");
    peer.send(data_, 1, "", "abc");
    peer.send(end_, 1, "", end_hash("abc"));
    peer.send(data_, 1, "", "d");
    EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
}

TEST(StreamWire, ASecondEndClosesTheConnectionWhileTheFirstWaitsForItsHash) {
    // In one write: the end's check waits for the data's hash turn, and counts as received.
    HoldingServer s;
    RawPeer peer(s.port());
    peer.open(1, "hold");
    std::string burst;
    for (const auto& m :
         {encode_message(data_, 1, "", "abc"), encode_message(end_, 1, "", end_hash("abc")),
          encode_message(end_, 1, "", end_hash("abc"))})
        burst.append(reinterpret_cast<const char*>(m.data()), m.size());
    peer.send_raw(burst);
    EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
}

TEST(StreamWire, ACodeZeroResetFromTheSenderClosesTheConnection) {
    // Code 0 is the receiver's verdict after an end: a sender that says it breaks the protocol.
    HoldingServer s;
    RawPeer peer(s.port());
    peer.open(1, "hold");
    peer.send(reset_, 1, "", std::string(2, '\0'));
    EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
}

TEST(StreamWire, IdsThePeerMayNotUseCloseTheConnection) {
    {
        HoldingServer s;
        RawPeer peer(s.port());
        peer.send(open_, 2, "hold", be(~0ull, 8) + std::string(1, '\0'));  // a server's id
        EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
    }
    {
        HoldingServer s;
        RawPeer peer(s.port());
        peer.open(3, "hold");
        peer.send(open_, 1, "hold", be(~0ull, 8) + std::string(1, '\0'));  // ids only grow
        EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
    }
    {
        HoldingServer s;
        RawPeer peer(s.port());
        peer.send(open_, 1, "hold", "short");
        EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
    }
    {
        HoldingServer s;
        RawPeer peer(s.port());
        peer.send(window_, 0, "", be(0x7fffffff, 4));
        peer.send(window_, 0, "", be(0x7fffffff, 4));  // past 2^31-1 in all
        EXPECT_EQ(peer.goodbye(), int(CloseReason::protocol_error));
    }
}

TEST(StreamWire, SizesThatLieAndHashesThatDifferResetTheStreamOnly) {
    HoldingServer s;
    RawPeer peer(s.port());
    peer.open(1, "hold", 10);
    peer.send(data_, 1, "", std::string(11, 'a'));  // more than announced
    EXPECT_EQ(peer.reset_code(1), int(Errc::size_mismatch));
    peer.open(3, "hold", 10);
    peer.send(data_, 3, "", std::string(5, 'a'));
    peer.send(end_, 3, "", end_hash(std::string(5, 'a')));  // fewer than announced
    EXPECT_EQ(peer.reset_code(3), int(Errc::size_mismatch));
    peer.open(5, "hold");
    peer.send(data_, 5, "", "abc");
    peer.send(end_, 5, "", end_hash("abd"));
    EXPECT_EQ(peer.reset_code(5), int(Errc::hash_mismatch));
    // Data still in flight for a stream this side reset is dropped quietly.
    peer.send(data_, 1, "", "late");
    peer.ping_pong(9);
    // The readers learn why.
    std::lock_guard l(s.mu);
    ASSERT_EQ(s.held.size(), 3u);
    EXPECT_EQ(s.held[0].read(use_wait).error().code, Errc::size_mismatch);
    EXPECT_EQ(s.held[1].read(use_wait).error().code, Errc::size_mismatch);
    EXPECT_EQ(s.held[2].read(use_wait).error().code, Errc::hash_mismatch);
}

TEST(StreamWire, StreamsOverTheLimitAndUnknownNamesAreRefused) {
    auto o = plaintext_server();
    o.limits.max_incoming_streams = 2;
    HoldingServer s(o);
    RawPeer peer(s.port());
    peer.send(open_, 1, "nobody", be(~0ull, 8) + std::string(1, '\0'));
    EXPECT_EQ(peer.reset_code(1), int(Errc::unknown_command));
    peer.send(open_, 3, "hold", be(~0ull, 8) + std::string(1, '\0') + "\xc1");  // bad DataFrame
    EXPECT_EQ(peer.reset_code(3), int(Errc::bad_payload));
    peer.open(5, "hold");  // refusals did not count
    peer.open(7, "hold");
    peer.send(open_, 9, "hold", be(~0ull, 8) + std::string(1, '\0'));
    EXPECT_EQ(peer.reset_code(9), int(Errc::limit_exceeded));
}

TEST(StreamWire, TinyMessagesAreJoinedWhileTheyWait) {
    // A peer that sends one byte per message must not make the receiver keep a buffer per
    // message: what waits for the reader is joined.
    HoldingServer s;
    RawPeer peer(s.port());
    peer.open(1, "hold");
    std::string burst;
    auto one = encode_message(data_, 1, "", "a");
    for (int i = 0; i < 5000; ++i)
        burst.append(reinterpret_cast<const char*>(one.data()), one.size());
    peer.send_raw(burst);
    peer.ping_pong(3);
    std::lock_guard l(s.mu);
    ASSERT_EQ(s.held.size(), 1u);
    auto chunk = s.held[0].read(use_wait);
    ASSERT_TRUE(chunk);
    EXPECT_EQ(chunk->size(), 5000u);
}
