#include "config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

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
max_worker_jobs = 128
max_worker_bytes = 1048576
allowed_client_keys = ["00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"]
require_client_key = true
[mark]
head = "ABCD"
tail = "abcd"
[limits]
max_frame_bytes = 65536
max_pending_calls = 10
send_queue_soft_bytes = 1024
send_queue_soft_grace_ms = 2500
worker_decode_bytes = 4096
max_worker_decode_bytes = 1048576
max_decoded_bytes = 2097152
max_dataframe_depth = 8
max_dataframe_container = 1000
max_dataframe_elements = 5000
stream_window_bytes = 65536
stream_connection_window_bytes = 131072
stream_chunk_bytes = 16384
stream_hash_turn_bytes = 4096
max_incoming_streams = 4
max_outgoing_streams = 5
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
max_connections_per_address = 16
max_tracked_addresses = 500
connections_per_second_per_ip = 50
connection_burst_per_ip = 75.5
max_handshakes_per_second = 2500
deny = ["192.0.2.0/24"]
[websocket]
listen = ["127.0.0.1:7280"]
on_native_ports = true
path = "/hawser"
allowed_origins = ["https://game.example"]
max_request_bytes = 4096
max_headers = 32
)");
    auto o = app::load_config(path);
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->listen.size(), 2u);
    EXPECT_EQ(o->io_threads, 3u);
    EXPECT_EQ(o->max_connections, 100u);
    EXPECT_EQ(o->mark.head[0], 'A');
    EXPECT_EQ(o->limits.max_frame_bytes, 65536u);
    EXPECT_EQ(o->limits.max_pending_calls, 10u);
    EXPECT_EQ(o->limits.send_queue_soft_bytes, 1024u);
    EXPECT_EQ(o->limits.send_queue_soft_grace, 2500ms);
    EXPECT_EQ(o->limits.max_decompressed_bytes, 65536u);  // follows max_frame_bytes
    EXPECT_EQ(o->limits.worker_decode_bytes, 4096u);
    EXPECT_EQ(o->limits.max_worker_decode_bytes, 1048576u);
    EXPECT_EQ(o->limits.dataframe.max_decoded_bytes, 2097152u);
    EXPECT_EQ(o->limits.dataframe.max_depth, 8u);
    EXPECT_EQ(o->limits.dataframe.max_container, 1000u);
    EXPECT_EQ(o->limits.dataframe.max_elements, 5000u);
    EXPECT_EQ(o->limits.stream_window_bytes, 65536u);
    EXPECT_EQ(o->limits.stream_connection_window_bytes, 131072u);
    EXPECT_EQ(o->limits.stream_chunk_bytes, 16384u);
    EXPECT_EQ(o->limits.stream_hash_turn_bytes, 4096u);
    EXPECT_EQ(o->limits.max_incoming_streams, 4u);
    EXPECT_EQ(o->limits.max_outgoing_streams, 5u);
    EXPECT_EQ(o->max_worker_jobs, 128u);
    EXPECT_EQ(o->max_worker_bytes, 1048576u);
    ASSERT_EQ(o->allowed_client_keys.size(), 1u);
    EXPECT_EQ(o->allowed_client_keys[0].size(), 64u);
    EXPECT_TRUE(o->require_client_key);
    EXPECT_TRUE(o->send_error_details);
    EXPECT_EQ(o->timeouts.call, std::chrono::milliseconds(1500));
    EXPECT_EQ(o->timeouts.idle, std::chrono::milliseconds(0));
    EXPECT_EQ(o->transport.compression, Compression::lz4);
    EXPECT_EQ(o->transport.rekey_messages, 1000u);
    EXPECT_EQ(o->transport.rekey_interval, std::chrono::milliseconds(60000));
    EXPECT_EQ(o->admission.handshake_timeout, std::chrono::milliseconds(2000));
    EXPECT_EQ(o->admission.max_handshakes_per_ip, 8u);
    EXPECT_EQ(o->admission.max_connections_per_address, 16u);
    EXPECT_EQ(o->admission.max_tracked_addresses, 500u);
    EXPECT_EQ(o->admission.connections_per_second_per_ip, 50.0);  // an integer is a rate too
    EXPECT_EQ(o->admission.connection_burst_per_ip, 75.5);
    EXPECT_EQ(o->admission.max_handshakes_per_second, 2500.0);
    EXPECT_EQ(o->admission.deny.at(0), "192.0.2.0/24");
    EXPECT_EQ(o->websocket.listen, std::vector<std::string>{"127.0.0.1:7280"});
    EXPECT_TRUE(o->websocket.on_native_ports);
    EXPECT_EQ(o->websocket.path, "/hawser");
    EXPECT_EQ(o->websocket.allowed_origins, std::vector<std::string>{"https://game.example"});
    EXPECT_EQ(o->websocket.max_request_bytes, 4096u);
    EXPECT_EQ(o->websocket.max_headers, 32u);
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
        {"[mark]\nhead = 1234\n", "head"},  // a half of another type is not left out
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
        // Numbers that must not wrap: a negative count is an error, not 2^64 - 1.
        {"[admission]\nmax_tracked_addresses = -1\n", "max_tracked_addresses must not be negative"},
        {"[admission]\nmax_connections_per_address = -3\n", "max_connections_per_address"},
        {"max_worker_bytes = -1\n", "max_worker_bytes must not be negative"},
        {"[limits]\nmax_frame_bytes = 5000000000\n", "max_frame_bytes"},
        {"backlog = 3000000000\n", "backlog"},
        // Zero where it would refuse everything.
        {"[admission]\nmax_tracked_addresses = 0\n", "max_tracked_addresses"},
        {"[admission]\nmax_handshakes = 0\n", "max_handshakes"},
        {"[admission]\nmax_handshakes_per_ip = 0\n", "max_handshakes_per_ip"},
        {"[admission]\nconnection_burst_per_ip = 0.5\n", "connection_burst_per_ip"},
        {"[admission]\nmax_handshakes_per_second = -1\n", "max_handshakes_per_second"},
        {"[admission]\nmax_handshakes_per_second = nan\n", "max_handshakes_per_second"},
        {"[admission]\nmax_handshakes_per_second = 0.5\n", "max_handshakes_per_second"},
        {"max_worker_jobs = 0\n", "max_worker_jobs"},
        {"max_worker_bytes = 0\n", "max_worker_bytes"},
        {"[limits]\nmax_pending_calls = 0\n", "max_pending_calls"},
        {"[limits]\nmax_dataframe_depth = 0\n", "max_dataframe_depth"},
        {"[limits]\nmax_dataframe_container = 0\n", "max_dataframe_container"},
        {"[limits]\nmax_dataframe_elements = 0\n", "max_dataframe_elements"},
        // Client keys: 64 hex digits each, and only with encryption.
        {"allowed_client_keys = [\"xyz\"]\n", "allowed_client_keys[0]"},
        {"allowed_client_keys = "
         "[\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", "
         "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\"]\n",
         "allowed_client_keys[1]"},
        {"allowed_client_keys = "
         "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"\n",
         "allowed_client_keys"},
        {"require_client_key = 1\n", "require_client_key"},
        {"require_client_key = true\n[transport]\ninsecure_plaintext = true\n",
         "insecure_plaintext"},
        // What Server::start refuses is refused at load, before anything touches the disk.
        {"[limits]\nstream_window_bytes = 10\n", "stream_window_bytes must"},
        {"[limits]\nstream_connection_window_bytes = 10\n", "stream_connection_window_bytes"},
        {"[limits]\nstream_chunk_bytes = 0\n", "stream_chunk_bytes"},
        {"[websocket]\nlisten = [\"[::]:7180\"]\npath = \"no-slash\"\n", "path"},
        {"[websocket]\nlisten = [\"[::]:7180\"]\nmax_headers = 2\n", "max_headers"},
        {"[websocket]\nlisten = [\"not an address\"]\n", "not an address"},
        {"[websocket]\non_native_ports = true\n[mark]\nhead = \"GET \"\n", "GET"},
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

