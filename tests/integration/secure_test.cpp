// The secure wire over real sockets: keys, policy, rekeying, compression, chunking, admission,
// and bad bytes after a real handshake.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "support.hpp"
#include "wire/encode.hpp"
#include "wire/secure_channel.hpp"

using namespace hawser;
using namespace hawser::test;
using detail::Kind;

namespace {

std::string random_text(std::size_t n) {
    std::string s(n, '\0');
    std::mt19937 rng(9);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

// A raw socket that completes a real NK handshake, then lets the test send what it likes.
struct HandshakenSocket {
    RawSocket socket;
    std::unique_ptr<detail::SecureTransport> transport;

    HandshakenSocket(const Server& server) : socket(server.ports()[0]) {
        auto key = detail::noise::key_from_hex(server.public_key());
        detail::ClientHandshake hs({ProtocolMark{}, false, key});
        std::vector<std::uint8_t> hello;
        auto body = hs.hello();
        detail::append_frame(hello, ProtocolMark{}, body.size(),
                             [&](std::uint8_t* p) { std::copy(body.begin(), body.end(), p); });
        socket.send(hello);
        // The server's reply: one frame of 8 + 48 + 4 bytes (e, and the empty payload's tag).
        std::vector<std::uint8_t> reply(8 + 48 + 4);
        std::size_t got = 0;
        while (got < reply.size()) {
            auto n = ::recv(socket.fd(), reply.data() + got, reply.size() - got, 0);
            if (n <= 0) throw std::runtime_error("no handshake reply");
            got += static_cast<std::size_t>(n);
        }
        auto step = hs.on_frame(std::span(reply).subspan(8, 48));
        if (!step || !step->done) throw std::runtime_error("handshake failed");
        transport = hs.transport(std::chrono::steady_clock::now());
    }
    std::vector<std::uint8_t> seal(const std::vector<std::uint8_t>& message) {
        std::vector<std::uint8_t> out;
        EXPECT_TRUE(transport->add(message, out, ProtocolMark{}, TransportOptions{},
                                   std::chrono::steady_clock::now()));
        EXPECT_TRUE(transport->seal_open(out, ProtocolMark{}));
        return out;
    }
};

}  // namespace

TEST(Secure, ConnectionsAreEncryptedByDefault) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    EXPECT_EQ(server.public_key().size(), 64u);
    Client client(client_for(server));
    client.connect().value();
    EXPECT_EQ(client.connection().call("echo", "secret", use_wait).value(), "secret");
    EXPECT_EQ(server.stats().handshakes, 1u);
    // A plaintext client is refused: the policy is the server's, not the client's to choose.
    auto co = client_for(server);
    co.transport.insecure_plaintext = true;
    Client downgrade(co);
    auto r = downgrade.connect();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("handshake"), std::string::npos);
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::handshake_failed) == 1; }));
}

TEST(Secure, WrongPinnedKeyIsRefused) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    auto co = client_for(server);
    co.server_public_key = detail::noise::to_hex(detail::noise::KeyPair::generate().public_key);
    Client impostor_check(co);
    EXPECT_FALSE(impostor_check.connect());
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::handshake_failed) == 1; }));
    co.server_public_key = "not hex";
    Client bad_key(co);
    auto r = bad_key.connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    // And the server keeps serving good clients.
    Client good(client_for(server));
    good.connect().value();
    EXPECT_EQ(good.connection().call("echo", "ok", use_wait).value(), "ok");
}

TEST(Secure, NoKeyAndNoTrustOnFirstUseRefusesToConnect) {
    Server server(loopback_server());
    server.start().value();
    auto co = client_for(server);
    co.server_public_key.clear();
    Client client(co);
    auto r = client.connect();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("trust_on_first_use"), std::string::npos);
}

TEST(Secure, TrustOnFirstUsePinsTheKeyForReconnects) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    auto co = client_for(server);
    co.server_public_key.clear();
    co.trust_on_first_use = true;
    co.reconnect = {.enabled = true, .min_delay = 10ms, .max_delay = 50ms};
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("echo", "tofu", use_wait).value(), "tofu");
    // Drop the connection from the server; the client reconnects, now with the pinned key (NK).
    server.find(server.connection_ids().at(0))->close();
    ASSERT_TRUE(eventually([&] { return server.stats().handshakes == 2 && client.connected(); }));
    EXPECT_EQ(client.connection().call("echo", "again", use_wait).value(), "again");
}

