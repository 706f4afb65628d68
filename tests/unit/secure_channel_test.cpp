#include "wire/secure_channel.hpp"

#include <gtest/gtest.h>

#include <random>

#include "rpc/admission.hpp"
#include "wire/compression.hpp"
#include "wire/frame.hpp"

using namespace hawser;
using namespace hawser::detail;
using namespace std::chrono_literals;

namespace {

// Runs an NK handshake in memory and returns both ends' transports.
std::pair<std::unique_ptr<SecureTransport>, std::unique_ptr<SecureTransport>> connected_pair(
    SecureTransport::Clock::time_point now) {
    auto server_keys = noise::KeyPair::generate();
    ClientHandshake client({ProtocolMark{}, false, server_keys.public_key});
    ServerHandshake server(ProtocolMark{}, false, server_keys);
    auto step = server.on_frame(client.hello());
    EXPECT_TRUE(step && step->done);
    auto back = client.on_frame(step->reply);
    EXPECT_TRUE(back && back->done && back->reply.empty());
    return {client.transport(now), server.transport(now)};
}

// Splits framed bytes into frame bodies.
std::vector<std::vector<std::uint8_t>> bodies(const std::vector<std::uint8_t>& frames) {
    std::vector<std::vector<std::uint8_t>> out;
    FrameDecoder d;
    d.feed(frames, FrameConfig{ProtocolMark{}, 1u << 20}, [&](std::span<const std::uint8_t> b) {
        out.emplace_back(b.begin(), b.end());
        return true;
    });
    return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    std::mt19937 rng(42);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

}  // namespace

TEST(SecureTransport, SealsAndOpensSmallAndChunkedMessages) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    TransportOptions policy;
    for (std::size_t size :
         {0ul, 1ul, 100ul, SecureTransport::max_chunk, SecureTransport::max_chunk + 1, 300000ul}) {
        auto msg = random_bytes(size);
        std::vector<std::uint8_t> frames;
        EXPECT_TRUE(a->seal(msg, frames, ProtocolMark{}, policy, now));
        auto parts = bodies(frames);
        EXPECT_EQ(
            parts.size(),
            size == 0 ? 1 : (size + SecureTransport::max_chunk - 1) / SecureTransport::max_chunk)
            << size;
        std::vector<std::uint8_t> scratch;
        std::span<const std::uint8_t> got;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            auto r = b->open(parts[i], 1u << 20, scratch, got);
            EXPECT_EQ(r, i + 1 == parts.size() ? SecureTransport::Opened::message
                                               : SecureTransport::Opened::need_more);
        }
        EXPECT_TRUE(std::equal(got.begin(), got.end(), msg.begin(), msg.end())) << size;
    }
}

TEST(SecureTransport, FlippedReplayedAndOversizedFramesAreRejected) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    TransportOptions policy;
    std::vector<std::uint8_t> f1, f2;
    EXPECT_TRUE(a->seal(std::vector<std::uint8_t>{'o', 'n', 'e'}, f1, ProtocolMark{}, policy, now));
    EXPECT_TRUE(a->seal(std::vector<std::uint8_t>{'t', 'w', 'o'}, f2, ProtocolMark{}, policy, now));
    auto one = bodies(f1).at(0), two = bodies(f2).at(0);
    std::vector<std::uint8_t> scratch;
    std::span<const std::uint8_t> got;
    auto flipped = one;
    flipped[3] ^= 0x10;
    EXPECT_EQ(b->open(flipped, 1024, scratch, got), SecureTransport::Opened::bad_mac);
    EXPECT_EQ(b->open(two, 1024, scratch, got), SecureTransport::Opened::bad_mac);  // out of order
    EXPECT_EQ(b->open(one, 1024, scratch, got), SecureTransport::Opened::message);
    EXPECT_EQ(b->open(one, 1024, scratch, got), SecureTransport::Opened::bad_mac);  // replayed
    EXPECT_EQ(b->open(two, 1024, scratch, got), SecureTransport::Opened::message);

    std::vector<std::uint8_t> big;
    EXPECT_TRUE(a->seal(random_bytes(200000), big, ProtocolMark{}, policy, now));
    SecureTransport::Opened last{};
    for (auto& part : bodies(big)) {
        last = b->open(part, 100000, scratch, got);
        if (last != SecureTransport::Opened::need_more) break;  // the connection closes here
    }
    EXPECT_EQ(last, SecureTransport::Opened::too_large);
}

