// Client connect: IPv6, dual stack, Happy Eyeballs, failover, reconnect.
#include "rpc/connector.hpp"

#include <asio/ip/address.hpp>
#include <filesystem>

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {
bool has_ipv6_loopback() {
    int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

std::uint16_t unused_port() {
    Server s(loopback_server(1));
    s.start().value();
    return s.ports()[0];  // closed again when s goes
}
}  // namespace

TEST(Connect, InterleavesAddressFamilies) {
    using asio::ip::make_address;
    using asio::ip::tcp;
    std::vector<tcp::endpoint> in{{make_address("::1"), 1},
                                  {make_address("::2"), 1},
                                  {make_address("::3"), 1},
                                  {make_address("127.0.0.1"), 1},
                                  {make_address("127.0.0.2"), 1}};
    auto out = detail::Connector::interleave(in);
    ASSERT_EQ(out.size(), 5u);
    EXPECT_EQ(out[0].address().to_string(), "::1");
    EXPECT_EQ(out[1].address().to_string(), "127.0.0.1");
    EXPECT_EQ(out[2].address().to_string(), "::2");
    EXPECT_EQ(out[3].address().to_string(), "127.0.0.2");
    EXPECT_EQ(out[4].address().to_string(), "::3");
}

// "Never" as a timeout: every timeout counts at most a year, so none overflows its deadline
// (a connect timeout of Milliseconds::max() used to close each handshake at once).
TEST(Connect, TimeoutsOfForeverAreAYear) {
    auto so = loopback_server(1);
    so.timeouts.idle = so.timeouts.shutdown = std::chrono::milliseconds::max();
    Server s(so);
    s.start().value();
    EXPECT_EQ(s.options().timeouts.idle, std::chrono::hours(24 * 365));
    auto co = client_for(s);
    co.timeouts.connect = co.timeouts.call = std::chrono::milliseconds::max();
    Client c(co);
    ASSERT_TRUE(c.connect());
    EXPECT_EQ(c.connection()
                  .call("hawser.ping", "", use_wait,
                        CallOptions{.timeout = std::chrono::milliseconds::max()})
                  .error()
                  .code,
              Errc::unknown_command);  // answered, not timed out at once
}

TEST(Connect, OverIPv6) {
    if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback here";
    auto so = loopback_server();
    so.listen = {"[::1]:0"};
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    ClientOptions co;
    co.endpoints = {"[::1]:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("echo", "v6", use_wait).value(), "v6");
    EXPECT_EQ(server.find(server.connection_ids().at(0))->remote_address().rfind("[::1]:", 0), 0u);
}

TEST(Connect, DualStackListenerAcceptsIPv4) {
    if (!has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 here";
    auto so = loopback_server();
    so.listen = {"[::]:0"};
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("echo", "v4 on ::", use_wait).value(), "v4 on ::");
}

TEST(Connect, HostNameRacesItsAddresses) {
    // "localhost" may resolve to ::1 and 127.0.0.1; only IPv4 listens, so whichever order the
    // resolver gives, the client ends up on 127.0.0.1.
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    ClientOptions co;
    co.endpoints = {"localhost:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();
    co.happy_eyeballs_delay = 50ms;
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("echo", "he", use_wait).value(), "he");
}

TEST(Connect, FailsOverToTheNextEndpoint) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(unused_port()), "not an address",
                    "127.0.0.1:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();
    Client client(co);
    client.connect().value();
    EXPECT_EQ(client.connection().call("echo", "second", use_wait).value(), "second");
}

TEST(Connect, NoEndpointAnswersIsAClearError) {
    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(unused_port())};
    co.server_public_key = std::string(64, 'a');
    Client client(co);
    auto r = client.connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::not_connected);
    EXPECT_NE(r.error().message.find("refused"), std::string::npos) << r.error().message;
    EXPECT_FALSE(client.connected());
    EXPECT_EQ(client.connection().call("x", "", use_wait).error().code, Errc::disconnected);
}

TEST(Connect, ReconnectsAfterTheServerRestarts) {
    auto so = loopback_server();
    // Both servers read the key the first one generated: the restarted server is the same server.
    so.data_dir = ::testing::TempDir() + "hawser_reconnect_" + std::to_string(::getpid());
    std::filesystem::remove_all(so.data_dir);
    auto first = std::make_unique<Server>(so);
    echo_commands(first->commands());
    first->start().value();
    auto port = first->ports()[0];
    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(port)};
    co.reconnect = {.enabled = true, .min_delay = 20ms, .max_delay = 200ms};
    co.server_public_key = first->public_key();
    Client client(co);
    std::atomic<int> connects{0};
    client.on_connect([&](const Connection&) { ++connects; });
    client.connect().value();
    first->shutdown(1s);
    first.reset();
    ASSERT_TRUE(eventually([&] { return !client.connected(); }));
    so.listen = {"127.0.0.1:" + std::to_string(port)};
    Server second(so);
    echo_commands(second.commands());
    second.start().value();
    ASSERT_TRUE(eventually([&] { return client.connected(); }));
    EXPECT_EQ(connects.load(), 2);
    EXPECT_EQ(client.connection().call("echo", "back", use_wait).value(), "back");
    EXPECT_EQ(second.public_key(), co.server_public_key);
    std::filesystem::remove_all(so.data_dir);
}

// close() then connect(): the first connection's goodbye is still queued when connect() runs;
// connect() must open a new connection, not report the closing one as connected.
TEST(Connect, ConnectRightAfterCloseOpensANewConnection) {
    Server server(loopback_server(1));
    echo_commands(server.commands());
    server.start().value();
    Client client(client_for(server));
    client.connect().value();
    auto first = client.connection().id();
    // More than the socket takes at once: the goodbye waits behind it, so the first connection
    // is still closing (not closed) when connect() runs.
    auto big = random_bytes(6u << 20, 1);
    for (int i = 0; i < 4; ++i) client.connection().call("echo", big, [](Result<std::string>) {});
    client.close();
    ASSERT_TRUE(client.connect());
    EXPECT_TRUE(client.connected());
    EXPECT_NE(client.connection().id(), first);
    EXPECT_EQ(client.connection().call("echo", "again", use_wait).value(), "again");
}

// A close() during the key exchange ends the connect as cancelled, as one before the TCP
// connect completes does (not as a failed handshake).
TEST(Connect, CloseDuringTheHandshakeIsCancelled) {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(listener, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(ntohs(a.sin_port))};
    co.server_public_key = std::string(64, 'a');  // never checked: nobody answers the hello
    Client client(co);
    Slot<Error> outcome;
    client.connect([&](Result<void> r) { outcome.set(r ? Error{} : r.error()); });
    int peer = ::accept(listener, nullptr, nullptr);
    ASSERT_GE(peer, 0);
    char hello[64];
    ASSERT_GT(::recv(peer, hello, sizeof hello, 0), 0);  // the client is in its handshake
    client.close();
    auto e = outcome.get();
    EXPECT_EQ(e.code, Errc::cancelled) << e.message;
    ::close(peer);
    ::close(listener);
}
