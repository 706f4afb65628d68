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
std::vector<std::vector<std::uint8_t>> bodies(std::vector<std::uint8_t> frames) {
    std::vector<std::vector<std::uint8_t>> out;
    FrameDecoder d;
    auto err =
        d.feed(frames, FrameConfig{ProtocolMark{}, 1u << 20}, [&](std::span<std::uint8_t> b) {
            out.emplace_back(b.begin(), b.end());
            return true;
        });
    EXPECT_EQ(err, FrameError::none);
    EXPECT_EQ(d.buffered(), 0u) << "a partial frame was left";
    return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed = 42) {
    std::vector<std::uint8_t> v(n);
    std::mt19937 rng(seed);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

// Adds each message and seals the last piece: what one loop turn of a sender produces.
bool seal(SecureTransport& t, const std::vector<std::vector<std::uint8_t>>& messages,
          std::vector<std::uint8_t>& out, const TransportOptions& policy,
          SecureTransport::Clock::time_point now) {
    for (auto& m : messages)
        if (!t.add(m, out, ProtocolMark{}, policy, now)) return false;
    return t.seal_open(out, ProtocolMark{});
}

struct Received {
    std::vector<std::vector<std::uint8_t>> messages;
    enum Status { ok, bad_mac, malformed, too_large } status = ok;
};

// Opens each frame body in turn and takes every message out of it.
Received open_all(SecureTransport& t, std::vector<std::vector<std::uint8_t>> parts,
                  std::size_t max_message = 1u << 20) {
    Received r;
    for (auto& part : parts) {
        auto opened = t.open(part);
        if (opened == SecureTransport::Opened::bad_mac) return r.status = Received::bad_mac, r;
        if (opened == SecureTransport::Opened::malformed) return r.status = Received::malformed, r;
        std::span<const std::uint8_t> m;
        for (;;) {
            auto next = t.next(max_message, m);
            if (next == SecureTransport::Next::need_more) break;
            if (next == SecureTransport::Next::too_large) return r.status = Received::too_large, r;
            r.messages.emplace_back(m.begin(), m.end());
        }
    }
    return r;
}

}  // namespace

TEST(SecureTransport, SealsAndOpensMessagesOfEverySize) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    TransportOptions policy;
    constexpr auto piece = SecureTransport::max_piece;
    for (std::size_t size : {0ul, 1ul, 100ul, piece - 4, piece - 3, piece, 300000ul}) {
        auto msg = random_bytes(size);
        std::vector<std::uint8_t> frames;
        ASSERT_TRUE(seal(*a, {msg}, frames, policy, now));
        auto parts = bodies(frames);
        // The record is 4 bytes of length and the message, cut into pieces.
        EXPECT_EQ(parts.size(), (size + 4 + piece - 1) / piece) << size;
        auto got = open_all(*b, parts);
        ASSERT_EQ(got.status, Received::ok) << size;
        ASSERT_EQ(got.messages.size(), 1u) << size;
        EXPECT_EQ(got.messages[0], msg) << size;
    }
}

TEST(SecureTransport, MessagesOfOneTurnShareOnePieceAndOpenInPlace) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    std::vector<std::vector<std::uint8_t>> messages;
    for (unsigned i = 0; i < 100; ++i) messages.push_back(random_bytes(10 + i, i));
    std::vector<std::uint8_t> frames;
    ASSERT_TRUE(seal(*a, messages, frames, TransportOptions{}, now));
    auto parts = bodies(frames);
    ASSERT_EQ(parts.size(), 1u);  // one seal for the whole burst
    ASSERT_EQ(b->open(parts[0]), SecureTransport::Opened::ok);
    std::span<const std::uint8_t> m;
    for (auto& expected : messages) {
        ASSERT_EQ(b->next(1024, m), SecureTransport::Next::message);
        EXPECT_TRUE(std::equal(m.begin(), m.end(), expected.begin(), expected.end()));
        // Handed out where it was decrypted: no copy.
        EXPECT_GE(m.data(), parts[0].data());
        EXPECT_LE(m.data() + m.size(), parts[0].data() + parts[0].size());
    }
    EXPECT_EQ(b->next(1024, m), SecureTransport::Next::need_more);
}

TEST(SecureTransport, RecordsSpanPiecesInAnyMix) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    std::vector<std::vector<std::uint8_t>> messages;
    for (unsigned i = 0; i < 20; ++i) messages.push_back(random_bytes(i % 3 ? 17 : 40000, i));
    std::vector<std::uint8_t> frames;
    ASSERT_TRUE(seal(*a, messages, frames, TransportOptions{}, now));
    auto parts = bodies(frames);
    std::size_t total = 0;
    for (auto& m : messages) total += 4 + m.size();
    EXPECT_EQ(parts.size(), (total + SecureTransport::max_piece - 1) / SecureTransport::max_piece);
    auto got = open_all(*b, parts);
    ASSERT_EQ(got.status, Received::ok);
    EXPECT_EQ(got.messages, messages);
}