TEST(SecureTransport, RekeysByCountAndByTimeAndOldKeysStopWorking) {
    auto start = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(start);
    TransportOptions policy;
    policy.rekey_messages = 3;
    policy.rekey_interval = 10min;
    std::vector<std::uint8_t> scratch;
    std::span<const std::uint8_t> got;
    auto now = start;
    for (int i = 0; i < 10; ++i) {
        std::vector<std::uint8_t> frames;
        EXPECT_TRUE(a->seal(std::vector<std::uint8_t>{std::uint8_t(i)}, frames, ProtocolMark{},
                            policy, now));
        SecureTransport::Opened r{};
        for (auto& part : bodies(frames)) r = b->open(part, 1024, scratch, got);
        ASSERT_EQ(r, SecureTransport::Opened::message);
        ASSERT_EQ(got[0], i);
    }
    EXPECT_EQ(a->rekeys(), 3u);  // before messages 4, 7 and 10
    EXPECT_EQ(b->rekeys(), 3u);

    // Time: the next message after the interval goes under a new key.
    policy.rekey_messages = 1u << 20;
    now += 11min;
    std::vector<std::uint8_t> frames;
    EXPECT_TRUE(a->seal(std::vector<std::uint8_t>{'t'}, frames, ProtocolMark{}, policy, now));
    EXPECT_EQ(a->rekeys(), 4u);
    auto parts = bodies(frames);
    ASSERT_EQ(parts.size(), 2u);  // the rekey marker, then the message
    // A receiver that skipped the marker still holds the old key and cannot read the message.
    auto [c, d] = connected_pair(start);
    (void)c;
    EXPECT_EQ(b->open(parts[1], 1024, scratch, got), SecureTransport::Opened::bad_mac);
}

// A transport whose sending nonce is `send_nonce` (both ends share the key, so the receiver
// starts there too).
std::pair<std::unique_ptr<SecureTransport>, std::unique_ptr<SecureTransport>> pair_at_nonce(
    std::uint64_t send_nonce, SecureTransport::Clock::time_point now) {
    noise::Key k{};
    k[0] = 7;
    noise::CipherState send, recv;
    send.initialize_key(k);
    recv.initialize_key(k);
    send.set_nonce(send_nonce);
    recv.set_nonce(send_nonce);
    return {std::make_unique<SecureTransport>(send, noise::CipherState{}, now),
            std::make_unique<SecureTransport>(noise::CipherState{}, recv, now)};
}

TEST(SecureTransport, AnExhaustedNonceFailsTheSealAndWritesNothing) {
    auto now = SecureTransport::Clock::now();
    TransportOptions policy;
    // Nonce 2^64-2 is the last one a message may use; 2^64-1 is reserved (Noise spec 5.1).
    auto [a, b] = pair_at_nonce(~std::uint64_t{0} - 1, now);
    std::vector<std::uint8_t> out{0xAA};
    EXPECT_TRUE(a->seal(std::vector<std::uint8_t>{'o', 'k'}, out, ProtocolMark{}, policy, now));
    auto parts = bodies(std::vector<std::uint8_t>(out.begin() + 1, out.end()));
    ASSERT_EQ(parts.size(), 1u);
    std::vector<std::uint8_t> scratch;
    std::span<const std::uint8_t> got;
    EXPECT_EQ(b->open(parts[0], 1024, scratch, got), SecureTransport::Opened::message);
    auto before = out;
    EXPECT_FALSE(a->seal(std::vector<std::uint8_t>{'n', 'o'}, out, ProtocolMark{}, policy, now));
    EXPECT_EQ(out, before);  // nothing appended: no plaintext can leave
    // A message of several chunks that runs out half-way leaves nothing behind either.
    auto [c, d] = pair_at_nonce(~std::uint64_t{0} - 2, now);
    (void)d;
    std::vector<std::uint8_t> out2{0xBB};
    EXPECT_FALSE(
        c->seal(random_bytes(3 * SecureTransport::max_chunk), out2, ProtocolMark{}, policy, now));
    EXPECT_EQ(out2, std::vector<std::uint8_t>{0xBB});
}

