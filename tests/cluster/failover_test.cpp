// Nodes as separate hawser-server processes on one nats-server: a node killed with SIGKILL
// leaves every registry at node_expiry (3 s), and its clients, reconnecting by themselves from
// the entry endpoints, are routed to the nodes still alive.
#include <gtest/gtest.h>

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

TEST(ClusterProcesses, AKilledNodeLeavesTheRegistryAndItsClientsMoveToTheOthers) {
    NatsServer nats;
    // One key for the whole cluster (one data directory): a client pins it once for every
    // entry endpoint.
    auto data =
        std::filesystem::temp_directory_path() / ("hawser-cluster-key-" + std::to_string(getpid()));
    std::filesystem::create_directories(data);
    {
        ChildProcess print;
        print.start({HAWSER_SERVER, "--data-dir", data.string(), "--print-public-key"});
        print.wait_for("\n");
    }
    auto key = Server::load_public_key(data.string());
    ASSERT_TRUE(key) << key.error().message;

    std::vector<std::unique_ptr<ChildProcess>> nodes;
    std::vector<std::string> endpoints;
    for (int i = 1; i <= 3; ++i) {
        auto p = std::make_unique<ChildProcess>();
        p->start({HAWSER_SERVER, "--listen", "127.0.0.1:0", "--data-dir", data.string(),
                  "--threads", "1", "--cluster", nats.url(), "--node-name",
                  "p" + std::to_string(i)});
        auto log = p->wait_for("joining over");
        endpoints.push_back("127.0.0.1:" + port_in(log));
        nodes.push_back(std::move(p));
    }
    // An observer node in this process, draining so that no client is sent to it.
    Server observer_server(loopback_server(1));
    ClusterOptions co;
    co.nats_urls = {nats.url()};
    co.node_name = "observer";
    Cluster observer(observer_server, co);
    ASSERT_TRUE(observer_server.start());
    ASSERT_TRUE(observer.start());
    observer.set_draining(true);
    ASSERT_TRUE(eventually([&] { return observer.nodes().size() == 4; }, 15s));

    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 12; ++i) {
        ClientOptions o;
        o.endpoints = endpoints;
        o.server_public_key = *key;
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
    std::error_code ec;
    std::filesystem::remove_all(data, ec);
}

}  // namespace
}  // namespace hawser::test
