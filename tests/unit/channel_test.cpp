// Channel alone: two channels joined by hand, time passed in. No loop, no transport.
#include "rpc/channel.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hawser::detail {
namespace {

using namespace std::chrono_literals;
using Clock = Channel::Clock;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Records what its channel reports; `accept` messages until it says stop.
struct Recorder final : ChannelUser {
    bool established = false;
    std::vector<std::string> messages;
    std::size_t accept = SIZE_MAX;  // messages delivered before it pauses
    CloseReason error = CloseReason::none;
    bool goodbye = false;

    bool on_established() override { return established = true; }
    bool on_message(std::span<const std::uint8_t> m) override {
        messages.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
        return messages.size() < accept;
    }
    void on_wire_error(CloseReason reason, std::string_view, bool say_goodbye) override {
        error = reason;
        goodbye = say_goodbye;
    }
};

struct End {
    explicit End(const TransportOptions& transport)
        : shared{FrameConfig{ProtocolMark{}, 65535}, transport, 8u << 20} {}
    LoopCounters counters;
    ChannelShared shared;
    Channel channel{shared, counters};
    Recorder user;

    // Everything queued, as the transport would have written it.
    std::vector<std::uint8_t> take_output() {
        std::vector<std::uint8_t> out;
        EXPECT_TRUE(channel.seal());
        channel.write([&](std::span<const asio::const_buffer> buffers) {
            std::size_t n = 0;
            for (auto& b : buffers) {
                auto p = static_cast<const std::uint8_t*>(b.data());
                out.insert(out.end(), p, p + b.size());
                n += b.size();
            }
            return n;
        });
        return out;
    }
    // Bytes as a transport would read them, into a buffer the channel may decrypt in place.
    bool feed(std::span<const std::uint8_t> bytes, Clock::time_point now) {
        read_buffer.assign(bytes.begin(), bytes.end());
        return channel.feed(read_buffer, {user, now});
    }
    std::vector<std::uint8_t> read_buffer;
};

class ChannelPair : public ::testing::Test {
  protected:
    void connect(TransportOptions client_options = {}, TransportOptions server_options = {},
                 bool plaintext = false) {
        client = std::make_unique<End>(client_options);
        server = std::make_unique<End>(server_options);
        server_keys = noise::KeyPair::generate();
        client->channel.start_client({ProtocolMark{}, plaintext, server_keys.public_key, {}}, now);
        server->channel.start_server(plaintext, server_keys, now);
        while (client->channel.handshaking() || server->channel.handshaking()) {
            auto to_server = client->take_output();
            auto to_client = server->take_output();
            ASSERT_FALSE(to_server.empty() && to_client.empty()) << "handshake stalled";
            server->feed(to_server, now);
            client->feed(to_client, now);
        }
    }
    // Sends from one end and feeds the bytes to the other.
    std::vector<std::uint8_t> transmit(End& from, std::string_view message) {
        EXPECT_TRUE(from.channel.send(bytes_of(message), now));
        return from.take_output();
    }

