// The cluster against its baselines, in one process, on a nats-server it starts on a loopback
// port: (1) a route request (hawser.route) against an echo call on the same connection;
// (2) a 64-byte broadcast to N connections spread over 4 nodes (one IO thread each;
// Cluster::broadcast: one NATS publish, each node fans out) against the same N connections on
// one node with an IO thread per core (Server::broadcast); (3) channel publications from one
// node to a subscriber on each of the 3 others (Cluster::publish), rate and one-at-a-time
// latency, against NATS's own publish -> subscribe (nats.c, the same shape: one publishing
// connection writing each message at once, 3 subscribing) on the same nats-server. Rates are
// measured in windows of 1,000 publications, each delivered before the next.
//   cluster_bench [--connections N] [--broadcasts M] [--calls K] [--publications P]
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "hawser/cluster.hpp"
#include "hawser/hawser.hpp"
#include "nats_process.hpp"

extern char** environ;
using namespace std::chrono;
using namespace hawser;

namespace {

using hawser::bench::Nats;

ServerOptions server_options() {
    ServerOptions o;
    o.listen = {"127.0.0.1:0"};
    o.io_threads = 1;
    o.data_dir = "";
    o.admission.connections_per_second_per_ip = 0;
    o.admission.max_handshakes_per_ip = 1u << 20;
    o.admission.max_connections_per_address = 0;
    return o;
}

struct Node {
    Node(const Nats& nats, const std::string& name)
        : server(server_options()), cluster(server, [&] {
              ClusterOptions c;
              c.nats_urls = {nats.url()};
              c.node_name = name;
              c.subject_prefix = "bench";
              return c;
          }()) {
        server.commands().console(
            "echo", [](const Request&, std::string_view s) { return std::string(s); });
        server.start().value();
        cluster.start().value();
    }
    Server server;
    Cluster cluster;
};

template <class Call>
double rate_of(int calls, Call&& call, std::vector<double>& us) {
    auto start = steady_clock::now();
    for (int i = 0; i < calls; ++i) {
        auto t = steady_clock::now();
        call();
        us.push_back(duration<double, std::micro>(steady_clock::now() - t).count());
    }
    return calls / duration<double>(steady_clock::now() - start).count();
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, std::size_t(q * double(v.size())))];
}

// Connects `n` clients to `servers` round-robin; each counts the "news" it gets.
struct Listeners {
    Listeners(Runtime& rt, const std::vector<Server*>& servers, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            auto* s = servers[i % servers.size()];
            ClientOptions o;
            o.endpoints = {"127.0.0.1:" + std::to_string(s->ports()[0])};
            o.server_public_key = s->public_key();
            clients.push_back(std::make_unique<Client>(rt, o));
            clients.back()->commands().direct_console(
                "news", [this](const Request&, std::string_view) { ++received; });
            clients.back()->connect().value();
        }
    }
    std::vector<std::unique_ptr<Client>> clients;
    std::atomic<std::uint64_t> received{0};
};

// Sends `m` broadcasts with `send` and returns deliveries per second until all arrived.
template <class Send>
double fan_out(Listeners& l, std::size_t m, Send&& send) {
    l.received = 0;
    std::string payload(64, 'x');
    auto start = steady_clock::now();
    for (std::size_t i = 0; i < m; ++i) send(payload);
    auto want = m * l.clients.size();
    while (l.received.load() < want) {
        if (steady_clock::now() - start > seconds(60)) {
            std::fprintf(stderr, "broadcast: only %llu of %zu arrived\n",
                         (unsigned long long)l.received.load(), want);
            break;
        }
        std::this_thread::sleep_for(microseconds(200));
    }
    return double(l.received.load()) / duration<double>(steady_clock::now() - start).count();
}

