#include "config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <unistd.h>

using namespace hawser;

namespace {
std::string write_temp(const std::string& text) {
    // Unique per process and call: ctest runs test cases as parallel processes.
    static int counter = 0;
    std::string path = ::testing::TempDir() + "hawser_config_" + std::to_string(::getpid()) + "_" +
                       std::to_string(counter++) + ".toml";
    std::ofstream(path) << text;
    return path;
}
}  // namespace

TEST(Config, ReadsEveryKey) {
    auto path = write_temp(R"(
listen = ["127.0.0.1:7200", "[::1]:7200"]
io_threads = 3
max_connections = 100
send_error_details = true
[mark]
head = "ABCD"
tail = "abcd"
[limits]
max_frame_bytes = 65536
max_pending_calls = 10
worker_decode_bytes = 4096
max_worker_decode_bytes = 1048576
max_decoded_bytes = 2097152
[timeouts]
call_ms = 1500
idle_ms = 0
[transport]
compression = "lz4"
rekey_messages = 1000
rekey_interval_ms = 60000
[admission]
handshake_timeout_ms = 2000
max_handshakes_per_ip = 8
deny = ["192.0.2.0/24"]
)");
    auto o = app::load_config(path);
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->listen.size(), 2u);
    EXPECT_EQ(o->io_threads, 3u);
    EXPECT_EQ(o->max_connections, 100u);
    EXPECT_EQ(o->mark.head[0], 'A');
    EXPECT_EQ(o->limits.max_frame_bytes, 65536u);
    EXPECT_EQ(o->limits.max_pending_calls, 10u);
    EXPECT_EQ(o->limits.max_decompressed_bytes, 65536u);  // follows max_frame_bytes
    EXPECT_EQ(o->limits.worker_decode_bytes, 4096u);
    EXPECT_EQ(o->limits.max_worker_decode_bytes, 1048576u);
    EXPECT_EQ(o->limits.dataframe.max_decoded_bytes, 2097152u);
    EXPECT_TRUE(o->send_error_details);
    EXPECT_EQ(o->timeouts.call, std::chrono::milliseconds(1500));
    EXPECT_EQ(o->timeouts.idle, std::chrono::milliseconds(0));
    EXPECT_EQ(o->transport.compression, Compression::lz4);
    EXPECT_EQ(o->transport.rekey_messages, 1000u);
    EXPECT_EQ(o->transport.rekey_interval, std::chrono::milliseconds(60000));
    EXPECT_EQ(o->admission.handshake_timeout, std::chrono::milliseconds(2000));
    EXPECT_EQ(o->admission.max_handshakes_per_ip, 8u);
    EXPECT_EQ(o->admission.deny.at(0), "192.0.2.0/24");
    std::remove(path.c_str());
}

TEST(Config, BadFilesGetAClearError) {
    struct Case {
        const char* text;
        const char* mentions;
    } cases[] = {
        {"listen = [\"a:1\"]\nlisen = 3\n", "lisen"},
        {"io_threads = \"many\"\n", "io_threads"},
        {"[mark]\nhead = \"AB\"\ntail = \"abcd\"\n", "4 bytes"},
        {"[timeouts]\ncall_ms = -5\n", "negative"},
        {"listen = [\n", ""},
        {"listen = []\n", "listen"},
        {"[transport]\ncompression = \"gzip\"\n", "compression"},
        {"[admission]\nallow_list = []\n", "allow_list"},
        {"listen = [\"nonsense\"]\n", "nonsense"},
        {"listen = [\"127.0.0.1:70000\"]\n", "70000"},
        {"backlog = 0\n", "backlog"},
        {"io_threads = 100000\n", "io_threads"},
        {"reuse_port = \"yes\"\n", "reuse_port"},
        {"[admission]\ndeny = [\"10.0.0.0/40\"]\n", "10.0.0.0/40"},
        {"[admission]\nconnections_per_second_per_ip = -1.5\n", "connections_per_second_per_ip"},
    };
    for (const auto& c : cases) {
        auto path = write_temp(c.text);
        auto o = app::load_config(path);
        EXPECT_FALSE(o) << c.text;
        if (!o) {
            EXPECT_NE(o.error().message.find(c.mentions), std::string::npos) << o.error().message;
        }
        std::remove(path.c_str());
    }
}

TEST(Config, ReusePortIsOffUnlessAsked) {
    auto off = write_temp("listen = [\"127.0.0.1:7200\"]\n");
    auto on = write_temp("reuse_port = true\n");
    auto a = app::load_config(off);
    auto b = app::load_config(on);
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_FALSE(a->reuse_port);
    EXPECT_TRUE(b->reuse_port);
    std::remove(off.c_str());
    std::remove(on.c_str());
}

// Flags are merged after the file, so the merged options are checked again as a whole.
TEST(Config, ValidateChecksMergedOptions) {
    ServerOptions o;
    EXPECT_TRUE(app::validate(o));
    o.listen = {"[::]:7100", "nonsense"};
    auto r = app::validate(o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("nonsense"), std::string::npos) << r.error().message;
    o.listen = {"[::]:7100"};
    o.limits.max_frame_bytes = 10;
    EXPECT_FALSE(app::validate(o));
}
