// Cluster nodes over a real nats-server on a loopback port: membership and leaving, expiry of a
// silent node, routing (least loaded, never draining), a cluster client moved to where it is
// sent, broadcast to every connection of every node exactly once, NATS going away and coming
// back, and bad input on cluster subjects.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <atomic>
#include <cmath>
#include <future>
#include <map>
#include <mutex>
#include <vector>

#include "cluster/messages.hpp"
#include "cluster/nats_server.hpp"
#include "cluster/node.hpp"
#include "hawser/cluster.hpp"
#include "integration/support.hpp"

namespace hawser::test {
namespace {

TEST(Cluster, NodesSeeEachOtherAndALeavingNodeIsDroppedAtOnce) {
    NatsServer nats;
    // Expiry far away: only the leave message can drop a node within this test.
    auto slow_expiry = [](ClusterOptions& c) { c.node_expiry = 60s; };
    Node a(nats, "a", slow_expiry), b(nats, "b", slow_expiry);
    auto c = std::make_unique<Node>(nats, "c", slow_expiry);
    ASSERT_TRUE(sees(a.cluster, 3));
    ASSERT_TRUE(sees(b.cluster, 3));
    ASSERT_TRUE(sees(c->cluster, 3));
    auto names = a.cluster.nodes();
    EXPECT_EQ(names[0].name, "a");
    EXPECT_EQ(names[1].name, "b");
    EXPECT_EQ(names[2].name, "c");
    EXPECT_EQ(names[2].endpoints.size(), 1u);
    EXPECT_EQ(names[2].public_key, c->server.public_key());
    c.reset();  // stops: says it leaves
    EXPECT_TRUE(sees(a.cluster, 2));
    EXPECT_TRUE(sees(b.cluster, 2));
}

TEST(Cluster, ASilentNodeExpires) {
    NatsServer nats;
    Node a(nats, "a");
    RawNats raw(nats);
    raw.publish("test.node.ghost", detail::encode_report(fake_node("ghost", 10), false));
    ASSERT_TRUE(sees(a.cluster, 2));
    // It never reports again and never says it leaves (as after a kill -9): only expiry
    // (node_expiry, 1 s here) can drop it.
    ASSERT_TRUE(sees(a.cluster, 1));
    EXPECT_EQ(a.cluster.nodes()[0].name, "a");
}

// A node that reports again while this node's gone handlers for it still run (a slow handler
// on the cluster thread, the report on a NATS thread) is joined after it is gone, as the
// registry changed: not joined first and then gone while it is there.
TEST(Cluster, JoinedAndGoneComeInTheOrderTheRegistryChanged) {
    NatsServer nats;
    std::promise<void> release;
    auto released = release.get_future().share();
    Slot<bool> gone_handler_runs;
    std::mutex mu;
    std::vector<std::string> events;
    auto record = [&](std::string e) {
        std::lock_guard lock(mu);
        events.push_back(std::move(e));
    };
    Node a(nats, "a", {}, [&](Node& n) {
        n.cluster.on_node_gone([&, released](const std::string& node) {
            if (node != "ghost") return;
            gone_handler_runs.set(true);
            released.wait();
            record("gone");  // what the handler did, once done
        });
        n.cluster.on_node_joined([&](const std::string& node) {
            if (node == "ghost") record("joined");
        });
    });
    // Let go whatever happens: a failed assertion must not leave the cluster thread held.
    struct Release {
        std::promise<void>& p;
        ~Release() {
            try {
                p.set_value();
            } catch (const std::future_error&) {  // already
            }
        }
    } release_at_end{release};
    RawNats raw(nats);
    raw.publish("test.node.ghost", detail::encode_report(fake_node("ghost", 10), false));
    // Silent past its expiry: gone, and its handler holds the cluster thread.
    gone_handler_runs.get();
    auto back = fake_node("ghost", 10);
    back.sequence = 2;
    raw.publish("test.node.ghost", detail::encode_report(back, false));
    ASSERT_TRUE(sees(a.cluster, 2));  // in the registry again
    release.set_value();
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mu);
        return events.size() >= 3;
    }));
    std::lock_guard lock(mu);  // (it may go silent, and be gone, again meanwhile)
    EXPECT_EQ(std::vector<std::string>(events.begin(), events.begin() + 3),
              (std::vector<std::string>{"joined", "gone", "joined"}));
}