TEST(Secure, PlaintextOnlyWhenBothSidesSaySo) {
    Server server(plaintext_server());
    echo_commands(server.commands());
    server.start().value();
    auto co = client_for(server);
    Client encrypted(co);  // wants encryption, server cannot give it
    EXPECT_FALSE(encrypted.connect());
    co.transport.insecure_plaintext = true;
    Client plain(co);
    plain.connect().value();
    EXPECT_EQ(plain.connection().call("echo", "clear", use_wait).value(), "clear");
}

TEST(Secure, TrafficContinuesAcrossManyRekeys) {
    auto so = loopback_server();
    so.transport.rekey_messages = 7;
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    auto co = client_for(server);
    co.transport.rekey_messages = 5;
    Client client(co);
    client.connect().value();
    for (int i = 0; i < 100; ++i)
        ASSERT_EQ(client.connection().call("echo", std::to_string(i), use_wait).value(),
                  std::to_string(i));
    // Each side counts the rekeys it sent and the ones it received.
    EXPECT_GE(client.stats().rekeys, 100u / 5 + 100u / 7 - 2);
    EXPECT_GE(server.stats().rekeys, 100u / 5 + 100u / 7 - 2);
}

TEST(Secure, LargeMessagesAreChunkedAndCompressedBothWays) {
    auto so = loopback_server();
    so.transport.compression = Compression::zstd;
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    auto co = client_for(server);
    co.transport.compression = Compression::lz4;
    Client client(co);
    client.connect().value();
    auto random = random_text(3u << 20);  // incompressible: sent as 49 chunks
    EXPECT_EQ(client.connection().call("echo", random, use_wait).value(), random);
    auto before_in = server.stats().bytes_in;
    std::string text;
    while (text.size() < (2u << 20)) text += "the quick brown fox jumps over the lazy dog ";
    EXPECT_EQ(client.connection().call("echo", text, use_wait).value(), text);
    EXPECT_LT(server.stats().bytes_in - before_in, text.size() / 10);  // lz4 on the way in
}

TEST(Secure, TamperedAndReplayedFramesCloseOnlyThatConnection) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    Client good(client_for(server));
    good.connect().value();

    auto call = test::encode_message(Kind::call_console, 1, "echo", "hi");
    std::vector<std::uint8_t> message(call.begin() + 8, call.end() - 4);  // the body, unframed
    {
        HandshakenSocket s(server);
        auto frames = s.seal(message);
        frames[20] ^= 0x01;  // one bit inside the ciphertext
        s.socket.send(frames);
        s.socket.read_until_closed();
    }
    {
        HandshakenSocket s(server);
        auto frames = s.seal(message);
        s.socket.send(frames);
        s.socket.send(frames);  // the same frame again: its nonce is spent
        s.socket.read_until_closed();
    }
    EXPECT_TRUE(eventually([&] { return server.stats().closed(CloseReason::bad_mac) == 2; }));
    EXPECT_EQ(good.connection().call("echo", "still fine", use_wait).value(), "still fine");
}

TEST(Secure, ZipBombClosesWithTooLarge) {
    auto so = plaintext_server();
    so.limits.max_frame_bytes = 1u << 20;
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    // 64 MiB of zeros compresses to a few KiB; the header announces the true size.
    std::string zeros(64u << 20, '\0');
    // Built with the library's own encoder: a valid message the server must unpack.
    auto body = [&] {
        std::vector<std::uint8_t> m;
        TransportOptions policy;
        policy.compress_threshold = 1;
        detail::encode_message(m, Kind::call_console, 1, "echo",
                               {reinterpret_cast<const std::uint8_t*>(zeros.data()), zeros.size()},
                               policy);
        return m;
    }();
    ASSERT_LT(body.size(), 1u << 20);
    RawSocket s(server.ports()[0]);
    s.plaintext_hello();
    std::vector<std::uint8_t> frame;
    detail::append_frame(frame, ProtocolMark{}, body.size(),
                         [&](std::uint8_t* p) { std::copy(body.begin(), body.end(), p); });
    s.send(frame);
    EXPECT_EQ(goodbye_reason(s.read_until_closed()), int(CloseReason::too_large));
}