TEST(Config, AMarkWithOneHalfKeepsTheOthersDefault) {
    auto path = write_temp("[mark]\nhead = \"ABCD\"\n");
    auto o = app::load_config(path);
    std::remove(path.c_str());
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(std::string(o->mark.head.begin(), o->mark.head.end()), "ABCD");
    EXPECT_EQ(o->mark.tail, ServerOptions{}.mark.tail);
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

// An empty file gives ServerOptions' defaults, the hardening ones included.
TEST(Config, EmptyFileKeepsTheDefaults) {
    auto path = write_temp("");
    auto o = app::load_config(path);
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->admission.connections_per_second_per_ip, 200.0);
    EXPECT_EQ(o->admission.connection_burst_per_ip, 1000.0);
    EXPECT_EQ(o->admission.max_connections_per_address, 4096u);
    EXPECT_EQ(o->admission.max_tracked_addresses, 100000u);
    EXPECT_EQ(o->max_worker_jobs, 65536u);
    EXPECT_EQ(o->max_worker_bytes, 256u << 20);
    EXPECT_TRUE(o->allowed_client_keys.empty());
    EXPECT_FALSE(o->require_client_key);
    std::remove(path.c_str());
}

// 0 turns the per-address cap and the rate limit off; both are allowed.
TEST(Config, ZeroTurnsOffThePerAddressCapAndTheRate) {
    auto path = write_temp(
        "[admission]\nmax_connections_per_address = 0\nconnections_per_second_per_ip = 0\n");
    auto o = app::load_config(path);
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->admission.max_connections_per_address, 0u);
    EXPECT_EQ(o->admission.connections_per_second_per_ip, 0.0);
    std::remove(path.c_str());
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
    // --insecure-plaintext over a file that requires client keys.
    o = ServerOptions{};
    o.require_client_key = true;
    EXPECT_TRUE(app::validate(o));
    o.transport.insecure_plaintext = true;
    r = app::validate(o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("insecure_plaintext"), std::string::npos) << r.error().message;
}