TEST(Cluster, ANodeThatReportsLessOftenIsWaitedForLonger) {
    NatsServer nats;
    Node a(nats, "a");
    RawNats raw(nats);
    // Two nodes that go silent at once (a kill -9): one said its next report comes in 2 s, as
    // a node of a big cluster does, the other said nothing. The expiry is 1 s for a 100 ms
    // interval; for the first it is stretched as much: 20 s.
    auto far = fake_node("far", 10);
    far.report_period = 2s;
    raw.publish("test.node.far", detail::encode_report(far, false));
    raw.publish("test.node.near", detail::encode_report(fake_node("near", 10), false));
    ASSERT_TRUE(sees(a.cluster, 3));
    ASSERT_TRUE(sees(a.cluster, 2));  // "near" expired: its 1 s has passed
    auto nodes = a.cluster.nodes();
    EXPECT_EQ(nodes[1].name, "far");
    EXPECT_EQ(nodes[1].report_period, 2s);
}

TEST(Cluster, EachNodeHearsAtMostItsShareOfReports) {
    NatsServer nats;
    // Three nodes, each to hear at most 2 reports a second: each reports every 1.5 s instead of
    // every 100 ms, says so, and the others wait for it past their 1 s node_expiry.
    std::atomic<int> gone{0};
    auto two = [](ClusterOptions& c) { c.reports_heard_per_second = 2; };
    auto count_gone = [&](Node& n) { n.cluster.on_node_gone([&](const std::string&) { ++gone; }); };
    Node a(nats, "a", two, count_gone), b(nats, "b", two, count_gone),
        c(nats, "c", two, count_gone);
    ASSERT_TRUE(sees(a.cluster, 3));
    auto all_say = [&](Node& n) {
        auto nodes = n.cluster.nodes();
        return nodes.size() == 3 && std::all_of(nodes.begin(), nodes.end(),
                                                [](auto& i) { return i.report_period == 1500ms; });
    };
    ASSERT_TRUE(eventually([&] { return all_say(a) && all_say(b) && all_say(c); }));
    auto sent = a.cluster.stats().reports_sent;
    auto heard = a.cluster.stats().reports_received;
    // Six more reports from b and c (three periods each, 4.5 s): a sent about as many of its
    // own (at the interval it would have sent 45), and nobody was dropped meanwhile.
    ASSERT_TRUE(eventually([&] { return a.cluster.stats().reports_received >= heard + 6; }, 20s));
    EXPECT_LE(a.cluster.stats().reports_sent - sent, 5u);
    EXPECT_EQ(gone.load(), 0);
    EXPECT_EQ(a.cluster.nodes().size(), 3u);
}

TEST(Cluster, ANodeReportsAtTheIntervalWhileAnOlderNodeIsThere) {
    NatsServer nats;
    // An older release does not say its period and drops any node silent past its own expiry:
    // while one is in the cluster, the others do not stretch theirs.
    // With h = 1 a node alone reports every second; the older node stays 5 s in its registry.
    auto one = [](ClusterOptions& c) {
        c.reports_heard_per_second = 1;
        c.node_expiry = 5s;
    };
    Node a(nats, "a", one);
    ASSERT_TRUE(eventually([&] {
        auto nodes = a.cluster.nodes();
        return !nodes.empty() && nodes[0].report_period == 1s;
    }));
    RawNats raw(nats);
    auto old = fake_node("old", 10);  // says no period, as an older node's report
    raw.publish("test.node.old", detail::encode_report(old, false));
    // It reports at once (not a second later, when the older node would have dropped it
    // after its own expiry) and says the interval.
    ASSERT_TRUE(eventually([&] {
        auto nodes = a.cluster.nodes();
        return nodes.size() == 2 && nodes[0].name == "a" && nodes[0].report_period == 100ms;
    }));
    // Once it is gone (expired), two nodes that both say their period stretch to 2 s.
    ASSERT_TRUE(sees(a.cluster, 1));
    Node b(nats, "b", one);
    EXPECT_TRUE(eventually([&] {
        auto nodes = a.cluster.nodes();
        return nodes.size() == 2 && nodes[0].report_period == 2s;
    }));
}

