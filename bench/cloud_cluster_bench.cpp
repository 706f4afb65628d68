// The cloud on two nodes sharing one store, on a nats-server it starts: user-to-user messages
// from senders on one node to a reader on the other (cloud.send: kept in the shared mailbox,
// then pushed through a cluster notice), against channel publications between the same two
// nodes in the same run (Cluster::publish from the senders' node to a subscriber on the
// reader's). Both directions: senders on the node that keeps the store ("home", storage local)
// and senders on the node that uses it ("edge", every storage call a round trip). Rates count
// deliveries until the last one arrived. Prints messages/s, publications/s and the ratios of
// the cross-node rates to one node's and to the channel's.
//   cloud_cluster_bench [--messages N] [--clients C] [--body BYTES]
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "hawser/cloud/cloud.hpp"
#include "hawser/cluster.hpp"
#include "hawser/hawser.hpp"
#include "hawser/zdb/remote_store.hpp"
#include "hawser/zdb/store.hpp"
#include "hawser/zdb/store_service.hpp"
#include "nats_process.hpp"
#include "numeric_flags.hpp"
#include "spdlog/spdlog.h"

using namespace hawser;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
    std::size_t messages = 4000, clients = 8, body = 200;
};

// Counts what reaches one client, and waits for a count.
struct Counter {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t n = 0;
    void add() {
        std::lock_guard lock(mu);
        ++n;
        cv.notify_all();
    }
    bool wait_for(std::size_t target) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, std::chrono::seconds(120), [&] { return n >= target; });
    }
    void reset() {
        std::lock_guard lock(mu);
        n = 0;
    }
};

// A node: a server, its cluster membership, its cloud on `store`.
struct Node {
    Node(const bench::Nats& nats, const std::string& name, zdb::Store& store,
         const std::string& dir, std::size_t total, std::vector<std::string> serve_to = {}) {
        ServerOptions so;
        so.listen = {"127.0.0.1:0"};
        so.io_threads = 1;
        so.worker_threads = 2;
        so.data_dir = "";
        server = std::make_unique<Server>(so);
        ClusterOptions c;
        c.nats_urls = {nats.url()};
        c.node_name = name;
        c.subject_prefix = "bench";
        c.client_channel_prefixes = {""};
        cluster = std::make_unique<Cluster>(*server, c);
        cloud::CloudOptions co;
        co.secret_key_file = dir + "/cloud.key";
        co.password_ops = 1;
        co.password_memory = 8192;  // logins are not what is measured
        co.registrations_per_address = 1u << 30;
        co.login_attempts_per_address = 1u << 30;
        co.max_queued_messages = total * 4 + 1;
        co.messages_per_minute = 1u << 30;
        cloud = std::make_unique<cloud::Cloud>(*server, store, co);
        cloud->join(*cluster);
        if (!serve_to.empty())
            service = std::make_unique<zdb::StoreService>(
                *server, store, zdb::StoreServiceOptions{.allowed_keys = serve_to});
        server->start().value();
        cluster->start().value();
    }
    ~Node() {
        cluster->stop();
        server->shutdown();
    }
    ClientOptions client_options() const {
        ClientOptions o;
        o.endpoints = {"127.0.0.1:" + std::to_string(server->ports().at(0))};
        o.server_public_key = server->public_key();
        return o;
    }
    std::unique_ptr<Server> server;
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<cloud::Cloud> cloud;
    std::unique_ptr<zdb::StoreService> service;
};

std::unique_ptr<Client> logged_in(const Node& node, const std::string& name, Counter* pushes) {
    auto c = std::make_unique<Client>(node.client_options());
    if (pushes) {
        c->commands().direct_dataframe(std::string(cloud::Cloud::message_push),
                                       [pushes](const Request&, DataFrame&) { pushes->add(); });
        c->commands().direct_console("news",
                                     [pushes](const Request&, std::string_view) { pushes->add(); });
    }
    c->connect().value();
    DataFrame reg;
    reg << name << "correct horse battery";
    (void)c->connection().call("cloud.register", reg, use_wait);  // taken on the second run
    c->connection().call("cloud.login", reg, use_wait).value();
    return c;
}

