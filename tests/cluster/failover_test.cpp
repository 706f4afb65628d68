// Nodes as separate hawser-server processes on one nats-server: a node killed with SIGKILL
// leaves every registry at node_expiry (3 s), and its clients, reconnecting by themselves from
// the entry endpoints, are routed to the nodes still alive; a full node redirects new clients
// to a node with room.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "cluster/child_process.hpp"
#include "cluster/nats_server.hpp"
#include "hawser/cluster.hpp"
#include "integration/support.hpp"

namespace hawser::test {
namespace {

// "... (ports 12345) ..." in hawser-server's start-up line.
std::string port_in(const std::string& log) {
    auto at = log.find("(ports ");
    if (at == std::string::npos) return {};
    auto end = log.find(')', at);
    return log.substr(at + 7, end - at - 7);
}

// One key for the whole cluster (one data directory): a client pins it once for every entry
// endpoint. Removed with the test.
struct ClusterKey {
    ClusterKey() {
        std::filesystem::create_directories(data);
        ChildProcess print;
        print.start({HAWSER_SERVER, "--data-dir", data.string(), "--print-public-key"});
        print.wait_for("\n");
        key = Server::load_public_key(data.string()).value();
    }
    ~ClusterKey() {
        std::error_code ec;
        std::filesystem::remove_all(data, ec);
    }
    std::filesystem::path data =
        std::filesystem::temp_directory_path() / ("hawser-cluster-key-" + std::to_string(getpid()));
    std::string key;
};

// A hawser-server node on a loopback port; `extra`: more flags. Its endpoint goes to
// `endpoints`.
std::unique_ptr<ChildProcess> start_node(const NatsServer& nats, const ClusterKey& key,
                                         const std::string& name,
                                         std::vector<std::string>& endpoints,
                                         std::vector<std::string> extra = {}) {
    auto p = std::make_unique<ChildProcess>();
    std::vector<std::string> args{HAWSER_SERVER,     "--listen",    "127.0.0.1:0", "--data-dir",
                                  key.data.string(), "--threads",   "1",           "--cluster",
                                  nats.url(),        "--node-name", name};
    args.insert(args.end(), extra.begin(), extra.end());
    p->start(args);
    auto log = p->wait_for("joining over");
    endpoints.push_back("127.0.0.1:" + port_in(log));
    return p;
}

// A node in this process that watches the registry, draining so that no client is sent to it.
struct Observer {
    explicit Observer(const NatsServer& nats)
        : server(loopback_server(1)), cluster(server, [&] {
              ClusterOptions co;
              co.nats_urls = {nats.url()};
              co.node_name = "observer";
              return co;
          }()) {
        EXPECT_TRUE(server.start());
        EXPECT_TRUE(cluster.start());
        cluster.set_draining(true);
    }
    Server server;
    Cluster cluster;
};

TEST(ClusterProcesses, AKilledNodeLeavesTheRegistryAndItsClientsMoveToTheOthers) {
    NatsServer nats;
    ClusterKey key;
    std::vector<std::unique_ptr<ChildProcess>> nodes;
    std::vector<std::string> endpoints;
    for (int i = 1; i <= 3; ++i)
        nodes.push_back(start_node(nats, key, "p" + std::to_string(i), endpoints));
    Observer watch(nats);
    auto& observer = watch.cluster;
    ASSERT_TRUE(eventually([&] { return observer.nodes().size() == 4; }, 15s));

    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 12; ++i) {
        ClientOptions o;
        o.endpoints = endpoints;
        o.server_public_key = key.key;
        o.cluster = true;
        o.reconnect.enabled = true;
        o.reconnect.min_delay = 100ms;
        o.reconnect.max_delay = 1s;
        clients.push_back(std::make_unique<Client>(o));
        ASSERT_TRUE(clients.back()->connect());
    }
    std::map<std::string, int> per_node;
    for (auto& c : clients) ++per_node[c->connection().remote_address()];
    // Kill the node that holds the most clients.
    std::size_t victim = 0;
    for (std::size_t i = 0; i < endpoints.size(); ++i)
        if (per_node[endpoints[i]] > per_node[endpoints[victim]]) victim = i;
    ASSERT_GT(per_node[endpoints[victim]], 0);
    auto killed_at = std::chrono::steady_clock::now();
    nodes[victim]->end(SIGKILL);
    auto since_kill = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
    };

    auto victim_name = "p" + std::to_string(victim + 1);
    ASSERT_TRUE(eventually(
        [&] {
            for (auto& n : observer.nodes())
                if (n.name == victim_name) return false;
            return true;
        },
        10s));
    std::printf("registry dropped the killed node after %.2f s\n", since_kill());
    // Every client is connected again, and none to the dead node.
    ASSERT_TRUE(eventually(
        [&] {
            for (auto& c : clients)
                if (!c->connected() || c->connection().remote_address() == endpoints[victim])
                    return false;
            return true;
        },
        20s));
    std::printf("all %zu clients reconnected to live nodes after %.2f s\n", clients.size(),
                since_kill());
    for (auto& c : clients) {
        auto r = c->connection().call("hello", "again", use_wait);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(*r, "hello, again");
    }
    clients.clear();
    observer.stop();
    for (auto& n : nodes) n->end(SIGTERM);
}

TEST(ClusterProcesses, AFullNodeRedirectsNewClientsToANodeWithRoom) {
    NatsServer nats;
    ClusterKey key;
    auto config = key.data / "full.toml";
    std::ofstream(config) << "[cluster]\ncapacity = 1\n";
    std::vector<std::string> endpoints;
    auto full = start_node(nats, key, "full", endpoints, {"--config", config.string()});
    auto roomy = start_node(nats, key, "roomy", endpoints);
    Observer watch(nats);
    ASSERT_TRUE(eventually([&] { return watch.cluster.nodes().size() == 3; }, 15s));
    auto plain = [&] {
        ClientOptions o;
        o.endpoints = {endpoints[0]};  // only the full node: no route asked, no other entry
        o.server_public_key = key.key;
        o.reconnect.enabled = true;
        return o;
    };
    Client first(plain());
    ASSERT_TRUE(first.connect());
    EXPECT_EQ(first.connection().remote_address(), endpoints[0]);
    Client second(plain());
    ASSERT_TRUE(second.connect());  // its handshake succeeds; the redirect comes right after
    ASSERT_TRUE(eventually([&] {
        return second.connected() && second.connection().remote_address() == endpoints[1];
    }));
    EXPECT_EQ(second.connection().call("hello", "there", use_wait).value(), "hello, there");
    EXPECT_EQ(first.connection().remote_address(), endpoints[0]);  // the one it had stays
    watch.cluster.stop();
    full->end(SIGTERM);
    roomy->end(SIGTERM);
}

}  // namespace
}  // namespace hawser::test