TEST(SecureTransport, HeldMessagesSurviveTheReuseOfTheReadBuffer) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    std::vector<std::vector<std::uint8_t>> messages{random_bytes(30, 1), random_bytes(70000, 2),
                                                    random_bytes(5, 3)};
    std::vector<std::uint8_t> frames;
    ASSERT_TRUE(seal(*a, messages, frames, TransportOptions{}, now));
    auto parts = bodies(frames);
    ASSERT_EQ(parts.size(), 2u);
    ASSERT_EQ(b->open(parts[0]), SecureTransport::Opened::ok);
    std::span<const std::uint8_t> m;
    ASSERT_EQ(b->next(1u << 20, m), SecureTransport::Next::message);
    EXPECT_TRUE(std::equal(m.begin(), m.end(), messages[0].begin(), messages[0].end()));
    // The reader pauses: the rest of the piece is copied out before its buffer is reused.
    b->hold();
    EXPECT_GT(b->held(), 0u);
    std::fill(parts[0].begin(), parts[0].end(), 0xEE);
    EXPECT_EQ(b->next(1u << 20, m), SecureTransport::Next::need_more);  // the big one goes on
    ASSERT_EQ(b->open(parts[1]), SecureTransport::Opened::ok);
    ASSERT_EQ(b->next(1u << 20, m), SecureTransport::Next::message);
    EXPECT_TRUE(std::equal(m.begin(), m.end(), messages[1].begin(), messages[1].end()));
    ASSERT_EQ(b->next(1u << 20, m), SecureTransport::Next::message);
    EXPECT_TRUE(std::equal(m.begin(), m.end(), messages[2].begin(), messages[2].end()));
    EXPECT_EQ(b->next(1u << 20, m), SecureTransport::Next::need_more);
    EXPECT_EQ(b->held(), 0u);
}

TEST(SecureTransport, FlippedReplayedReorderedAndOversizedAreRejected) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    TransportOptions policy;
    std::vector<std::uint8_t> f1, f2;
    ASSERT_TRUE(seal(*a, {{'o', 'n', 'e'}}, f1, policy, now));
    ASSERT_TRUE(seal(*a, {{'t', 'w', 'o'}}, f2, policy, now));
    auto one = bodies(f1).at(0), two = bodies(f2).at(0);
    auto flipped = one;
    flipped[3] ^= 0x10;
    EXPECT_EQ(open_all(*b, {flipped}).status, Received::bad_mac);
    EXPECT_EQ(open_all(*b, {two}).status, Received::bad_mac);  // out of order
    EXPECT_EQ(open_all(*b, {one}).messages.size(), 1u);
    EXPECT_EQ(open_all(*b, {one}).status, Received::bad_mac);  // replayed
    EXPECT_EQ(open_all(*b, {two}).messages.size(), 1u);

    // An oversized record is refused on its first piece, from its length alone.
    std::vector<std::uint8_t> big;
    ASSERT_TRUE(seal(*a, {random_bytes(200000)}, big, policy, now));
    auto parts = bodies(big);
    ASSERT_GT(parts.size(), 1u);
    EXPECT_EQ(open_all(*b, {parts[0]}, 100000).status, Received::too_large);
}

TEST(SecureTransport, UnknownPieceTypesAreMalformed) {
    auto now = SecureTransport::Clock::now();
    noise::Key k{};
    noise::CipherState send, recv;
    send.initialize_key(k);
    recv.initialize_key(k);
    SecureTransport b(noise::CipherState{}, recv, now);
    for (std::uint8_t type : {1, 3, 255}) {
        std::vector<std::uint8_t> piece{type, 0, 0, 0, 0};
        std::vector<std::uint8_t> body(piece.size() + noise::tag_len);
        ASSERT_TRUE(send.encrypt_with_ad({}, piece, body.data()));
        EXPECT_EQ(b.open(body), SecureTransport::Opened::malformed) << int(type);
    }
    // A rekey piece carries no data.
    std::vector<std::uint8_t> rekey{SecureTransport::piece_rekey, 1};
    std::vector<std::uint8_t> body(rekey.size() + noise::tag_len);
    ASSERT_TRUE(send.encrypt_with_ad({}, rekey, body.data()));
    EXPECT_EQ(b.open(body), SecureTransport::Opened::malformed);
}

