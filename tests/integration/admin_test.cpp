// The admin listener over loopback: /metrics reflects what a server did, pages are served, and
// bad requests get HTTP errors.
#include "hawser/admin.hpp"

#include "support.hpp"

namespace hawser::test {

namespace {

// One HTTP/1.1 request with Connection: close; the whole answer.
std::string http(std::uint16_t port, std::string_view method, std::string_view path,
                 std::string_view body = {}, std::string_view host = "127.0.0.1") {
    RawSocket s(port);
    std::string request = std::string(method) + " " + std::string(path) +
                          " HTTP/1.1\r\nHost: " + std::string(host) + "\r\nConnection: close\r\n";
    if (!body.empty()) request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    request += "\r\n";
    request += body;
    s.send(request);
    return s.read_until_closed();
}

// The value of one sample line, e.g. `name{labels}`; -1 when absent.
double sample(const std::string& text, const std::string& series) {
    auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace

TEST(Admin, MetricsFollowTheServer) {
    Server server(loopback_server());
    server.commands().console("echo",
                              [](const Request&, std::string_view t) { return std::string(t); });
    ASSERT_TRUE(server.start());
    AdminServer admin({.listen = "127.0.0.1:0"});
    admin.add_metrics([&](MetricsText& out) { write_metrics(out, server.stats()); });
    admin.add_page("/", "text/html", "<p>dashboard</p>");
    ASSERT_TRUE(admin.start());
    ASSERT_NE(admin.port(), 0);

    auto client = std::make_unique<Client>(client_for(server));
    ASSERT_TRUE(client->connect());
    auto conn = client->connection();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(conn.call("echo", "x", use_wait));
    auto answer = http(admin.port(), "GET", "/metrics");
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
    EXPECT_NE(answer.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    EXPECT_EQ(sample(answer, "hawser_connections"), 1);
    EXPECT_EQ(sample(answer, "hawser_handshakes_total"), 1);
    EXPECT_EQ(sample(answer, "hawser_command_calls_total{command=\"echo\"}"), 5);
    EXPECT_EQ(sample(answer, "hawser_command_duration_seconds_count{command=\"echo\"}"), 5);
    EXPECT_EQ(
        sample(answer, "hawser_command_duration_seconds_bucket{command=\"echo\",le=\"+Inf\"}"), 5);

    client->close();
    // The close is counted once the server has seen it.
    ASSERT_TRUE(eventually([&] { return server.stats().connections == 0; }));
    EXPECT_EQ(sample(http(admin.port(), "GET", "/metrics"),
                     "hawser_connections_closed_total{reason=\"local_close\"}"),
              1);

    auto page = http(admin.port(), "GET", "/");
    EXPECT_EQ(page.rfind("HTTP/1.1 200", 0), 0u);
    EXPECT_NE(page.find("<p>dashboard</p>"), std::string::npos);
    EXPECT_EQ(http(admin.port(), "GET", "/nothing").rfind("HTTP/1.1 404", 0), 0u);
    auto post = http(admin.port(), "POST", "/metrics", "a body");
    EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u) << post;
    EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos);
    EXPECT_EQ(http(admin.port(), "GET", "/metrics", "a body").rfind("HTTP/1.1 413", 0), 0u);
    auto head = http(admin.port(), "HEAD", "/metrics");
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
    EXPECT_EQ(head.find("# HELP"), std::string::npos);  // headers only
    auto garbage = [&] {
        RawSocket s(admin.port());
        s.send(std::string_view("\x01\x02 not http at all\r\n\r\n"));
        return s.read_until_closed();
    }();
    EXPECT_EQ(garbage.find("200 OK"), std::string::npos);
    // Still serving after all that.
    EXPECT_EQ(http(admin.port(), "GET", "/metrics").rfind("HTTP/1.1 200", 0), 0u);
    admin.stop();
    server.shutdown();
}

TEST(Admin, HostNamesOtherThanAddressesAndLocalhostAreRefused) {
    AdminServer admin({.listen = "127.0.0.1:0", .allowed_hosts = {"Metrics.Example:443"}});
    admin.add_metrics([](MetricsText& out) { out.gauge("up", "Up", 1); });
    ASSERT_TRUE(admin.start());
    auto status = [&](std::string_view host) {
        return http(admin.port(), "GET", "/metrics", {}, host).substr(0, 12);
    };
    EXPECT_EQ(status("127.0.0.1"), "HTTP/1.1 200");
    EXPECT_EQ(status("127.0.0.1:9100"), "HTTP/1.1 200");
    EXPECT_EQ(status("[::1]:9100"), "HTTP/1.1 200");
    EXPECT_EQ(status("LocalHost:9100"), "HTTP/1.1 200");
    EXPECT_EQ(status("metrics.example"), "HTTP/1.1 200");  // configured, any port, any case
    // A name a page could rebind to 127.0.0.1.
    EXPECT_EQ(status("attacker.example"), "HTTP/1.1 403");
    EXPECT_EQ(status("attacker.example:9100"), "HTTP/1.1 403");
    EXPECT_EQ(status("localhost.attacker.example"), "HTTP/1.1 403");
}

TEST(Admin, BadOptionsAreRefusedAndAPortInUseFailsTheStart) {
    EXPECT_FALSE(AdminServer::validate({.listen = "localhost:9100"}));  // numeric only
    EXPECT_FALSE(AdminServer::validate({.listen = "127.0.0.1:99999"}));
    EXPECT_FALSE(AdminServer::validate({.listen = "127.0.0.1"}));
    EXPECT_FALSE(AdminServer::validate({.listen = "127.0.0.1:0", .max_connections = 0}));
    EXPECT_FALSE(AdminServer::validate({.listen = "127.0.0.1:0", .max_connections = 1025}));
    EXPECT_FALSE(AdminServer::validate({.listen = "127.0.0.1:0", .timeout = 999ms}));
    // Past an hour libmicrohttpd's seconds could wrap to 0, which it takes as "never".
    EXPECT_FALSE(
        AdminServer::validate({.listen = "127.0.0.1:0", .timeout = std::chrono::hours(2)}));
    EXPECT_FALSE(AdminServer::validate(
        {.listen = "127.0.0.1:0", .timeout = std::chrono::milliseconds::max()}));
    EXPECT_TRUE(AdminServer::validate({.listen = "[::1]:0"}));
    AdminServer first({.listen = "127.0.0.1:0"});
    ASSERT_TRUE(first.start());
    AdminServer second({.listen = "127.0.0.1:" + std::to_string(first.port())});
    auto started = second.start();
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().message.find("cannot listen"), std::string::npos);
}

TEST(Admin, ServesOverIPv6Loopback) {
    AdminServer admin({.listen = "[::1]:0"});
    admin.add_metrics([](MetricsText& out) { out.gauge("up", "Up", 1); });
    if (auto started = admin.start(); !started) GTEST_SKIP() << "no IPv6 loopback here";
    int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(admin.port());
    a.sin6_addr = in6addr_loopback;
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string_view request = "GET /metrics HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) out.append(buffer, size_t(n));
    ::close(fd);
    EXPECT_NE(out.find("\nup 1\n"), std::string::npos) << out;
}

}  // namespace hawser::test