TEST(Secure, HandshakeTimeout) {
    auto so = loopback_server();
    so.admission.handshake_timeout = 200ms;
    Server server(so);
    server.start().value();
    RawSocket silent(server.ports()[0]);
    silent.read_until_closed();
    EXPECT_EQ(server.stats().closed(CloseReason::handshake_timeout), 1u);
}

TEST(Secure, AdmissionRefusesWithReasons) {
    auto so = loopback_server();
    so.admission.deny = {"127.0.0.0/8"};
    {
        Server denying(so);
        denying.start().value();
        RawSocket s(denying.ports()[0]);
        s.read_until_closed();
        EXPECT_EQ(denying.stats().closed(CloseReason::denied), 1u);
        EXPECT_EQ(denying.stats().refused, 1u);
    }
    so.admission.deny.clear();
    so.admission.allow = {"10.0.0.0/8"};
    {
        Server allowing_others(so);
        allowing_others.start().value();
        RawSocket s(allowing_others.ports()[0]);
        s.read_until_closed();
        EXPECT_EQ(allowing_others.stats().closed(CloseReason::denied), 1u);
    }
    so.admission.allow.clear();
    so.admission.max_handshakes_per_ip = 2;
    {
        Server capped(so);
        capped.start().value();
        RawSocket a(capped.ports()[0]), b(capped.ports()[0]);  // two handshakes left hanging
        RawSocket c(capped.ports()[0]);
        c.read_until_closed();
        EXPECT_EQ(capped.stats().closed(CloseReason::too_many_handshakes), 1u);
    }
    so.admission.max_handshakes_per_ip = 256;
    so.admission.connections_per_second_per_ip = 0.001;
    so.admission.connection_burst_per_ip = 2;
    {
        Server rate_limited(so);
        echo_commands(rate_limited.commands());
        rate_limited.start().value();
        Client one(client_for(rate_limited)), two(client_for(rate_limited)),
            three(client_for(rate_limited));
        one.connect().value();
        two.connect().value();
        EXPECT_FALSE(three.connect());
        EXPECT_EQ(rate_limited.stats().closed(CloseReason::rate_limited), 1u);
    }
    so.admission = {};
    so.admission.allow = {"not-a-cidr"};
    Server misconfigured(so);
    auto r = misconfigured.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("not-a-cidr"), std::string::npos);
}

TEST(Secure, KeyIsStoredPrivatelyAndReused) {
    auto dir = ::testing::TempDir() + "hawser_keys_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    auto so = loopback_server();
    so.data_dir = dir;
    std::string first_key;
    {
        Server s(so);
        s.start().value();
        first_key = s.public_key();
    }
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/server.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    {
        Server again(so);
        again.start().value();
        EXPECT_EQ(again.public_key(), first_key);
    }
    ::chmod((dir + "/server.key").c_str(), 0644);
    {
        Server exposed(so);
        auto r = exposed.start();
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find("chmod 600"), std::string::npos);
    }
    std::ofstream(dir + "/server.key", std::ios::trunc) << "garbage";
    ::chmod((dir + "/server.key").c_str(), 0600);
    {
        Server broken(so);
        auto r = broken.start();
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find("does not hold a key"), std::string::npos);
    }
    std::filesystem::remove_all(dir);
}