// docs/configuration.md shows every key with its default: that example must load and give
// exactly ServerOptions' defaults, so the docs cannot drift from options.hpp.
TEST(Config, DocumentedExampleIsTheDefaults) {
    std::ifstream doc(std::string(HAWSER_TEST_DATA) + "/../../docs/configuration.md");
    ASSERT_TRUE(doc) << "docs/configuration.md not found";
    std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
    auto begin = text.find("```toml\n");
    ASSERT_NE(begin, std::string::npos);
    begin += 8;
    auto end = text.find("```", begin);
    ASSERT_NE(end, std::string::npos);
    auto path = write_temp(text.substr(begin, end - begin));
    auto o = app::load_config(path);
    std::remove(path.c_str());
    ASSERT_TRUE(o) << o.error().message;
    const ServerOptions d;
    EXPECT_EQ(o->listen, d.listen);
    EXPECT_EQ(o->io_threads, d.io_threads);
    EXPECT_EQ(o->worker_threads, d.worker_threads);
    EXPECT_EQ(o->max_worker_jobs, d.max_worker_jobs);
    EXPECT_EQ(o->max_worker_bytes, d.max_worker_bytes);
    EXPECT_EQ(o->reuse_port, d.reuse_port);
    EXPECT_EQ(o->backlog, d.backlog);
    EXPECT_EQ(o->max_connections, d.max_connections);
    EXPECT_EQ(o->data_dir, d.data_dir);
    EXPECT_EQ(o->send_error_details, d.send_error_details);
    EXPECT_EQ(o->allowed_client_keys, d.allowed_client_keys);
    EXPECT_EQ(o->require_client_key, d.require_client_key);
    EXPECT_EQ(o->mark, d.mark);
    EXPECT_EQ(o->limits.max_frame_bytes, d.limits.max_frame_bytes);
    EXPECT_EQ(o->limits.max_pending_calls, d.limits.max_pending_calls);
    EXPECT_EQ(o->limits.max_send_queue_bytes, d.limits.max_send_queue_bytes);
    EXPECT_EQ(o->limits.send_queue_soft_bytes, d.limits.send_queue_soft_bytes);
    EXPECT_EQ(o->limits.send_queue_soft_grace, d.limits.send_queue_soft_grace);
    EXPECT_EQ(o->limits.max_decompressed_bytes, d.limits.max_decompressed_bytes);
    EXPECT_EQ(o->limits.worker_decode_bytes, d.limits.worker_decode_bytes);
    EXPECT_EQ(o->limits.max_worker_decode_bytes, d.limits.max_worker_decode_bytes);
    EXPECT_EQ(o->limits.dataframe.max_depth, d.limits.dataframe.max_depth);
    EXPECT_EQ(o->limits.dataframe.max_container, d.limits.dataframe.max_container);
    EXPECT_EQ(o->limits.dataframe.max_elements, d.limits.dataframe.max_elements);
    EXPECT_EQ(o->limits.dataframe.max_bytes, d.limits.dataframe.max_bytes);
    EXPECT_EQ(o->limits.dataframe.max_decoded_bytes, d.limits.dataframe.max_decoded_bytes);
    EXPECT_EQ(o->limits.stream_window_bytes, d.limits.stream_window_bytes);
    EXPECT_EQ(o->limits.stream_connection_window_bytes, d.limits.stream_connection_window_bytes);
    EXPECT_EQ(o->limits.stream_chunk_bytes, d.limits.stream_chunk_bytes);
    EXPECT_EQ(o->limits.max_incoming_streams, d.limits.max_incoming_streams);
    EXPECT_EQ(o->limits.max_outgoing_streams, d.limits.max_outgoing_streams);
    EXPECT_EQ(o->timeouts.call, d.timeouts.call);
    EXPECT_EQ(o->timeouts.idle, d.timeouts.idle);
    EXPECT_EQ(o->timeouts.heartbeat, d.timeouts.heartbeat);
    EXPECT_EQ(o->timeouts.shutdown, d.timeouts.shutdown);
    EXPECT_EQ(o->transport.insecure_plaintext, d.transport.insecure_plaintext);
    EXPECT_EQ(o->transport.rekey_messages, d.transport.rekey_messages);
    EXPECT_EQ(o->transport.rekey_interval, d.transport.rekey_interval);
    EXPECT_EQ(o->transport.compression, d.transport.compression);
    EXPECT_EQ(o->transport.compress_threshold, d.transport.compress_threshold);
    const auto &a = o->admission, &da = d.admission;
    EXPECT_EQ(a.handshake_timeout, da.handshake_timeout);
    EXPECT_EQ(a.max_handshakes, da.max_handshakes);
    EXPECT_EQ(a.max_handshakes_per_ip, da.max_handshakes_per_ip);
    EXPECT_EQ(a.max_connections_per_address, da.max_connections_per_address);
    EXPECT_EQ(a.connections_per_second_per_ip, da.connections_per_second_per_ip);
    EXPECT_EQ(a.connection_burst_per_ip, da.connection_burst_per_ip);
    EXPECT_EQ(a.max_handshakes_per_second, da.max_handshakes_per_second);
    EXPECT_EQ(a.max_tracked_addresses, da.max_tracked_addresses);
    EXPECT_EQ(a.allow, da.allow);
    EXPECT_EQ(a.deny, da.deny);
}