TEST(Cluster, RoutingFavoursFreeCapacityAndSkipsDrainingNodes) {
    NatsServer nats;
    Node small(nats, "small", [](ClusterOptions& c) { c.capacity = 10; });
    Node big(nats, "big", [](ClusterOptions& c) { c.capacity = 100000; });
    Node draining(nats, "draining", [](ClusterOptions& c) { c.capacity = 100000; });
    draining.cluster.set_draining(true);
    ASSERT_TRUE(eventually([&] {
        auto nodes = small.cluster.nodes();
        return nodes.size() == 3 && nodes[1].draining;  // sorted: big, draining, small
    }));
    std::map<std::string, int> picks;
    for (int i = 0; i < 200; ++i) {
        auto r = small.cluster.route();
        ASSERT_TRUE(r) << r.error().message;
        ++picks[r->name];
    }
    EXPECT_EQ(picks["draining"], 0);
    EXPECT_LE(picks["small"], 10);  // never past its capacity, by its own count
    EXPECT_GE(picks["big"], 190);
}

TEST(Cluster, AClusterClientIsMovedWhereItIsSent) {
    NatsServer nats;
    Node entry(nats, "entry", no_redirects);  // routed by its answer, not by a redirect
    Node target(nats, "target");
    entry.cluster.set_draining(true);  // so the only place to go is `target`
    ASSERT_TRUE(eventually([&] {
        auto nodes = entry.cluster.nodes();
        return nodes.size() == 2 && nodes[0].draining;
    }));
    auto options = client_for(entry.server);  // pins the entry's key only
    options.cluster = true;
    Client client(options);
    ASSERT_TRUE(client.connect());
    auto where = client.connection().call("where", "", use_wait);
    ASSERT_TRUE(where) << where.error().message;
    EXPECT_EQ(*where, "target");
    EXPECT_TRUE(eventually([&] { return entry.server.connection_count() == 0; }));
    EXPECT_EQ(target.server.connection_count(), 1u);
}

TEST(Cluster, APlainClientStaysWhereItConnected) {
    NatsServer nats;
    Node entry(nats, "entry", no_redirects);
    Node target(nats, "target");
    entry.cluster.set_draining(true);
    Client client(client_for(entry.server));  // cluster flag off
    ASSERT_TRUE(client.connect());
    auto where = client.connection().call("where", "", use_wait);
    ASSERT_TRUE(where);
    EXPECT_EQ(*where, "entry");
}

TEST(Cluster, AFullOrDrainingNodeRedirectsNewConnections) {
    NatsServer nats;
    Node entry(nats, "entry", [](ClusterOptions& c) { c.capacity = 1; });
    Node target(nats, "target");
    ASSERT_TRUE(sees(entry.cluster, 2));
    ASSERT_TRUE(sees(target.cluster, 2));
    Client first(client_for(entry.server));  // room for one: it stays
    ASSERT_TRUE(first.connect());
    EXPECT_EQ(first.connection().call("where", "", use_wait).value(), "entry");
    // Full: a cluster client is told where to go while it asks for a route, and goes.
    auto cluster_client = client_for(entry.server);
    cluster_client.cluster = true;
    Client second(cluster_client);
    ASSERT_TRUE(second.connect());
    EXPECT_EQ(second.connection().call("where", "", use_wait).value(), "target");
    EXPECT_EQ(entry.cluster.stats().redirects, 1u);
    // A plain client asks nothing: the redirect comes just after its handshake, and one that
    // reconnects goes where it is sent.
    auto plain = client_for(entry.server);
    plain.reconnect.enabled = true;
    Client another(plain);
    ASSERT_TRUE(another.connect());
    EXPECT_TRUE(eventually([&] {
        auto where = another.connection().call("where", "", use_wait);
        return where && *where == "target";
    }));
    EXPECT_EQ(entry.cluster.stats().redirects, 2u);
    EXPECT_EQ(entry.server.connection_count(), 1u);
    // Draining, and the only other node full: nowhere better, so it stays.
    target.cluster.set_draining(true);
    ASSERT_TRUE(eventually([&] {
        auto nodes = target.cluster.nodes();
        return nodes.size() == 2 && nodes[1].draining && nodes[0].connections == 1 &&
               nodes[0].free_capacity() == 0;
    }));
    Client third(client_for(target.server));
    ASSERT_TRUE(third.connect());
    EXPECT_EQ(third.connection().call("where", "", use_wait).value(), "target");
    EXPECT_EQ(target.cluster.stats().redirects, 0u);
}