std::int64_t now_ns() {
    return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

// What the subscribers of either kind record: how many arrived, and one-at-a-time latencies.
struct Arrivals {
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::int64_t> last_latency_ns{0};
    void on(std::string_view payload) {
        // The payload starts with the publisher's steady clock in nanoseconds.
        last_latency_ns = now_ns() - std::atoll(std::string(payload.substr(0, 20)).c_str());
        ++count;
    }
};

// Publishes `m` 64-byte messages in windows of `window` (each waited for at every subscriber
// before the next: core NATS drops what a subscriber cannot take, so an unpaced burst would
// measure the drops) and returns deliveries per second.
template <class Publish>
double stream(Arrivals& a, std::size_t m, std::size_t subscribers, std::size_t window,
              Publish&& publish) {
    a.count = 0;
    auto start = steady_clock::now();
    for (std::size_t sent = 0; sent < m;) {
        for (std::size_t i = 0; i < window && sent < m; ++i, ++sent) {
            auto p = std::to_string(now_ns());
            p.resize(64, ' ');
            publish(p);
        }
        auto deadline = steady_clock::now() + seconds(10);
        while (a.count.load() < sent * subscribers && steady_clock::now() < deadline)
            std::this_thread::yield();
        if (a.count.load() < sent * subscribers) {
            std::fprintf(stderr, "stream: publications lost\n");
            break;
        }
    }
    return double(a.count.load()) / duration<double>(steady_clock::now() - start).count();
}

// One message at a time, each waited for at every subscriber: its latency to the last one.
template <class Publish>
std::vector<double> one_at_a_time(Arrivals& a, int n, std::size_t subscribers, Publish&& publish) {
    std::vector<double> us;
    for (int i = 0; i < n; ++i) {
        a.count = 0;
        auto p = std::to_string(now_ns());
        p.resize(64, ' ');
        publish(p);
        auto start = steady_clock::now();
        while (a.count.load() < subscribers && steady_clock::now() - start < seconds(5))
            std::this_thread::yield();
        us.push_back(double(a.last_latency_ns.load()) / 1000);
    }
    return us;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t connections = 2000, broadcasts = 200, publications = 100000;
    int calls = 5000;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--connections") connections = std::stoul(argv[i + 1]);
        if (a == "--broadcasts") broadcasts = std::stoul(argv[i + 1]);
        if (a == "--calls") calls = std::stoi(argv[i + 1]);
        if (a == "--publications") publications = std::stoul(argv[i + 1]);
    }
    spdlog::set_level(spdlog::level::warn);
    Nats nats;
    std::vector<std::unique_ptr<Node>> nodes;
    for (int i = 0; i < 4; ++i)
        nodes.push_back(std::make_unique<Node>(nats, "n" + std::to_string(i)));
    while (nodes[0]->cluster.nodes().size() < 4) std::this_thread::sleep_for(milliseconds(10));

    // (1) route request against echo, one at a time on one connection.
    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(nodes[0]->server.ports()[0])};
    co.server_public_key = nodes[0]->server.public_key();
    Client client(co);
    client.connect().value();
    auto conn = client.connection();
    std::vector<double> route_us, echo_us;
    for (int round = 0; round < 2; ++round) {  // the first round warms up
        route_us.clear();
        echo_us.clear();
        double echo = rate_of(
            calls, [&] { conn.call("echo", "x", use_wait).value(); }, echo_us);
        double route = rate_of(
            calls, [&] { conn.call(Cluster::route_command, DataFrame(), use_wait).value(); },
            route_us);
        if (round == 1)
            std::printf(
                "route: %.0f/s p50 %.1fus p99 %.1fus; echo: %.0f/s p50 %.1fus; route/echo %.2f\n",
                route, percentile(route_us, 0.5), percentile(route_us, 0.99), echo,
                percentile(echo_us, 0.5), route / echo);
    }

    // (2) broadcast: 4 nodes through NATS against one node locally, the same N connections.
    Runtime rt(RuntimeOptions{2});
    double cluster_rate, local_rate;
    {
        std::vector<Server*> all;
        for (auto& n : nodes) all.push_back(&n->server);
        Listeners spread(rt, all, connections);
        fan_out(spread, broadcasts / 4,
                [&](auto& p) { (void)nodes[0]->cluster.broadcast("news", p); });
        cluster_rate = fan_out(spread, broadcasts, [&](auto& p) {
            while (!nodes[0]->cluster.broadcast("news", p)) std::this_thread::yield();
        });
    }
    {
        // The baseline is one node as it would run alone: an IO thread per core.
        auto options = server_options();
        options.io_threads = 0;
        Server single(options);
        single.start().value();
        Listeners one(rt, {&single}, connections);
        fan_out(one, broadcasts / 4, [&](auto& p) { (void)single.broadcast("news", p); });
        local_rate = fan_out(one, broadcasts, [&](auto& p) {
            while (!single.broadcast("news", p)) std::this_thread::yield();
        });
    }
    std::printf(
        "broadcast 64 B x %zu to %zu connections: 4 nodes over NATS %.0f deliveries/s, one node "
        "%.0f/s; cluster/local %.2f\n",
        broadcasts, connections, cluster_rate, local_rate, cluster_rate / local_rate);

    // (3) channels: a publisher on n0, one subscriber on each of n1..n3, against nats.c alone.
    constexpr std::size_t subscribers = 3;
    Arrivals channel;
    std::vector<std::unique_ptr<Client>> subs;
    for (std::size_t i = 1; i <= subscribers; ++i) {
        auto& node = *nodes[i];
        ClientOptions o;
        o.endpoints = {"127.0.0.1:" + std::to_string(node.server.ports()[0])};
        o.server_public_key = node.server.public_key();
        subs.push_back(std::make_unique<Client>(rt, o));
        subs.back()->commands().direct_console(
            "pub", [&](const Request&, std::string_view t) { channel.on(t); });
        subs.back()->connect().value();
        while (node.server.connection_count() == 0) std::this_thread::sleep_for(milliseconds(1));
        std::promise<Result<void>> subscribed;
        node.cluster
            .subscribe(node.server.connection_ids().at(0), "bench.room",
                       [&](Result<void> r) { subscribed.set_value(r); })
            .value();
        subscribed.get_future().get().value();
    }
    auto publish = [&](const std::string& p) {
        while (!nodes[0]->cluster.publish("bench.room", "pub", p)) std::this_thread::yield();
    };
    constexpr std::size_t window = 1000;
    stream(channel, publications / 10, subscribers, window, publish);  // warm-up
    double channel_rate = stream(channel, publications, subscribers, window, publish);
    auto channel_us = one_at_a_time(channel, 2000, subscribers, publish);

    Arrivals raw;
    natsConnection* publisher = nullptr;
    std::vector<natsConnection*> raw_subs(subscribers);
    std::vector<natsSubscription*> raw_subscriptions(subscribers);
    // The publisher writes each message at once, as the cluster's links do (nats_send_asap).
    natsOptions* send_asap = nullptr;
    natsOptions_Create(&send_asap);
    natsOptions_SetURL(send_asap, nats.url().c_str());
    natsOptions_SetSendAsap(send_asap, true);
    if (natsConnection_Connect(&publisher, send_asap) != NATS_OK) return 1;
    natsOptions_Destroy(send_asap);
    for (std::size_t i = 0; i < subscribers; ++i) {
        if (natsConnection_ConnectTo(&raw_subs[i], nats.url().c_str()) != NATS_OK) return 1;
        natsConnection_Subscribe(
            &raw_subscriptions[i], raw_subs[i], "raw.room",
            [](natsConnection*, natsSubscription*, natsMsg* m, void* a) {
                static_cast<Arrivals*>(a)->on(
                    std::string_view(natsMsg_GetData(m), std::size_t(natsMsg_GetDataLength(m))));
                natsMsg_Destroy(m);
            },
            &raw);
        natsSubscription_SetPendingLimits(raw_subscriptions[i], -1, -1);
        natsConnection_Flush(raw_subs[i]);
    }
    auto raw_publish = [&](const std::string& p) {
        natsConnection_Publish(publisher, "raw.room", p.data(), int(p.size()));
    };
    stream(raw, publications / 10, subscribers, window, raw_publish);
    double raw_rate = stream(raw, publications, subscribers, window, raw_publish);
    auto raw_us = one_at_a_time(raw, 2000, subscribers, raw_publish);
    for (std::size_t i = 0; i < subscribers; ++i) {
        natsSubscription_Destroy(raw_subscriptions[i]);
        natsConnection_Destroy(raw_subs[i]);
    }
    natsConnection_Destroy(publisher);
    std::printf(
        "channel 64 B x %zu, 1 publisher node -> 1 subscriber on each of %zu other nodes: %.0f "
        "deliveries/s, p50 %.0fus p99 %.0fus; nats.c pub->sub alone %.0f/s, p50 %.0fus p99 "
        "%.0fus; rate channel/nats %.2f\n",
        publications, subscribers, channel_rate, percentile(channel_us, 0.5),
        percentile(channel_us, 0.99), raw_rate, percentile(raw_us, 0.5), percentile(raw_us, 0.99),
        channel_rate / raw_rate);
    return 0;
}