TEST(Config, ReadsTheClusterTable) {
    auto path = write_temp(R"(
listen = ["127.0.0.1:7200"]
[cluster]
nats = ["nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]
node_name = "edge-7"
subject_prefix = "game.prod"
public_endpoints = ["203.0.113.7:7200"]
capacity = 15000
nats_user = "hawser"
nats_password = "secret"
nats_tls_ca_file = "/etc/ssl/nats-ca.pem"
report_interval_ms = 500
node_expiry_ms = 2000
reports_heard_per_second = 40
max_message_bytes = 65536
max_remote_requests = 1000
max_publish_queue_bytes = 1048576
max_channels_per_connection = 16
interest_batch_ms = 50
redirect_when_full = false
client_channel_prefixes = ["public.", "lobby:"]
nats_send_asap = false
nats_write_deadline_ms = 3000
channel_write_deadline_ms = 20000
)");
    auto server = app::load_config(path);
    ASSERT_TRUE(server) << server.error().message;
    auto c = app::load_cluster_config(path);
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_TRUE(c->has_value());
    const auto& o = **c;
    EXPECT_EQ(o.nats_urls.size(), 2u);
    EXPECT_EQ(o.node_name, "edge-7");
    EXPECT_EQ(o.subject_prefix, "game.prod");
    EXPECT_EQ(o.public_endpoints[0], "203.0.113.7:7200");
    EXPECT_EQ(o.capacity, 15000u);
    EXPECT_EQ(o.nats_user, "hawser");
    EXPECT_EQ(o.nats_password, "secret");
    EXPECT_EQ(o.nats_tls_ca_file, "/etc/ssl/nats-ca.pem");
    EXPECT_EQ(o.report_interval, std::chrono::milliseconds(500));
    EXPECT_EQ(o.node_expiry, std::chrono::milliseconds(2000));
    EXPECT_DOUBLE_EQ(o.reports_heard_per_second, 40);
    EXPECT_EQ(o.max_message_bytes, 65536u);
    EXPECT_EQ(o.max_remote_requests, 1000u);
    EXPECT_EQ(o.max_publish_queue_bytes, 1048576u);
    EXPECT_EQ(o.max_channels_per_connection, 16u);
    EXPECT_EQ(o.interest_batch, std::chrono::milliseconds(50));
    EXPECT_FALSE(o.redirect_when_full);
    EXPECT_EQ(o.client_channel_prefixes, (std::vector<std::string>{"public.", "lobby:"}));
    EXPECT_FALSE(o.nats_send_asap);
    EXPECT_EQ(o.nats_write_deadline, std::chrono::milliseconds(3000));
    EXPECT_EQ(o.channel_write_deadline, std::chrono::milliseconds(20000));
    std::remove(path.c_str());
}

TEST(Config, NoClusterTableIsASingleNode) {
    auto path = write_temp("listen = [\"127.0.0.1:7200\"]\n");
    auto c = app::load_cluster_config(path);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->has_value());
    std::remove(path.c_str());
}