TEST(Cluster, ARedirectToADeadNodeBacksOffInsteadOfLooping) {
    NatsServer nats;
    Node entry(nats, "entry", [](ClusterOptions& c) { c.capacity = 1; });
    Client first(client_for(entry.server));
    ASSERT_TRUE(first.connect());
    // A node that died a moment ago: still in the registry, with room, nothing listening.
    RawNats raw(nats);
    raw.publish(
        "test.node.dead",
        detail::encode_report(fake_node("dead", 1000000, entry.server.public_key()), false));
    ASSERT_TRUE(sees(entry.cluster, 2));
    auto plain = client_for(entry.server);
    plain.reconnect.enabled = true;
    plain.reconnect.min_delay = 50ms;
    Client second(plain);
    (void)second.connect();  // redirected to "dead", back to the entry, redirected again ...
    // ... until "dead" expires (node_expiry, 1 s here); then the full entry, with nowhere
    // better, keeps it.
    ASSERT_TRUE(eventually([&] {
        auto where = second.connection().call("where", "", use_wait);
        return where && *where == "entry";
    }));
    // With backoff a few rounds, not a handshake storm against the full node.
    EXPECT_LT(entry.server.stats().handshakes, 40u);
}

TEST(Cluster, BroadcastReachesEveryConnectionOnEveryNodeOnce) {
    NatsServer nats;
    std::vector<std::unique_ptr<Node>> nodes;
    for (auto name : {"n1", "n2", "n3"}) nodes.push_back(std::make_unique<Node>(nats, name));
    for (auto& n : nodes) ASSERT_TRUE(sees(n->cluster, 3));
    struct Listener {
        std::unique_ptr<Client> client;
        std::atomic<int> news{0}, ends{0};
    };
    std::vector<std::unique_ptr<Listener>> listeners;
    for (auto& n : nodes)
        for (int i = 0; i < 2; ++i) {
            auto l = std::make_unique<Listener>();
            l->client = std::make_unique<Client>(client_for(n->server));
            auto* raw = l.get();
            l->client->commands().direct_console("news", [raw](const Request&, std::string_view t) {
                if (t == "hello") ++raw->news;
            });
            l->client->commands().direct_console(
                "end", [raw](const Request&, std::string_view) { ++raw->ends; });
            ASSERT_TRUE(l->client->connect());
            listeners.push_back(std::move(l));
        }
    for (auto& n : nodes)
        ASSERT_TRUE(eventually([&] { return n->server.connection_count() == 2; }));
    // From different nodes; every connection everywhere gets each exactly once.
    ASSERT_TRUE(nodes[0]->cluster.broadcast("news", "hello"));
    ASSERT_TRUE(nodes[1]->cluster.broadcast("news", "hello"));
    ASSERT_TRUE(nodes[2]->cluster.broadcast("news", "hello", false));
    // NATS keeps each publisher's order and a connection keeps the node's: once the marker from
    // every node has arrived, nothing else is on its way.
    for (auto& n : nodes) ASSERT_TRUE(n->cluster.broadcast("end", ""));
    for (auto& l : listeners) {
        ASSERT_TRUE(eventually([&] { return l->ends.load() == 3; }));
        EXPECT_EQ(l->news.load(), 3);
    }
    EXPECT_EQ(nodes[0]->cluster.stats().broadcasts_received, 6u);
}

TEST(Cluster, WithoutNatsANodeServesLocallyAndClusterOperationsFailAtOnce) {
    NatsServer nats;
    Node a(nats, "a"), b(nats, "b");
    ASSERT_TRUE(sees(a.cluster, 2));
    Client client(client_for(a.server));
    ASSERT_TRUE(client.connect());

    nats.stop();
    // Both of the node's NATS connections must have seen it go: connected() turns false with
    // the first, and a broadcast goes out on the other (whose loss `nats_disconnects` counts).
    ASSERT_TRUE(eventually(
        [&] { return !a.cluster.connected() && a.cluster.stats().nats_disconnects > 0; }));
    auto started = std::chrono::steady_clock::now();
    auto r = a.cluster.broadcast("news", "x");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::cluster_unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);     // fails, never hangs
    auto where = client.connection().call("where", "", use_wait);  // local service goes on
    ASSERT_TRUE(where);
    EXPECT_EQ(*where, "a");
    // Cut off, `a` forgets `b` at expiry and routes to itself.
    ASSERT_TRUE(sees(a.cluster, 1));
    auto route = a.cluster.route();
    ASSERT_TRUE(route);
    EXPECT_EQ(route->name, "a");

    nats.restart();  // same port: both nodes reconnect and report by themselves
    EXPECT_TRUE(eventually([&] { return a.cluster.connected() && b.cluster.connected(); }, 20s));
    EXPECT_TRUE(sees(a.cluster, 2));
    EXPECT_TRUE(sees(b.cluster, 2));
    EXPECT_TRUE(a.cluster.broadcast("news", "x"));
    EXPECT_GE(a.cluster.stats().nats_disconnects, 1u);
}