    Clock::time_point now = Clock::now();
    noise::KeyPair server_keys;
    std::unique_ptr<End> client, server;
};

TEST_F(ChannelPair, HandshakeThenMessagesBothWays) {
    connect();
    ASSERT_TRUE(client->user.established);
    ASSERT_TRUE(server->user.established);
    EXPECT_TRUE(client->channel.encrypted());
    ASSERT_NE(client->channel.peer_static_key(), nullptr);
    EXPECT_EQ(*client->channel.peer_static_key(), server_keys.public_key);

    auto wire = transmit(*client, "to the server");
    EXPECT_EQ(std::string(wire.begin(), wire.end()).find("to the server"), std::string::npos)
        << "the message travels encrypted";
    EXPECT_TRUE(server->feed(wire, now));
    EXPECT_TRUE(client->feed(transmit(*server, "to the client"), now));
    EXPECT_EQ(server->user.messages, std::vector<std::string>{"to the server"});
    EXPECT_EQ(client->user.messages, std::vector<std::string>{"to the client"});
}

TEST_F(ChannelPair, MessagesOfOneTurnTravelInOneSeal) {
    connect();
    auto frames_before = client->counters.frames_out.load();
    for (auto m : {"one", "two", "three"}) ASSERT_TRUE(client->channel.send(bytes_of(m), now));
    auto wire = client->take_output();
    EXPECT_EQ(client->counters.frames_out.load() - frames_before, 1u);
    EXPECT_TRUE(server->feed(wire, now));
    EXPECT_EQ(server->user.messages, (std::vector<std::string>{"one", "two", "three"}));
}

TEST_F(ChannelPair, APausedChannelHoldsWhatItReadUntilResumed) {
    connect();
    // Two turns: the first piece holds three messages, the second two.
    std::vector<std::uint8_t> wire;
    for (auto turn : {std::vector<std::string>{"one", "two", "three"},
                      std::vector<std::string>{"four", "five"}}) {
        for (auto& m : turn) ASSERT_TRUE(client->channel.send(bytes_of(m), now));
        auto part = client->take_output();
        wire.insert(wire.end(), part.begin(), part.end());
    }
    server->user.accept = 1;
    EXPECT_FALSE(server->feed(wire, now));
    EXPECT_EQ(server->user.messages.size(), 1u);
    EXPECT_GT(server->channel.held_input(), 0u);
    // The loop reads the next connection's bytes into the same buffer.
    std::fill(server->read_buffer.begin(), server->read_buffer.end(), 0xEE);
    server->user.accept = 2;
    EXPECT_FALSE(server->channel.resume({server->user, now}));
    EXPECT_EQ(server->user.messages, (std::vector<std::string>{"one", "two"}));
    server->user.accept = SIZE_MAX;
    EXPECT_TRUE(server->channel.resume({server->user, now}));
    EXPECT_EQ(server->user.messages,
              (std::vector<std::string>{"one", "two", "three", "four", "five"}));
    EXPECT_EQ(server->channel.held_input(), 0u);
}

TEST_F(ChannelPair, BytesSplitAnywhereStillMakeWholeMessages) {
    connect();
    auto wire = transmit(*client, std::string(3000, 'q'));
    for (auto b : wire) ASSERT_TRUE(server->feed(std::span(&b, 1), now));
    ASSERT_EQ(server->user.messages.size(), 1u);
    EXPECT_EQ(server->user.messages[0], std::string(3000, 'q'));
}

TEST_F(ChannelPair, ATamperedMessageFailsAuthenticationWithoutAGoodbye) {
    connect();
    auto wire = transmit(*client, "secret");
    wire[wire.size() / 2] ^= 0x01;
    EXPECT_FALSE(server->feed(wire, now));
    EXPECT_EQ(server->user.error, CloseReason::bad_mac);
    EXPECT_FALSE(server->user.goodbye);  // nothing from this peer can be trusted now
    EXPECT_TRUE(server->user.messages.empty());
}

TEST_F(ChannelPair, AWrongProtocolMarkIsReported) {
    connect();
    auto wire = transmit(*client, "x");
    wire[0] ^= 0xff;
    EXPECT_FALSE(server->feed(wire, now));
    EXPECT_EQ(server->user.error, CloseReason::bad_mark);
    EXPECT_TRUE(server->user.goodbye);
}

TEST_F(ChannelPair, TheSendingKeyRotatesWhenTheIntervalHasPassed) {
    TransportOptions client_options;
    client_options.rekey_interval = 60s;
    connect(client_options);
    server->feed(transmit(*client, "a"), now);
    now += 59s;
    server->feed(transmit(*client, "b"), now);
    EXPECT_EQ(client->counters.rekeys.load(), 0u);
    now += 2s;
    server->feed(transmit(*client, "c"), now);
    EXPECT_EQ(client->counters.rekeys.load(), 1u);
    EXPECT_EQ(server->counters.rekeys.load(), 1u);
    EXPECT_EQ(server->user.messages, (std::vector<std::string>{"a", "b", "c"}));
    // Messages after the rotation still open.
    now += 1s;
    server->feed(transmit(*client, "d"), now);
    EXPECT_EQ(server->user.messages.back(), "d");
    EXPECT_EQ(client->counters.rekeys.load(), 1u);
}

TEST_F(ChannelPair, AMessageInTwoPartsArrivesWhole) {
    for (bool plaintext : {false, true}) {
        SCOPED_TRACE(plaintext ? "plaintext" : "encrypted");
        connect({}, {}, plaintext);
        ASSERT_EQ(client->channel.encrypted(), !plaintext);
        std::vector<std::string> expected;
        for (std::string_view head : {"", "h", "head:"})
            for (std::string_view body : {"", "b", "the body"}) {
                // (Both empty is a valid record here; the message layer refuses it above.)
                if (head.empty() && body.empty()) continue;
                ASSERT_TRUE(client->channel.send(bytes_of(head), bytes_of(body), now));
                expected.push_back(std::string(head) + std::string(body));
            }
        // Spans pieces when encrypted; a plaintext frame is bounded by the fixture's frame limit.
        std::string long_body(plaintext ? 30000 : 200000, 'x');
        ASSERT_TRUE(client->channel.send(bytes_of("long:"), bytes_of(long_body), now));
        expected.push_back("long:" + long_body);
        EXPECT_TRUE(server->feed(client->take_output(), now));
        EXPECT_EQ(server->user.messages, expected);
    }
}

TEST_F(ChannelPair, SendQueueBytesAreReportedAndReleased) {
    connect();
    EXPECT_TRUE(client->channel.send(bytes_of(std::string(10000, 'z')), now));
    EXPECT_GE(client->counters.send_queue_bytes.load(), 10000u);
    EXPECT_EQ(client->channel.unsent(), client->counters.send_queue_bytes.load());
    client->take_output();
    EXPECT_EQ(client->counters.send_queue_bytes.load(), 0u);
    EXPECT_TRUE(client->channel.nothing_to_send());
}

TEST_F(ChannelPair, ABigMessageIsSealedInSlicesOfTheirOwn) {
    // Whole in the head (a broadcast's one buffer), or a short head and the rest in the body.
    for (std::size_t head_size : {std::size_t{4u << 20}, std::size_t{10}}) {
        SCOPED_TRACE(head_size);
        connect();
        std::vector<std::uint8_t> big(4u << 20);
        for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::uint8_t(i * 131 >> 7);
        int slices = 0;
        double worst = 0;  // memory held per byte unsent, after each slice
        auto head = std::span(big).first(head_size), body = std::span(big).subspan(head_size);
        ASSERT_TRUE(client->channel.send(head, body, now, [&] {
            ++slices;
            EXPECT_GT(client->counters.frames_out.load(), 0u);
            double held = double(client->counters.send_buffer_bytes.load());
            worst = std::max(worst, held / double(client->counters.send_queue_bytes.load()));
            return true;  // the socket is full: nothing is written meanwhile
        }));
        EXPECT_EQ(slices, 15);  // 16 slices of 256 KiB, offered to the transport between them
        // Each slice waits in a buffer of its own: nothing grown by copying.
        EXPECT_LE(worst, 1.05);
        EXPECT_TRUE(server->feed(client->take_output(), now));
        ASSERT_EQ(server->user.messages.size(), 1u);
        EXPECT_EQ(server->user.messages[0], std::string(big.begin(), big.end()));
    }
}

}  // namespace
}  // namespace hawser::detail