TEST(SecureTransport, TheRekeyCounterIsAsWideAsItsOption) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    TransportOptions policy;
    policy.rekey_interval = 0ms;
    policy.rekey_messages = (std::uint64_t{1} << 32) + 1;
    std::vector<std::uint8_t> frames;
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(a->seal(std::vector<std::uint8_t>{1}, frames, ProtocolMark{}, policy, now));
    EXPECT_EQ(a->rekeys(), 0u);  // a truncated option (1) would rekey before message 2
    // Past 2^32 messages a 32-bit counter wraps to zero and never reaches the option.
    policy.rekey_messages = (std::uint64_t{1} << 32) + 2;
    a->count_sent_for_test((std::uint64_t{1} << 32) - 1 - 3);  // 2^32 - 1 sent so far
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(a->seal(std::vector<std::uint8_t>{1}, frames, ProtocolMark{}, policy, now));
    EXPECT_EQ(a->rekeys(), 0u);  // 2^32 + 2 sent
    ASSERT_TRUE(a->seal(std::vector<std::uint8_t>{1}, frames, ProtocolMark{}, policy, now));
    EXPECT_EQ(a->rekeys(), 1u);
    // The peer follows every message, the rekey marker included.
    std::vector<std::uint8_t> scratch;
    std::span<const std::uint8_t> got;
    int messages = 0;
    for (auto& part : bodies(frames))
        if (b->open(part, 1024, scratch, got) == SecureTransport::Opened::message) ++messages;
    EXPECT_EQ(messages, 7);
    EXPECT_EQ(b->rekeys(), 1u);
}

TEST(Handshake, PolicyMismatchesFailWithAReason) {
    auto keys = noise::KeyPair::generate();
    ServerHandshake secure_server(ProtocolMark{}, false, keys);
    ClientHandshake plaintext_client({ProtocolMark{}, true, std::nullopt});
    auto r = secure_server.on_frame(plaintext_client.hello());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("requires encryption"), std::string::npos);

    ServerHandshake plaintext_server(ProtocolMark{}, true, keys);
    ClientHandshake secure_client({ProtocolMark{}, false, keys.public_key});
    EXPECT_FALSE(plaintext_server.on_frame(secure_client.hello()));

    ServerHandshake s2(ProtocolMark{}, false, keys);
    std::vector<std::uint8_t> future_version{2, 1};
    auto v = s2.on_frame(future_version);
    ASSERT_FALSE(v);
    EXPECT_NE(v.error().message.find("version"), std::string::npos);

    ProtocolMark other{{'X', 'X', 'X', 'X'}, {'x', 'x', 'x', 'x'}};
    ServerHandshake s3(other, false, keys);  // marks are in the prologue
    ClientHandshake c3({ProtocolMark{}, false, keys.public_key});
    EXPECT_FALSE(s3.on_frame(c3.hello()));
}

TEST(Handshake, TrustOnFirstUseLearnsTheServerKeyOverXX) {
    auto keys = noise::KeyPair::generate();
    ClientHandshake client({ProtocolMark{}, false, std::nullopt});
    ServerHandshake server(ProtocolMark{}, false, keys);
    auto s1 = server.on_frame(client.hello());
    ASSERT_TRUE(s1 && !s1->done);
    auto c1 = client.on_frame(s1->reply);
    ASSERT_TRUE(c1 && c1->done && !c1->reply.empty());
    auto s2 = server.on_frame(c1->reply);
    ASSERT_TRUE(s2 && s2->done);
    EXPECT_EQ(client.server_key(), keys.public_key);
}

TEST(Handshake, AClientWithItsOwnKeyProvesItOverXXAndChecksThePin) {
    auto server_keys = noise::KeyPair::generate();
    auto client_keys = noise::KeyPair::generate();
    ClientHandshake client({ProtocolMark{}, false, server_keys.public_key, client_keys});
    ServerHandshake server(ProtocolMark{}, false, server_keys);
    auto hello = client.hello();
    ASSERT_GE(hello.size(), 2u);
    EXPECT_EQ(hello[1], std::uint8_t(HelloMode::xx));
    auto s1 = server.on_frame(hello);
    ASSERT_TRUE(s1 && !s1->done);
    EXPECT_EQ(server.client_key(), std::nullopt);  // not before the last message
    auto c1 = client.on_frame(s1->reply);
    ASSERT_TRUE(c1 && c1->done);
    auto s2 = server.on_frame(c1->reply);
    ASSERT_TRUE(s2 && s2->done);
    EXPECT_EQ(server.client_key(), client_keys.public_key);
    EXPECT_EQ(client.server_key(), server_keys.public_key);

    // Another server's key: the client stops before sending its own static key.
    ClientHandshake pinned_elsewhere(
        {ProtocolMark{}, false, noise::KeyPair::generate().public_key, client_keys});
    ServerHandshake real(ProtocolMark{}, false, server_keys);
    auto r1 = real.on_frame(pinned_elsewhere.hello());
    ASSERT_TRUE(r1);
    auto refused = pinned_elsewhere.on_frame(r1->reply);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("pinned"), std::string::npos);

    // NK clients have no key to show.
    ClientHandshake anonymous({ProtocolMark{}, false, server_keys.public_key});
    ServerHandshake s3(ProtocolMark{}, false, server_keys);
    auto a1 = s3.on_frame(anonymous.hello());
    ASSERT_TRUE(a1 && a1->done);
    EXPECT_EQ(s3.client_key(), std::nullopt);
}