TEST(Cluster, BadInputOnClusterSubjectsIsDroppedAndCounted) {
    NatsServer nats;
    Node a(nats, "a");
    Client client(client_for(a.server));
    std::atomic<int> got{0};
    client.commands().direct_console("news", [&](const Request&, std::string_view) { ++got; });
    ASSERT_TRUE(client.connect());
    RawNats raw(nats);
    raw.publish("test.node.x", "garbage");
    raw.publish("test.node.impostor",  // names another node than its subject
                detail::encode_report(fake_node("other", 1), false));
    raw.publish("test.broadcast", "\x01");
    raw.publish("test.broadcast",
                detail::encode_broadcast({"bad.origin", "news", false, true, "spoofed"}));
    raw.publish("test.broadcast",
                detail::encode_broadcast({"a", "news", true, true, "not a dataframe \xc1"}));
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().dropped_messages == 5; }));
    EXPECT_EQ(a.cluster.nodes().size(), 1u);
    // Still working: a real broadcast gets through.
    ASSERT_TRUE(a.cluster.broadcast("news", "real"));
    EXPECT_TRUE(eventually([&] { return got.load() == 1; }));
}

TEST(Cluster, AnotherProcessUnderTheSameNodeNameIsDetected) {
    NatsServer nats;
    Node a(nats, "a");
    RawNats raw(nats);
    // Its own echoed reports are not clashes.
    ASSERT_TRUE(eventually([&] { return a.cluster.stats().reports_sent >= 3; }));
    EXPECT_EQ(a.cluster.stats().name_clashes, 0u);
    raw.publish("test.node.a", detail::encode_report(fake_node("a", 10), false, 12345));
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().name_clashes == 1; }));
    EXPECT_EQ(a.cluster.nodes().size(), 1u);
}

TEST(Cluster, AClientSentToAnUnreachableNodeStaysOnAnEntryNode) {
    NatsServer nats;
    Node entry(nats, "entry", no_redirects);
    entry.cluster.set_draining(true);
    // A node that died a moment ago: still in the registry, with all the room there is.
    RawNats raw(nats);
    raw.publish(
        "test.node.dead",
        detail::encode_report(fake_node("dead", 1000000, entry.server.public_key()), false));
    ASSERT_TRUE(eventually([&] {
        auto r = entry.cluster.route();
        return r && r->name == "dead";
    }));
    auto options = client_for(entry.server);
    options.cluster = true;
    Client client(options);
    ASSERT_TRUE(client.connect());
    auto where = client.connection().call("where", "", use_wait);
    ASSERT_TRUE(where) << where.error().message;
    EXPECT_EQ(*where, "entry");
}

TEST(Cluster, ANodeOnAWildcardAddressMustSayWhereClientsReachIt) {
    NatsServer nats;
    auto options = loopback_server(1);
    options.listen = {"0.0.0.0:0"};
    {
        Server server(options);
        Cluster cluster(server, cluster_options(nats, "wild"));
        ASSERT_TRUE(server.start());
        auto r = cluster.start();
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find("public_endpoints"), std::string::npos)
            << r.error().message;
    }
    Server server(options);
    auto c = cluster_options(nats, "wild");
    c.public_endpoints = {"192.0.2.7:7100"};
    Cluster cluster(server, c);
    ASSERT_TRUE(server.start());
    ASSERT_TRUE(cluster.start());
    EXPECT_EQ(cluster.nodes().at(0).endpoints, c.public_endpoints);
}

// A free loopback port, for the routes of a NATS cluster (they are named before they listen).
int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("no free port");
    ::close(fd);
    return ntohs(a.sin_port);
}