// Messages/s from `clients` senders on `from` to a reader on `to`, until all were pushed.
double messages(const Node& from, const Node& to, const std::string& tag, const Args& a,
                const std::string& body) {
    Counter pushes;
    auto reader = logged_in(to, "reader" + tag, &pushes);
    std::vector<std::unique_ptr<Client>> senders;
    for (std::size_t c = 0; c < a.clients; ++c)
        senders.push_back(logged_in(from, "sender" + tag + std::to_string(c), nullptr));
    std::size_t per = a.messages / a.clients, total = per * a.clients;
    auto t = Clock::now();
    std::vector<std::thread> pool;
    for (std::size_t c = 0; c < a.clients; ++c)
        pool.emplace_back([&, c] {
            for (std::size_t i = 0; i < per; ++i) {
                DataFrame m;
                m << "reader" + tag << body;
                senders[c]->connection().call("cloud.send", m, use_wait).value();
            }
        });
    for (auto& th : pool) th.join();
    if (!pushes.wait_for(total)) {
        std::fprintf(stderr, "messages: fewer than %zu pushed\n", total);
        std::exit(1);
    }
    return double(total) / std::chrono::duration<double>(Clock::now() - t).count();
}

// Publications/s from `from` to a subscriber on `to`, in windows of 1,000 each delivered
// before the next (channels are at most once under overload: the windows keep them within
// NATS's pending limits, as cluster_bench does).
double publications(const Node& from, const Node& to, const Args& a, const std::string& body) {
    Counter got;
    auto reader = logged_in(to, "listener", &got);
    // The reader's connection subscribes on its node through the command clients use.
    reader->connection().call("hawser.subscribe", std::string("bench.news"), use_wait).value();
    std::size_t total = a.messages, window = 1000, sent = 0;
    // Interest reaches NATS in a batch: publish until the first arrives, then measure.
    for (;;) {
        {
            std::lock_guard lock(got.mu);
            if (got.n) break;
        }
        (void)from.cluster->publish("bench.news", "news", body);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // warm-up ones land
    got.reset();
    auto t = Clock::now();
    while (sent < total) {
        auto n = std::min(window, total - sent);
        for (std::size_t i = 0; i < n; ++i)
            from.cluster->publish("bench.news", "news", body).value();
        sent += n;
        if (!got.wait_for(sent)) {
            std::fprintf(stderr, "publications: fewer than %zu arrived\n", sent);
            std::exit(1);
        }
    }
    return double(total) / std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    if (!bench::read_numeric_flags<std::size_t>(
            argc, argv,
            {{"--messages", &a.messages}, {"--clients", &a.clients}, {"--body", &a.body}}))
        return 2;
    if (a.clients == 0 || a.messages < a.clients) return 2;
    spdlog::set_level(spdlog::level::warn);
    auto dir = std::filesystem::temp_directory_path() /
               ("hawser_cloud_cluster_bench_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::string body(a.body, 'm');
    {
        bench::Nats nats;
        auto local = zdb::Store::open({.path = (dir / "store").string()}).value();
        // The edge proves a key of its own (made here); the home node serves the store to it.
        auto edge_public = Server::load_public_key((dir / "edge-data").string());
        Node home(nats, "home", *local, dir.string(), a.messages, {edge_public.value()});
        zdb::RemoteStoreOptions ro;
        ro.client = home.client_options();
        ro.client.client_key_file = (dir / "edge-data" / "server.key").string();
        auto remote = zdb::connect_store(ro).value();
        Node edge(nats, "edge", *remote, dir.string(), a.messages);
        while (home.cluster->nodes().size() < 2 || edge.cluster->nodes().size() < 2)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));

        double same_node = messages(home, home, "s", a, body);
        double home_to_edge = messages(home, edge, "h", a, body);
        double edge_to_home = messages(edge, home, "e", a, body);
        double channel = publications(home, edge, a, body);
        std::printf("cloud_cluster_bench: %zu messages of %zu B from %zu senders\n", a.messages,
                    a.body, a.clients);
        std::printf("  messages on one node (store local)        %10.0f /s\n", same_node);
        std::printf(
            "  messages home -> edge (store on home)     %10.0f /s   %.2f of one node, "
            "%.2f of channel\n",
            home_to_edge, home_to_edge / same_node, home_to_edge / channel);
        std::printf(
            "  messages edge -> home (store remote)      %10.0f /s   %.2f of one node, "
            "%.2f of channel\n",
            edge_to_home, edge_to_home / same_node, edge_to_home / channel);
        std::printf("  channel publications home -> edge         %10.0f /s\n", channel);
    }
    std::filesystem::remove_all(dir);
    return 0;
}