TEST(Secure, GarbageTruncatedAndFlippedHandshakesLeaveOthersServed) {
    auto so = loopback_server();
    so.admission.handshake_timeout = 300ms;
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    auto key = detail::noise::key_from_hex(server.public_key());
    auto hello_frame = [&] {
        detail::ClientHandshake hs({ProtocolMark{}, false, key});
        auto body = hs.hello();
        std::vector<std::uint8_t> f;
        detail::append_frame(f, ProtocolMark{}, body.size(),
                             [&](std::uint8_t* p) { std::copy(body.begin(), body.end(), p); });
        return f;
    };
    std::mt19937 rng(5);
    std::vector<std::unique_ptr<RawSocket>> sockets;  // all at once, so the timeouts overlap
    for (int round = 0; round < 30; ++round) {
        auto frame = hello_frame();
        switch (round % 3) {
            case 0:  // a hello-sized frame of random bytes
                for (std::size_t i = 8; i + 4 < frame.size(); ++i)
                    frame[i] = static_cast<std::uint8_t>(rng());
                break;
            case 1:  // a real hello cut short: the server waits, then times out
                frame.resize(8 + rng() % (frame.size() - 8));
                break;
            case 2:  // one flipped bit in the Noise message
                frame[10 + rng() % 40] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                break;
        }
        sockets.push_back(std::make_unique<RawSocket>(server.ports()[0]));
        sockets.back()->send(frame);
    }
    for (auto& s : sockets) s->read_until_closed();
    auto stats = server.stats();
    EXPECT_EQ(
        stats.closed(CloseReason::handshake_failed) + stats.closed(CloseReason::handshake_timeout),
        30u);
    EXPECT_GE(stats.closed(CloseReason::handshake_timeout), 10u);
    Client good(client_for(server));
    good.connect().value();
    EXPECT_EQ(good.connection().call("echo", "unharmed", use_wait).value(), "unharmed");
}

TEST(Secure, AFailedSealClosesTheConnectionWithoutSending) {
    // Both ends start their nonces at 2^64-2: one piece each way, then the nonce space is
    // exhausted (2^64-1 is reserved) and the next seal must fail.
    detail::testing::first_nonce = ~std::uint64_t{0} - 1;
    struct Reset {
        ~Reset() { detail::testing::first_nonce = 0; }
    } reset;
    Server server(loopback_server());
    server.commands().console("big", [](const Request&, std::string_view) {
        // Two pieces: the first takes the last nonce, the second cannot be sealed.
        std::string reply(100000, '\0');
        std::uint32_t x = 1;
        for (auto& c : reply) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
        return reply;
    });
    server.start().value();
    Slot<CloseReason> client_closed;
    Client client(client_for(server));
    client.on_disconnect([&](const Connection&, CloseReason r) { client_closed.set(r); });
    client.connect().value();
    auto r = client.connection().call("big", "x", use_wait);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::disconnected);
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::internal_error) == 1; }));
    // The client saw the stream end: no unsealed bytes reached it, so nothing failed its MAC.
    EXPECT_EQ(client_closed.get(), CloseReason::peer_closed);
    EXPECT_EQ(client.stats().closed(CloseReason::bad_mac), 0u);
}

// --- client keys: XX proves the client's static key; the server may require and filter it ---

namespace {

std::string hex(const detail::noise::Key& k) {
    return detail::noise::to_hex(k);
}

// Replies with the caller's static key as the handler sees it.
void whoami_command(Server& server) {
    server.commands().console("whoami", [](const Request& req, std::string_view) {
        return req.connection().peer_static_key().value_or("anonymous");
    });
}

// Connects and waits for the connection to close; returns the close reason the client saw.
CloseReason refusal(const ClientOptions& co) {
    Slot<CloseReason> closed;
    Client client(co);
    client.on_disconnect([&](const Connection&, CloseReason r) { closed.set(r); });
    (void)client.connect();  // the handshake may complete; the server's goodbye follows it
    return closed.get();
}

}  // namespace

TEST(ClientKeys, AnAllowedClientGetsInAndHandlersSeeItsKey) {
    auto mine = detail::noise::KeyPair::generate();
    auto so = loopback_server();
    so.allowed_client_keys = {hex(detail::noise::KeyPair::generate().public_key),
                              hex(mine.public_key)};
    Server server(so);
    whoami_command(server);
    server.start().value();
    auto co = client_for(server);
    co.client_private_key = hex(mine.private_key);
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("whoami", "", use_wait).value(), hex(mine.public_key));
    // The client sees the server's key, checked against its pin.
    EXPECT_EQ(client.connection().peer_static_key(), server.public_key());
    EXPECT_EQ(server.stats().closed(CloseReason::key_not_allowed), 0u);
}

