// Listening: a port is shared only when every server asks for it (reuse_port), and a bad
// configuration is refused before the server touches its data directory.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

// A fresh, not yet existing directory under the test's temp dir.
std::string fresh_dir(const std::string& name) {
    auto dir = ::testing::TempDir() + "hawser_listen_" + name + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    return dir;
}

}  // namespace

TEST(Listen, ReusePortIsOffByDefault) {
    EXPECT_FALSE(ServerOptions{}.reuse_port);
}

TEST(Listen, SecondServerOnTheSamePortFailsWithAddressInUse) {
    Server first(loopback_server(1));
    first.start().value();
    auto so = loopback_server(1);
    so.listen = {"127.0.0.1:" + std::to_string(first.ports()[0])};
    Server second(so);
    auto r = second.start();
    ASSERT_FALSE(r) << "a second server took a share of a port in use";
    EXPECT_NE(r.error().message.find("in use"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("reuse_port"), std::string::npos) << r.error().message;
}

TEST(Listen, ServersThatBothAskForReusePortShareThePort) {
    auto so = loopback_server(1);
    so.reuse_port = true;
    Server first(so);
    first.start().value();
    so.listen = {"127.0.0.1:" + std::to_string(first.ports()[0])};
    Server second(so);
    auto r = second.start();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(second.ports()[0], first.ports()[0]);
}

// SO_REUSEADDR stays on for fast restarts; on Linux it does not let two listening TCP sockets
// bind the same address and port, which the default (reuse_port off) relies on.
TEST(Listen, ReuseAddrAloneDoesNotShareAListeningPort) {
    auto listener = [] {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        return fd;
    };
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int a = listener();
    ASSERT_EQ(::bind(a, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(a, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(a, reinterpret_cast<sockaddr*>(&addr), &len);
    int b = listener();
    int bound = ::bind(b, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int error = errno;
    EXPECT_EQ(bound, -1);
    EXPECT_EQ(error, EADDRINUSE);
    ::close(b);
    ::close(a);
}

TEST(Listen, BadListenAddressFailsBeforeTheKeyIsCreated) {
    for (const char* address : {"nonsense", "127.0.0.1:99999", "[::1:7100"}) {
        auto so = loopback_server(1);
        so.data_dir = fresh_dir("bad");
        so.listen = {"127.0.0.1:0", address};
        Server server(so);
        auto r = server.start();
        ASSERT_FALSE(r) << address;
        EXPECT_NE(r.error().message.find(address), std::string::npos) << r.error().message;
        EXPECT_FALSE(std::filesystem::exists(so.data_dir)) << address;
    }
}

TEST(Listen, BadAdmissionOptionsFailBeforeTheKeyIsCreated) {
    auto so = loopback_server(1);
    so.data_dir = fresh_dir("admission");
    so.admission.deny = {"not-a-range"};
    Server server(so);
    ASSERT_FALSE(server.start());
    EXPECT_FALSE(std::filesystem::exists(so.data_dir));
}

TEST(Listen, PortInUseFailsBeforeTheKeyIsCreated) {
    Server first(loopback_server(1));
    first.start().value();
    auto so = loopback_server(1);
    so.data_dir = fresh_dir("in_use");
    so.listen = {"127.0.0.1:" + std::to_string(first.ports()[0])};
    Server second(so);
    ASSERT_FALSE(second.start());
    EXPECT_FALSE(std::filesystem::exists(so.data_dir));
}
