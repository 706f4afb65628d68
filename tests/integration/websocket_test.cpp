// WebSocket over real loopback sockets: a Client that upgrades, on a WebSocket port of its own
// and on the native port (told apart by the first bytes), calls both ways and big payloads,
// and refusals a browser or an attacker would meet.
#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

std::string upgrade_request(std::string_view path, std::string_view origin) {
    return "GET " + std::string(path) +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Origin: " +
           std::string(origin) + "\r\n\r\n";
}

ServerOptions websocket_server() {
    auto so = loopback_server();
    so.websocket.listen = {"127.0.0.1:0"};
    so.websocket.path = "/hawser";
    so.websocket.allowed_origins = {"https://game.example"};
    return so;
}

ClientOptions websocket_client(const Server& s, std::string origin = "https://game.example") {
    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(s.websocket_ports().at(0))};
    co.server_public_key = s.public_key();
    co.websocket = {.enabled = true, .path = "/hawser", .origin = std::move(origin)};
    return co;
}

}  // namespace

TEST(WebSocket, CallsBothWaysThroughAnUpgradeOnTheNativePort) {
    auto so = loopback_server();
    so.websocket.on_native_ports = true;
    Fixture f([](Commands& c) { echo_commands(c); }, [](Commands& c) { echo_commands(c); }, so,
              [](ClientOptions& co) { co.websocket.enabled = true; });
    EXPECT_EQ(f.to_server.call("echo", "over a websocket", use_wait).value(), "over a websocket");
    DataFrame df;
    df << "x" << 42;
    auto back = f.to_server.call("echo.frame", df, use_wait).value();
    EXPECT_EQ(back.get<std::string>(), "x");
    EXPECT_EQ(back.get<int>(), 42);
    EXPECT_EQ(f.to_client.call("echo", "pushed", use_wait).value(), "pushed");
    // Several WebSocket frames each way (a frame carries at most 1 MiB).
    auto big = random_bytes(5 << 20, 11);
    EXPECT_TRUE(f.to_server.call("echo", big, use_wait).value() == big);
    EXPECT_TRUE(f.to_client.call("echo", big, use_wait).value() == big);

    // A native client on the same port is told apart by its first bytes.
    Client native(client_for(*f.server));
    native.connect().value();
    EXPECT_EQ(native.connection().call("echo", "native", use_wait).value(), "native");
    EXPECT_EQ(f.server->stats().closed(CloseReason::websocket_error), 0u);
}

TEST(WebSocket, APortOfItsOwnWithPathAndOrigin) {
    Server server(websocket_server());
    echo_commands(server.commands());
    server.start().value();
    ASSERT_EQ(server.ports().size(), 1u);  // the native one
    ASSERT_EQ(server.websocket_ports().size(), 1u);
    ASSERT_NE(server.ports()[0], server.websocket_ports()[0]);

    Client client(websocket_client(server));
    client.connect().value();
    EXPECT_EQ(client.connection().call("echo", "hello", use_wait).value(), "hello");

    // A browser page from another site: refused before any Hawser byte.
    Client stranger(websocket_client(server, "https://evil.example"));
    auto refused = stranger.connect();
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("403 Forbidden (this Origin is not allowed)"),
              std::string::npos)
        << refused.error().message;
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::websocket_error) >= 1; }));

    // A native client on the WebSocket port is not an upgrade.
    ClientOptions wrong_port = client_for(server);
    wrong_port.endpoints = {"127.0.0.1:" + std::to_string(server.websocket_ports()[0])};
    wrong_port.timeouts.connect = std::chrono::seconds(3);
    EXPECT_FALSE(Client(wrong_port).connect());
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::websocket_error) >= 2; }));
}

TEST(WebSocket, RefusalsAreHttpAnswersThatSayWhy) {
    Server server(websocket_server());
    server.start().value();
    auto port = server.websocket_ports().at(0);
    struct Case {
        std::string request, status;
    };
    std::vector<Case> cases = {
        {upgrade_request("/hawser", "https://evil.example"), "HTTP/1.1 403 "},
        {upgrade_request("/elsewhere", "https://game.example"), "HTTP/1.1 404 "},
        {"GET /hawser HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "},
        {"GET /hawser HTTP/1.1\r\nX: " + std::string(9000, 'a'), "HTTP/1.1 431 "},
    };
    for (const auto& c : cases) {
        RawSocket raw(port);
        raw.send(c.request);
        auto answer = raw.read_until_closed();
        EXPECT_EQ(answer.rfind(c.status, 0), 0u) << answer;
        EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos);
    }
    EXPECT_TRUE(eventually(
        [&] { return server.stats().closed(CloseReason::websocket_error) >= cases.size(); }));

    // An upgrade that is accepted, then a text message: a close frame with 1003, then the end.
    RawSocket raw(port);
    raw.send(upgrade_request("/hawser", "https://game.example"));
    const char text_frame[] = {char(0x81), char(0x82), 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    raw.send(text_frame, sizeof text_frame);
    auto answer = raw.read_until_closed();
    auto end_of_head = answer.find("\r\n\r\n");
    ASSERT_NE(end_of_head, std::string::npos) << answer;
    EXPECT_EQ(answer.rfind("HTTP/1.1 101 ", 0), 0u);
    auto frames = answer.substr(end_of_head + 4);
    ASSERT_GE(frames.size(), 4u);
    EXPECT_EQ(std::uint8_t(frames[0]), 0x88);  // close, unmasked
    EXPECT_EQ((std::uint8_t(frames[2]) << 8) | std::uint8_t(frames[3]), 1003);
}

TEST(WebSocket, AnUpgradeThatNeverEndsMeetsTheHandshakeTimeout) {
    auto so = websocket_server();
    so.admission.handshake_timeout = std::chrono::milliseconds(300);
    Server server(so);
    server.start().value();
    RawSocket raw(server.websocket_ports().at(0));
    raw.send("GET /hawser HTTP/1.1\r\nHost: x\r\n");  // and nothing more
    raw.read_until_closed();
    EXPECT_TRUE(
        eventually([&] { return server.stats().closed(CloseReason::handshake_timeout) == 1; }));
}

TEST(WebSocket, BadSettingsAreRefusedAtStart) {
    auto so = loopback_server();
    so.listen = {"127.0.0.1:7999"};
    so.websocket.listen = {"127.0.0.1:7999"};
    auto twice = Server(so).start();
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().message.find("named twice"), std::string::npos);
    so = loopback_server();
    so.websocket.on_native_ports = true;
    so.websocket.path = "no-slash";
    auto path = Server(so).start();
    ASSERT_FALSE(path);
    EXPECT_NE(path.error().message.find("websocket: path"), std::string::npos);
    so.websocket.path = "/";
    so.websocket.max_request_bytes = 1 << 20;
    EXPECT_FALSE(Server(so).start());
    so.websocket.max_request_bytes = 8192;
    so.mark.head = {'G', 'E', 'T', ' '};
    EXPECT_FALSE(Server(so).start());
}