TEST(Config, BadClusterSettingsNameWhatIsWrong) {
    for (auto [text, says] : std::vector<std::pair<std::string, std::string>>{
             {"[cluster]\nnode_name = \"a.b\"\n", "node_name"},
             {"[cluster]\nnats = []\n", "nats_urls"},
             {"[cluster]\nsubject_prefix = \"a..b\"\n", "subject_prefix"},
             {"[cluster]\nreport_interval_ms = 1000\nnode_expiry_ms = 1000\n", "node_expiry"},
             {"[cluster]\nnats_token = \"t\"\nnats_user = \"u\"\n", "one of"},
             {"[cluster]\nnode = \"typo\"\n", "unknown key 'node'"},
             {"[cluster]\nmax_remote_requests = 0\n", "max_remote_requests"},
             {"[cluster]\nmax_publish_queue_bytes = 10\n", "max_publish_queue_bytes"},
             {"[cluster]\ninterest_batch_ms = 0\n", "interest_batch"},
             {"[cluster]\nnats_write_deadline_ms = 50\n", "nats_write_deadline"},
             {"[cluster]\nchannel_write_deadline_ms = 60001\n", "channel_write_deadline"},
             {"[cluster]\nreports_heard_per_second = -1\n", "reports_heard_per_second"},
         }) {
        auto path = write_temp(text);
        auto c = app::load_cluster_config(path);
        ASSERT_FALSE(c) << text;
        EXPECT_NE(c.error().message.find(says), std::string::npos) << c.error().message;
        std::remove(path.c_str());
    }
}

TEST(Config, ReadsTheAdminTable) {
    auto path = write_temp(
        "[admin]\nlisten = \"[::1]:9200\"\nmax_connections = 4\n"
        "timeout_ms = 5000\nallowed_hosts = [\"metrics.example\"]\n");
    auto a = app::load_admin_config(path);
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE(a->has_value());
    EXPECT_EQ((*a)->listen, "[::1]:9200");
    EXPECT_EQ((*a)->max_connections, 4u);
    EXPECT_EQ((*a)->timeout, std::chrono::milliseconds(5000));
    EXPECT_EQ((*a)->allowed_hosts, std::vector<std::string>{"metrics.example"});
    std::remove(path.c_str());
    // An empty table turns it on, on loopback; enabled = false or no table leaves it off.
    for (auto [text, on] : std::vector<std::pair<std::string, bool>>{
             {"[admin]\n", true}, {"[admin]\nenabled = false\n", false}, {"", false}}) {
        path = write_temp(text);
        a = app::load_admin_config(path);
        ASSERT_TRUE(a) << text;
        EXPECT_EQ(a->has_value(), on) << text;
        if (on) {
            EXPECT_EQ((*a)->listen, "127.0.0.1:9100");
        }
        std::remove(path.c_str());
    }
}

TEST(Config, BadAdminSettingsNameWhatIsWrong) {
    for (auto [text, says] : std::vector<std::pair<std::string, std::string>>{
             {"[admin]\nlisten = \"localhost:9100\"\n", "numeric"},
             {"[admin]\nlisten = \"127.0.0.1\"\n", "127.0.0.1"},
             {"[admin]\nmax_connections = 0\n", "max_connections"},
             {"[admin]\nport = 1\n", "unknown key 'port'"},
         }) {
        auto path = write_temp(text);
        auto a = app::load_admin_config(path);
        ASSERT_FALSE(a) << text;
        EXPECT_NE(a.error().message.find(says), std::string::npos) << a.error().message;
        std::remove(path.c_str());
    }
}