TEST(SecureTransport, RekeysByCountAndByTimeAndOldKeysStopWorking) {
    auto start = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(start);
    TransportOptions policy;
    policy.rekey_messages = 3;
    policy.rekey_interval = 10min;
    auto now = start;
    for (int i = 0; i < 10; ++i) {
        std::vector<std::uint8_t> frames;
        ASSERT_TRUE(seal(*a, {{std::uint8_t(i)}}, frames, policy, now));
        auto got = open_all(*b, bodies(frames));
        ASSERT_EQ(got.status, Received::ok);
        ASSERT_EQ(got.messages.size(), 1u);
        ASSERT_EQ(got.messages[0][0], i);
    }
    EXPECT_EQ(a->rekeys(), 3u);  // before messages 4, 7 and 10
    EXPECT_EQ(b->rekeys(), 3u);

    // A burst rekeys between its messages when the count is reached.
    std::vector<std::uint8_t> burst;
    ASSERT_TRUE(seal(*a, {{1}, {2}, {3}, {4}}, burst, policy, now));
    EXPECT_EQ(a->rekeys(), 4u);  // inside the burst, before its 3rd message
    auto got = open_all(*b, bodies(burst));
    ASSERT_EQ(got.status, Received::ok);
    EXPECT_EQ(got.messages, (std::vector<std::vector<std::uint8_t>>{{1}, {2}, {3}, {4}}));
    EXPECT_EQ(b->rekeys(), 4u);

    // Time: the next message after the interval goes under a new key.
    policy.rekey_messages = 1u << 20;
    now += 11min;
    std::vector<std::uint8_t> frames;
    ASSERT_TRUE(seal(*a, {{'t'}}, frames, policy, now));
    EXPECT_EQ(a->rekeys(), 5u);
    auto parts = bodies(frames);
    ASSERT_EQ(parts.size(), 2u);  // the rekey piece, then the message
    // A receiver that skipped the rekey piece still holds the old key and cannot read on.
    EXPECT_EQ(open_all(*b, {parts[1]}).status, Received::bad_mac);
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

TEST(SecureTransport, AnExhaustedNonceFailsTheSealAndLeavesNoPlaintext) {
    auto now = SecureTransport::Clock::now();
    TransportOptions policy;
    // Nonce 2^64-2 is the last one a piece may use; 2^64-1 is reserved (Noise spec 5.1).
    auto [a, b] = pair_at_nonce(~std::uint64_t{0} - 1, now);
    std::vector<std::uint8_t> out{0xAA};
    ASSERT_TRUE(seal(*a, {{'o', 'k'}}, out, policy, now));
    auto before = out;
    auto got = open_all(*b, bodies(std::vector<std::uint8_t>(out.begin() + 1, out.end())));
    ASSERT_EQ(got.messages.size(), 1u);
    // The next message joins a piece that cannot be sealed: the piece is taken out again.
    EXPECT_TRUE(a->add(std::vector<std::uint8_t>{'n', 'o'}, out, ProtocolMark{}, policy, now));
    EXPECT_FALSE(a->seal_open(out, ProtocolMark{}));
    EXPECT_EQ(out, before);
    EXPECT_FALSE(a->add(std::vector<std::uint8_t>{'x'}, out, ProtocolMark{}, policy, now));
    EXPECT_EQ(out, before);  // and nothing after it is accepted
    // A message of several pieces that runs out half-way keeps only the pieces it sealed.
    auto [c, d] = pair_at_nonce(~std::uint64_t{0} - 2, now);
    std::vector<std::uint8_t> out2{0xBB};
    auto secret = random_bytes(3 * SecureTransport::max_piece);
    EXPECT_FALSE(c->add(secret, out2, ProtocolMark{}, policy, now));
    // Nonces 2^64-3 and 2^64-2 sealed two whole pieces; the third piece is gone.
    ASSERT_EQ(out2.size(), 1 + 2 * (frame_overhead + noise::max_message));
    auto third = secret.begin() + 2 * SecureTransport::max_piece;
    EXPECT_EQ(std::search(out2.begin(), out2.end(), third, third + 64), out2.end());
    auto rest = open_all(*d, bodies(std::vector<std::uint8_t>(out2.begin() + 1, out2.end())));
    EXPECT_EQ(rest.status, Received::ok);
}

TEST(SecureTransport, TheRekeyCounterIsAsWideAsItsOption) {
    auto now = SecureTransport::Clock::now();
    auto [a, b] = connected_pair(now);
    TransportOptions policy;
    policy.rekey_interval = 0ms;
    policy.rekey_messages = (std::uint64_t{1} << 32) + 1;
    std::vector<std::uint8_t> frames;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(seal(*a, {{1}}, frames, policy, now));
    EXPECT_EQ(a->rekeys(), 0u);  // a truncated option (1) would rekey before message 2
    // Past 2^32 messages a 32-bit counter wraps to zero and never reaches the option.
    policy.rekey_messages = (std::uint64_t{1} << 32) + 2;
    a->count_sent_for_test((std::uint64_t{1} << 32) - 1 - 3);  // 2^32 - 1 sent so far
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(seal(*a, {{1}}, frames, policy, now));
    EXPECT_EQ(a->rekeys(), 0u);  // 2^32 + 2 sent
    ASSERT_TRUE(seal(*a, {{1}}, frames, policy, now));
    EXPECT_EQ(a->rekeys(), 1u);
    // The peer follows every message, the rekey piece included.
    auto got = open_all(*b, bodies(frames));
    EXPECT_EQ(got.status, Received::ok);
    EXPECT_EQ(got.messages.size(), 7u);
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
    std::vector<std::uint8_t> future_version{wire_version + 1, 1};
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
    // Two cipher states, counters, the rekey clock and the record being read; the handshake
    // state is freed at completion, reassembly buffers exist only while a record spans pieces.
    // 168 bytes is the same 176-byte malloc chunk as 160.
    EXPECT_LE(sizeof(SecureTransport), 168u);
}