TEST(Cluster, LosingOneServerOfA3ServerNatsClusterIsInvisibleToClients) {
    std::vector<int> route_ports{free_port(), free_port(), free_port()};
    std::string routes;
    for (auto p : route_ports)
        routes += (routes.empty() ? "" : ",") + ("nats://127.0.0.1:" + std::to_string(p));
    std::vector<std::unique_ptr<NatsServer>> servers;
    for (auto p : route_ports)
        servers.push_back(std::make_unique<NatsServer>(
            0,
            std::vector<std::string>{"--cluster_name", "hawser-test", "--cluster",
                                     "nats://127.0.0.1:" + std::to_string(p), "--routes", routes}));
    // Each node starts on a different server, and knows all three.
    auto urls_from = [&](std::size_t first) {
        std::vector<std::string> urls;
        for (std::size_t i = 0; i < servers.size(); ++i)
            urls.push_back(servers[(first + i) % servers.size()]->url());
        return urls;
    };
    Node a(*servers[0], "a", [&](ClusterOptions& c) { c.nats_urls = urls_from(0); });
    Node b(*servers[1], "b", [&](ClusterOptions& c) { c.nats_urls = urls_from(1); });
    ASSERT_TRUE(sees(a.cluster, 2)) << "the NATS servers did not form a cluster";
    ASSERT_TRUE(sees(b.cluster, 2));
    Client client(client_for(b.server));
    std::atomic<int> got{0};
    client.commands().direct_console("news", [&](const Request&, std::string_view) { ++got; });
    ASSERT_TRUE(client.connect());

    servers[0]->kill();  // the server `a` is most likely on
    auto ok = [&] { return a.cluster.connected() && b.cluster.connected(); };
    ASSERT_TRUE(eventually(ok, 20s));
    // Nothing expired, nothing disconnected a client, and broadcasts from `a` reach `b`'s
    // again. (Both may have moved: nats.c picks servers at random, so `b`'s interest may
    // still be on its way between the NATS servers when `a` first publishes, and NATS drops
    // what nobody is known to want: publish until one arrives.)
    EXPECT_TRUE(eventually([&] {
        (void)a.cluster.broadcast("news", "x");
        return got.load() >= 1;
    }));
    EXPECT_EQ(a.cluster.nodes().size(), 2u);
    EXPECT_EQ(b.cluster.nodes().size(), 2u);
    EXPECT_TRUE(client.connected());
    EXPECT_EQ(b.server.stats().closed(CloseReason::peer_closed), 0u);
}

TEST(Cluster, BadOptionsAreRefusedBeforeAnythingRuns) {
    auto check = [](auto change) {
        ClusterOptions c;
        change(c);
        return Cluster::validate(c);
    };
    EXPECT_TRUE(check([](ClusterOptions&) {}));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.nats_urls.clear(); }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.nats_urls = {""}; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.nats_urls = {"nats://127.0.0.1:abc"}; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.nats_urls = {"nats://h:99999999999"}; }));
    EXPECT_TRUE(check([](ClusterOptions& c) {
        c.nats_urls = {"nats://u:p@127.0.0.1:4222", "[::1]:4222", "tls://host", "h:"};
    }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.node_name = "a.b"; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.subject_prefix = "a..b"; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.subject_prefix = "a.*"; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.node_expiry = c.report_interval; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.reports_heard_per_second = -1; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.reports_heard_per_second = std::nan(""); }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.reports_heard_per_second = 0.01; }));
    EXPECT_TRUE(check([](ClusterOptions& c) { c.reports_heard_per_second = 0; }));
    EXPECT_FALSE(check([](ClusterOptions& c) {  // longer than a report may say
        c.report_interval = 2h;
        c.node_expiry = 4h;
    }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.public_endpoints = {"nonsense"}; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.max_publish_queue_bytes = 1000; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.nats_write_deadline = 0ms; }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.channel_write_deadline = 61s; }));
    EXPECT_TRUE(check([](ClusterOptions& c) { c.channel_write_deadline = 100ms; }));
    EXPECT_FALSE(check([](ClusterOptions& c) {
        c.nats_user = "u";
        c.nats_token = "t";
    }));
    EXPECT_FALSE(check([](ClusterOptions& c) { c.nats_nkey_seed_file = "seed"; }));
    Server server(loopback_server(1));
    ClusterOptions bad;
    bad.node_name = "has space";
    EXPECT_THROW(Cluster(server, bad), std::invalid_argument);
}

}  // namespace
}  // namespace hawser::test