TEST(Config, ReadsASharedCloudStore) {
    std::string key(64, 'a');
    auto path = write_temp("[cloud]\nserve_store_to = [\"" + key + "\"]\n");
    auto c = app::load_cloud_config(path);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ((*c)->serve_store_to, std::vector<std::string>{key});
    EXPECT_FALSE((*c)->remote_store());
    std::remove(path.c_str());
    // A node that uses another's store keeps no files.
    path = write_temp("[cloud]\nstore_endpoint = \"10.0.0.1:7100\"\nstore_public_key = \"" + key +
                      "\"\n");
    c = app::load_cloud_config(path);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_TRUE((*c)->remote_store());
    EXPECT_EQ((*c)->store_endpoint, "10.0.0.1:7100");
    EXPECT_EQ((*c)->store_public_key, key);
    EXPECT_FALSE((*c)->files);
    // Its clients are sent to the serving node for files: where it reaches it, or where named.
    EXPECT_EQ((*c)->options.files_endpoint, "10.0.0.1:7100");
    EXPECT_EQ((*c)->options.files_public_key, key);
    std::remove(path.c_str());
    path = write_temp("[cloud]\nstore_endpoint = \"10.0.0.1:7100\"\nstore_public_key = \"" + key +
                      "\"\nfiles_endpoint = \"files.example:7000\"\n");
    c = app::load_cloud_config(path);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ((*c)->options.files_endpoint, "files.example:7000");
    std::remove(path.c_str());
}

TEST(Config, ReadsRoomLimitsAndRefusesBadOnes) {
    auto path = write_temp("[cloud]\nmax_rooms = 8\nmax_room_members = 50\n");
    auto c = app::load_cloud_config(path);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ((*c)->options.max_rooms, 8u);
    EXPECT_EQ((*c)->options.max_room_members, 50u);
    std::remove(path.c_str());
    for (auto text : {"[cloud]\nmax_rooms = 0\n", "[cloud]\nmax_room_members = 0\n",
                      "[cloud]\nmax_rooms = 10001\n"}) {
        path = write_temp(text);
        c = app::load_cloud_config(path);
        ASSERT_FALSE(c) << text;
        EXPECT_NE(c.error().message.find("max_room"), std::string::npos) << c.error().message;
        std::remove(path.c_str());
    }
}

TEST(Config, ReadsCloudLifetimesInSecondsAndRefusesNegativeOnes) {
    auto path = write_temp(
        "[cloud]\nsession_lifetime_s = 3600\nmessage_lifetime_s = 60\n"
        "partial_upload_lifetime_s = 7200\n");
    auto c = app::load_cloud_config(path);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ((*c)->options.session_lifetime, std::chrono::hours(1));
    EXPECT_EQ((*c)->options.message_lifetime, std::chrono::minutes(1));
    EXPECT_EQ((*c)->options.partial_upload_lifetime, std::chrono::hours(2));
    std::remove(path.c_str());
    path = write_temp("[cloud]\nmessage_lifetime_s = -1\n");
    c = app::load_cloud_config(path);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("message_lifetime_s"), std::string::npos) << c.error().message;
    std::remove(path.c_str());
}

TEST(Config, BadSharedCloudStoreSettingsNameWhatIsWrong) {
    std::string key(64, 'a');
    auto remote = "store_endpoint = \"10.0.0.1:7100\"\nstore_public_key = \"" + key + "\"\n";
    for (auto [text, says] : std::vector<std::pair<std::string, std::string>>{
             {"[cloud]\nstore_endpoint = \"10.0.0.1:7100\"\n", "go together"},
             {"[cloud]\nserve_store_to = [\"nope\"]\n", "not a public key"},
             {"[cloud]\n" + remote + "store_dir = \"/x\"\n", "has no store_dir"},
             {"[cloud]\n" + remote + "serve_store_to = [\"" + key + "\"]\n", "serves none"},
             {"[cloud]\n" + remote + "files = true\n", "files are kept"},
             {"[cloud]\n" + remote + "files_dir = \"/x\"\n", "files are kept"},
             {"[cloud]\nfiles_endpoint = \"10.0.0.1:7000\"\n", "files_endpoint is for"},
         }) {
        auto path = write_temp(text);
        auto c = app::load_cloud_config(path);
        ASSERT_FALSE(c) << text;
        EXPECT_NE(c.error().message.find(says), std::string::npos) << c.error().message;
        std::remove(path.c_str());
    }
}