TEST(Handshake, ClientKeyPolicyAdmits) {
    auto k1 = noise::KeyPair::generate().public_key, k2 = noise::KeyPair::generate().public_key;
    ClientKeyPolicy open;
    EXPECT_TRUE(open.admits(std::nullopt));
    EXPECT_TRUE(open.admits(k1));
    ClientKeyPolicy required{.required = true, .allowed = {}};
    EXPECT_FALSE(required.admits(std::nullopt));
    EXPECT_TRUE(required.admits(k1));
    ClientKeyPolicy listed{.required = true, .allowed = {k1}};
    EXPECT_FALSE(listed.admits(std::nullopt));
    EXPECT_TRUE(listed.admits(k1));
    EXPECT_FALSE(listed.admits(k2));
}

TEST(Compression, RoundTripsAndSkipsWhatDoesNotShrink) {
    std::vector<std::uint8_t> text(10000, 'a');
    for (auto algo : {Compression::zstd, Compression::lz4}) {
        auto packed = compress(algo, text);
        ASSERT_TRUE(packed);
        EXPECT_LT(packed->size(), 200u);
        auto back = decompress(
            algo, {reinterpret_cast<const std::uint8_t*>(packed->data()), packed->size()},
            1u << 20);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->size(), text.size());
        EXPECT_FALSE(compress(algo, random_bytes(1000)));  // random data does not shrink
    }
}

TEST(Compression, BombsAndGarbageAreRejected) {
    std::vector<std::uint8_t> huge(8u << 20, 0);
    auto packed = compress(Compression::zstd, huge);
    ASSERT_TRUE(packed);
    auto span = std::span(reinterpret_cast<const std::uint8_t*>(packed->data()), packed->size());
    auto r = decompress(Compression::zstd, span, 1u << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::limit_exceeded);
    // A size that lies: announces less than the data holds.
    auto lying = *packed;
    lying[1] = 0, lying[2] = 0, lying[3] = 16;
    EXPECT_FALSE(decompress(Compression::zstd,
                            {reinterpret_cast<const std::uint8_t*>(lying.data()), lying.size()},
                            1u << 24));
    std::vector<std::uint8_t> garbage{0, 0, 0, 10, 1, 2, 3};
    EXPECT_FALSE(decompress(Compression::lz4, garbage, 100));
    EXPECT_FALSE(decompress(Compression::zstd, garbage, 100));
}

TEST(Admission, CidrMatching) {
    auto c = Cidr::parse("10.1.0.0/16");
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->contains(Admission::key(asio::ip::make_address("10.1.200.3"))));
    EXPECT_FALSE(c->contains(Admission::key(asio::ip::make_address("10.2.0.1"))));
    auto v6 = Cidr::parse("2001:db8::/32");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->contains(Admission::key(asio::ip::make_address("2001:db8:1::5"))));
    EXPECT_FALSE(v6->contains(Admission::key(asio::ip::make_address("10.1.0.1"))));
    for (auto bad : {"10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129", "10.0.0.0/8x"})
        EXPECT_FALSE(Cidr::parse(bad)) << bad;
}

TEST(Admission, RateAndHandshakeCaps) {
    Admission a;
    AdmissionOptions o;
    o.max_handshakes_per_ip = 2;
    o.connections_per_second_per_ip = 1;
    o.connection_burst_per_ip = 3;
    o.deny = {"192.0.2.0/24"};
    ASSERT_TRUE(a.configure(o));
    auto ip = asio::ip::make_address("127.0.0.9");
    auto t = Admission::Clock::now();
    EXPECT_EQ(a.admit(asio::ip::make_address("192.0.2.7"), t), CloseReason::denied);
    EXPECT_EQ(a.admit(ip, t), CloseReason::none);
    EXPECT_EQ(a.admit(ip, t), CloseReason::none);
    EXPECT_EQ(a.admit(ip, t), CloseReason::too_many_handshakes);
    a.handshake_done(ip);
    EXPECT_EQ(a.admit(ip, t), CloseReason::none);  // third token of the burst
    a.handshake_done(ip);
    EXPECT_EQ(a.admit(ip, t), CloseReason::rate_limited);
    EXPECT_EQ(a.admit(ip, t + std::chrono::seconds(1)), CloseReason::none);  // one token refilled
}

TEST(SecureTransport, PerConnectionStateStaysSmall) {
    // Two cipher states, counters and the rekey clock; the handshake state is freed at completion.
    EXPECT_LE(sizeof(SecureTransport), 160u);
}