TEST(ClientKeys, UnknownAndMissingKeysAreRefusedWithKeyNotAllowed) {
    auto allowed = detail::noise::KeyPair::generate();
    auto so = loopback_server();
    so.allowed_client_keys = {hex(allowed.public_key)};
    Server server(so);
    whoami_command(server);
    server.start().value();
    auto stranger = client_for(server);
    stranger.client_private_key = hex(detail::noise::KeyPair::generate().private_key);
    EXPECT_EQ(refusal(stranger), CloseReason::key_not_allowed);
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::key_not_allowed) == 1; }));
    // A client without a key of its own (NK) has nothing to show.
    EXPECT_EQ(refusal(client_for(server)), CloseReason::key_not_allowed);
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::key_not_allowed) == 2; }));
    EXPECT_EQ(server.stats().handshakes, 0u);  // neither was ever open
    // The allowed key still gets in.
    auto co = client_for(server);
    co.client_private_key = hex(allowed.private_key);
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("whoami", "", use_wait).value(), hex(allowed.public_key));
}

TEST(ClientKeys, RequiredKeyRefusesOnlyAnonymousClients) {
    auto so = loopback_server();
    so.require_client_key = true;
    Server server(so);
    whoami_command(server);
    server.start().value();
    EXPECT_EQ(refusal(client_for(server)), CloseReason::key_not_allowed);
    auto co = client_for(server);
    auto any = detail::noise::KeyPair::generate();
    co.client_private_key = hex(any.private_key);
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("whoami", "", use_wait).value(), hex(any.public_key));
}

TEST(ClientKeys, AnonymousClientsStayAnonymousWhenKeysAreOptional) {
    Server server(loopback_server());
    whoami_command(server);
    server.start().value();
    Client client(client_for(server));
    client.connect().value();
    EXPECT_EQ(client.connection().call("whoami", "", use_wait).value(), "anonymous");
}

TEST(ClientKeys, AKeyFileGivesTheSameIdentityToEveryClientUsingIt) {
    auto dir = ::testing::TempDir() + "hawser_client_key_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    auto so = loopback_server();
    so.require_client_key = true;
    Server server(so);
    whoami_command(server);
    server.start().value();
    auto co = client_for(server);
    co.client_key_file = dir + "/keys/client.key";
    std::string first;
    {
        Client a(co);
        a.connect().value();
        first = a.connection().call("whoami", "", use_wait).value();
    }
    EXPECT_EQ(first.size(), 64u) << first;
    struct stat st {};
    ASSERT_EQ(::stat(co.client_key_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir + "/keys").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    {
        Client b(co);
        b.connect().value();
        EXPECT_EQ(b.connection().call("whoami", "", use_wait).value(), first);
    }
    std::filesystem::remove_all(dir);
}

TEST(ClientKeys, AClientWithAKeyStillChecksThePinnedServerKey) {
    Server server(loopback_server());
    server.start().value();
    auto co = client_for(server);
    co.client_private_key = hex(detail::noise::KeyPair::generate().private_key);
    co.server_public_key = hex(detail::noise::KeyPair::generate().public_key);
    Client impostor_check(co);
    auto r = impostor_check.connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(server.connection_ids().size(), 0u);
}

TEST(ClientKeys, BadKeySettingsAreClearErrors) {
    auto so = loopback_server();
    so.allowed_client_keys = {hex(detail::noise::KeyPair::generate().public_key), "abc123"};
    Server bad_list(so);
    auto r = bad_list.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("allowed_client_keys[1]"), std::string::npos)
        << r.error().message;
    auto plain = plaintext_server();
    plain.require_client_key = true;
    Server contradiction(plain);
    ASSERT_FALSE(contradiction.start());

    Server server(loopback_server());
    server.start().value();
    auto co = client_for(server);
    co.client_private_key = "not hex";
    auto c1 = Client(co).connect();
    ASSERT_FALSE(c1);
    EXPECT_EQ(c1.error().code, Errc::invalid_argument);
    EXPECT_NE(c1.error().message.find("client_private_key"), std::string::npos);
    co.client_key_file = "/tmp/unused.key";
    auto c2 = Client(co).connect();
    ASSERT_FALSE(c2);
    EXPECT_NE(c2.error().message.find("not both"), std::string::npos);
}
