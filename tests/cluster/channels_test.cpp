// Channels over a real nats-server: a publication reaches every subscriber on every node once,
// in each publisher's order, and nobody else; a node holds a channel's NATS subscription only
// while it has a subscriber there, a subscribe/unsubscribe storm reaches NATS as its net change,
// clients subscribe themselves only when the hook allows, and limits and bad input are refused.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>

#include "cluster/messages.hpp"
#include "cluster/node.hpp"

namespace hawser::test {
namespace {

// A client that records every "msg" it gets ("<publisher>:<n>"), counts "end"s and answers
// "echo".
struct Listener {
    explicit Listener(Node& node) : client(client_for(node.server)) {
        client.commands().direct_console("msg", [this](const Request&, std::string_view t) {
            std::lock_guard lock(mu);
            got.emplace_back(t);
        });
        client.commands().direct_console("end",
                                         [this](const Request&, std::string_view) { ++ends; });
        client.commands().console(
            "echo", [](const Request&, std::string_view t) { return std::string(t); });
        auto before = node.server.connection_ids();
        EXPECT_TRUE(client.connect());
        EXPECT_TRUE(
            eventually([&] { return node.server.connection_ids().size() > before.size(); }));
        for (auto id : node.server.connection_ids())
            if (std::find(before.begin(), before.end(), id) == before.end()) this->id = id;
    }
    std::vector<std::string> messages() {
        std::lock_guard lock(mu);
        return got;
    }
    ConnectionId id = 0;
    std::mutex mu;
    std::vector<std::string> got;
    std::atomic<int> ends{0};
    // Last, so that it goes first: its handlers use the members above until it has stopped.
    Client client;
};

// Subscribes and waits until NATS has this node's interest.
void subscribe(Node& node, ConnectionId id, const std::string& channel) {
    Slot<Result<void>> done;
    ASSERT_TRUE(node.cluster.subscribe(id, channel, [&](Result<void> r) { done.set(r); }));
    auto r = done.get();
    ASSERT_TRUE(r) << r.error().message;
}

TEST(ClusterChannels, APublicationReachesEverySubscriberOnEveryNodeOnceAndInOrder) {
    NatsServer nats;
    std::vector<std::unique_ptr<Node>> nodes;
    for (auto name : {"n1", "n2", "n3"}) nodes.push_back(std::make_unique<Node>(nats, name));
    for (auto& n : nodes) ASSERT_TRUE(sees(n->cluster, 3));
    std::vector<std::unique_ptr<Listener>> in, out;
    for (auto& n : nodes) {
        for (int i = 0; i < 2; ++i) {
            in.push_back(std::make_unique<Listener>(*n));
            subscribe(*n, in.back()->id, "room.1");
            subscribe(*n, in.back()->id, "room.1");  // twice: still once
        }
        out.push_back(std::make_unique<Listener>(*n));  // in another channel only
        subscribe(*n, out.back()->id, "room.2");
    }
    EXPECT_EQ(nodes[0]->cluster.subscribers("room.1").size(), 2u);
    EXPECT_EQ(nodes[0]->cluster.channels_of(in[0]->id), std::vector<std::string>{"room.1"});
    constexpr int per_publisher = 50;
    for (int i = 0; i < per_publisher; ++i) {
        ASSERT_TRUE(nodes[0]->cluster.publish("room.1", "msg", "n1:" + std::to_string(i)));
        ASSERT_TRUE(nodes[1]->cluster.publish("room.1", "msg", "n2:" + std::to_string(i)));
    }
    for (auto& n : nodes) ASSERT_TRUE(n->cluster.publish("room.1", "end", ""));
    for (auto& n : nodes) ASSERT_TRUE(n->cluster.publish("room.2", "end", ""));
    for (auto& l : in) {
        // Each publisher's marker comes after its publications: once all three are in, nothing
        // else is on its way.
        ASSERT_TRUE(eventually([&] { return l->ends.load() == 3; }));
        std::map<std::string, int> next;
        auto got = l->messages();
        EXPECT_EQ(got.size(), 2u * per_publisher);
        for (auto& m : got) {
            auto colon = m.find(':');
            auto publisher = m.substr(0, colon);
            EXPECT_EQ(std::stoi(m.substr(colon + 1)), next[publisher]) << "out of order: " << m;
            ++next[publisher];
        }
    }
    for (auto& l : out) {
        ASSERT_TRUE(eventually([&] { return l->ends.load() == 3; }));
        EXPECT_TRUE(l->messages().empty());
    }
    auto s = nodes[2]->cluster.stats();
    EXPECT_EQ(s.channel_subscriptions, 2u);
    EXPECT_EQ(s.publications_received, 2u * per_publisher + 6);
    EXPECT_EQ(s.deliveries, 2 * (2u * per_publisher + 3) + 3);
}

TEST(ClusterChannels, InterestIsWithdrawnWhenTheLastLocalSubscriberLeaves) {
    NatsServer nats;
    Node a(nats, "a"), b(nats, "b");
    auto x = std::make_unique<Listener>(b);
    Listener y(b), marker(b);
    subscribe(b, x->id, "c");
    subscribe(b, y.id, "c");
    subscribe(b, marker.id, "m");
    EXPECT_EQ(b.cluster.stats().channel_subscriptions, 2u);
    ASSERT_TRUE(b.cluster.unsubscribe(y.id, "c"));
    ASSERT_TRUE(a.cluster.publish("c", "msg", "a:0"));
    ASSERT_TRUE(eventually([&] { return x->messages().size() == 1; }));
    EXPECT_TRUE(y.messages().empty());
    EXPECT_EQ(b.cluster.stats().channel_subscriptions, 2u);  // x is still in "c"

    x.reset();  // its connection closes: it leaves "c", the last of this node there
    ASSERT_TRUE(eventually([&] { return b.cluster.stats().channel_subscriptions == 1; }));
    EXPECT_TRUE(b.cluster.subscribers("c").empty());
    // The withdrawal is queued for NATS; a subscription confirmed after it says NATS has it.
    subscribe(b, marker.id, "m2");
    // NATS no longer sends "c" to b: after the marker on "m", b has seen nothing of "c".
    auto received = b.cluster.stats().publications_received;
    ASSERT_TRUE(a.cluster.publish("c", "msg", "a:1"));
    ASSERT_TRUE(a.cluster.publish("m", "end", ""));
    ASSERT_TRUE(eventually([&] { return marker.ends.load() == 1; }));
    EXPECT_EQ(b.cluster.stats().publications_received, received + 1);
    EXPECT_EQ(b.cluster.stats().interest_changes, 4u);  // c, m, c withdrawn, m2
}

TEST(ClusterChannels, ASubscribeStormReachesNatsAsItsNetChange) {
    NatsServer nats;
    Node a(nats, "a", [](ClusterOptions& c) { c.interest_batch = 200ms; });
    Listener l(a);
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(a.cluster.subscribe(l.id, "storm"));
        ASSERT_TRUE(a.cluster.unsubscribe(l.id, "storm"));
    }
    subscribe(a, l.id, "storm");
    auto batches = (std::chrono::steady_clock::now() - started) / 200ms + 1;
    // One batch makes at most one change per channel, whatever happened in between.
    EXPECT_LE(a.cluster.stats().interest_changes, std::uint64_t(batches));
    EXPECT_EQ(a.cluster.stats().channel_subscriptions, 1u);

    // Many channels: one subscription each while the connection is in them.
    for (int i = 0; i < 99; ++i)
        ASSERT_TRUE(a.cluster.subscribe(l.id, "many." + std::to_string(i)));
    subscribe(a, l.id, "many.99");  // the batch that carries it carries the others too
    EXPECT_EQ(a.cluster.stats().channel_subscriptions, 101u);
    l.client.close();
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().channel_subscriptions == 0; }));
}

TEST(ClusterChannels, ClientsSubscribeThemselvesOnlyWhereTheHookAllows) {
    NatsServer nats;
    Node open(nats, "open", {}, [](Node& n) {
        n.cluster.on_subscribe([](const Connection&, std::string_view channel) {
            return channel.starts_with("public.");
        });
    });
    Node closed(nats, "closed");  // no hook: clients may not subscribe themselves
    ASSERT_TRUE(sees(closed.cluster, 2));
    Listener l(open), m(closed);
    auto subscribe_self = [](Listener& who, std::string channel) {
        return who.client.connection().call(Cluster::subscribe_command, std::move(channel),
                                            use_wait);
    };
    auto r = subscribe_self(l, "public.news");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(subscribe_self(l, "private.x").error().code, Errc::not_allowed);
    EXPECT_EQ(subscribe_self(l, "bad..name").error().code, Errc::invalid_argument);
    EXPECT_EQ(subscribe_self(m, "public.news").error().code, Errc::not_allowed);
    // Without a hook, the configured prefixes decide (hawser-server's client_channel_prefixes).
    Node prefixed(nats, "prefixed",
                  [](ClusterOptions& c) { c.client_channel_prefixes = {"lobby:"}; });
    Listener p(prefixed);
    EXPECT_TRUE(subscribe_self(p, "lobby:1"));
    EXPECT_EQ(subscribe_self(p, "public.news").error().code, Errc::not_allowed);

    // What a client may not join it may not leave: the server put it there.
    ASSERT_TRUE(open.cluster.subscribe(l.id, "private.x"));
    EXPECT_EQ(l.client.connection()
                  .call(Cluster::unsubscribe_command, std::string("private.x"), use_wait)
                  .error()
                  .code,
              Errc::not_allowed);
    EXPECT_EQ(open.cluster.subscribers("private.x").size(), 1u);

    ASSERT_TRUE(closed.cluster.publish("public.news", "msg", "closed:0"));
    ASSERT_TRUE(eventually([&] { return l.messages().size() == 1; }));
    auto u = l.client.connection().call(Cluster::unsubscribe_command, std::string("public.news"),
                                        use_wait);
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_TRUE(open.cluster.subscribers("public.news").empty());
    EXPECT_TRUE(m.messages().empty());
}

TEST(ClusterChannels, ChannelsAndRemoteCallsResumeWhenNatsComesBack) {
    NatsServer nats;
    Node a(nats, "a"), b(nats, "b");
    ASSERT_TRUE(sees(a.cluster, 2));
    Listener l(b);
    subscribe(b, l.id, "room");
    auto address = b.cluster.address_of(l.id);

    nats.stop();
    // The membership and channel links notice on their own: wait for the channel link, with a
    // channel nobody is in, so that nothing sent before it noticed can reach a subscriber.
    ASSERT_TRUE(eventually([&] { return !a.cluster.publish("nobody", "msg", "a:-1"); }));
    EXPECT_EQ(a.cluster.publish("room", "msg", "a:0").error().code, Errc::cluster_unavailable);
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().nats_channel_disconnects >= 1; }));
    // A subscription made meanwhile stands, and says NATS does not have it yet.
    Listener late(b);
    Slot<Result<void>> pending;
    ASSERT_TRUE(b.cluster.subscribe(late.id, "room", [&](Result<void> r) { pending.set(r); }));
    EXPECT_EQ(pending.get().error().code, Errc::cluster_unavailable);

    nats.restart();  // the nodes reconnect, report and re-subscribe by themselves
    ASSERT_TRUE(eventually([&] { return a.cluster.connected() && b.cluster.connected(); }, 20s));
    ASSERT_TRUE(sees(a.cluster, 2));
    // Publications reach both subscribers again once NATS has b's subscription back: keep
    // publishing until one arrives, then the next one reaches both, once.
    ASSERT_TRUE(eventually(
        [&] {
            (void)a.cluster.publish("room", "msg", "a:probe");
            return !l.messages().empty() && !late.messages().empty();
        },
        20s));
    ASSERT_TRUE(a.cluster.publish("room", "end", ""));
    ASSERT_TRUE(eventually([&] { return l.ends.load() == 1 && late.ends.load() == 1; }));
    // Both were subscribers for every probe that reached b: the same ones, once each.
    EXPECT_EQ(l.messages(), late.messages());
    EXPECT_EQ(a.cluster.call(address, "echo", std::string("back"), use_wait).value(), "back");
}

TEST(ClusterChannels, ANodeNatsRefusesForGoodSaysSoInsteadOfRetrying) {
    NatsServer nats(0, {"--user", "hawser", "--pass", "one"});
    Node b(nats, "b", [](ClusterOptions& c) {
        c.nats_user = "hawser";
        c.nats_password = "one";
    });
    ASSERT_TRUE(eventually([&] { return b.cluster.connected(); }));
    Listener l(b);
    subscribe(b, l.id, "room");

    // The password changed under the node: nats.c is refused twice in a row and gives up.
    nats.restart_with({"--user", "hawser", "--pass", "two"});
    // Until the channel link has given up, a subscription is said to stand until NATS has it;
    // once it has, every one is told it takes no effect until a restart.
    int n = 0;
    auto refused_for_good = [&] {
        Slot<Result<void>> done;
        auto channel = "c" + std::to_string(n++);
        if (!b.cluster.subscribe(l.id, channel, [&](Result<void> r) { done.set(r); })) return false;
        auto r = done.get();
        return !r && r.error().code == Errc::cluster_unavailable &&
               r.error().message.find("for good") != std::string::npos &&
               r.error().message.find("takes no effect") != std::string::npos;
    };
    ASSERT_TRUE(eventually(refused_for_good, 20s));
    // None after it is tried again (one NATS refused before it may have been).
    auto retries = b.cluster.stats().interest_retries;
    EXPECT_TRUE(refused_for_good());
    EXPECT_EQ(b.cluster.stats().interest_retries, retries);
    EXPECT_FALSE(b.cluster.connected());
}

// A subscription and a remote call with a 300 ms deadline, made together while NATS reads
// nothing, and the order their callbacks came in. Declared before the nodes: a node that stops
// early still completes the callbacks.
struct SubscribeAndCall {
    std::mutex mu;
    std::vector<std::string> order;
    Slot<Result<void>> subscribed;
    Slot<Result<std::string>> answered;

    void start(Node& node, ConnectionId id, const std::string& channel,
               const ClusterAddress& address) {
        ASSERT_TRUE(node.cluster.subscribe(id, channel, [this](Result<void> r) {
            note("subscribed");
            subscribed.set(r);
        }));
        node.cluster.call(
            address, "echo", std::string("x"),
            [this](Result<std::string> r) {
                note("call");
                answered.set(r);
            },
            CallOptions{300ms});
    }
    void note(const char* what) {
        std::lock_guard lock(mu);
        order.emplace_back(what);
    }
    std::vector<std::string> taken() {
        std::lock_guard lock(mu);
        return order;
    }
};

TEST(ClusterChannels, ASubscriptionNatsHasNotConfirmedHoldsUpNothingElse) {
    SubscribeAndCall both;
    NatsServer nats;
    Node a(nats, "a"), b(nats, "b");
    ASSERT_TRUE(sees(a.cluster, 2));
    Listener here(a), there(b);
    auto address = b.cluster.address_of(there.id);

    // A stopped nats-server keeps its connections but reads nothing: the subscription waits
    // for NATS to confirm it, and meanwhile a remote call's deadline must pass on time.
    auto paused = nats.paused();
    ASSERT_NO_FATAL_FAILURE(both.start(a, here.id, "room", address));
    auto r = both.answered.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::timeout);
    nats.resume();
    auto s = both.subscribed.get();
    EXPECT_TRUE(s) << s.error().message;  // confirmed once NATS read it
    EXPECT_EQ(both.taken(), (std::vector<std::string>{"call", "subscribed"}));
    // And it holds: a publication reaches the subscriber.
    ASSERT_TRUE(b.cluster.publish("room", "msg", "b:0"));
    ASSERT_TRUE(eventually([&] { return here.messages() == std::vector<std::string>{"b:0"}; }));
}

// What publishing to a paused NATS came to: the last outcome, how many refusals came last in a
// row, and the slowest publish.
struct Stall {
    Result<void> last;
    int refused_in_a_row = 0;
    std::chrono::steady_clock::duration longest{};
};

// Publishes 4 KiB pieces to `channel` until 5,000 refusals in a row (or one that is not
// `overloaded`): refusals alone could come from a writer merely behind, a run of them says the
// channel link's writer is stuck in its write, holding nats.c's connection lock.
Stall publish_until_stalled(Node& node, const std::string& channel) {
    const std::string piece(4096, 'x');
    Stall s;
    for (int tries = 0; tries < 2'000'000 && s.refused_in_a_row < 5'000; ++tries) {
        auto t0 = std::chrono::steady_clock::now();
        s.last = node.cluster.publish(channel, "fill", piece);
        s.longest = std::max(s.longest, std::chrono::steady_clock::now() - t0);
        if (!s.last && s.last.error().code != Errc::overloaded) break;
        s.refused_in_a_row = s.last ? 0 : s.refused_in_a_row + 1;
    }
    return s;
}

TEST(ClusterChannels, PublishingFasterThanNatsReadsIsRefusedAtOnceNotWaitedFor) {
    NatsServer nats;
    Node a(nats, "a", [](ClusterOptions& c) { c.max_publish_queue_bytes = 64 << 10; });
    Node b(nats, "b");
    ASSERT_TRUE(sees(a.cluster, 2));
    Listener there(b);
    subscribe(b, there.id, "room");

    // A stopped nats-server reads nothing: the sockets' buffers fill, then the node's queue,
    // and from then on a publication is refused. nats.c's own publish would instead wait in
    // its write, holding the connection's lock, until its write deadline, on whatever thread
    // published (an IO thread, say).
    auto paused = nats.paused();
    // Well inside the 10 s write deadline, after which the link would reconnect and refuse as
    // cluster_unavailable: that ends it too.
    auto stall = publish_until_stalled(a, "room");
    ASSERT_FALSE(stall.last);
    EXPECT_EQ(stall.last.error().code, Errc::overloaded) << stall.last.error().message;
    EXPECT_EQ(stall.refused_in_a_row, 5'000);
    // Not a speed figure: a publish that waited for the stalled write would take seconds.
    EXPECT_LT(stall.longest, 1s);
    EXPECT_GT(a.cluster.stats().publish_queue_bytes, 0u);

    // NATS reads again, and publications flow as before.
    nats.resume();
    ASSERT_TRUE(eventually([&] {
        (void)a.cluster.publish("room", "msg", "a:after");
        auto got = there.messages();
        return std::find(got.begin(), got.end(), "a:after") != got.end();
    }));
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().publish_queue_bytes == 0; }));
}

TEST(ClusterChannels, InterestBehindAStuckChannelWriteHoldsUpNotTheClusterThread) {
    SubscribeAndCall both;
    NatsServer nats;
    // A write deadline far beyond the test's waits: the stuck write stays stuck throughout; and
    // b stays in a's routing while NATS is stopped (its reports do not come meanwhile).
    Node a(nats, "a", [](ClusterOptions& c) {
        c.max_publish_queue_bytes = 64 << 10;
        c.channel_write_deadline = 60s;
        c.node_expiry = 60s;
    });
    Node b(nats, "b");
    ASSERT_TRUE(sees(a.cluster, 2));
    Listener here(a), there(b);
    subscribe(b, there.id, "room");
    auto address = b.cluster.address_of(there.id);
    // A channel a held and withdrew: freeing its nats.c subscription takes the connection's
    // lock too, and must not fall to the cluster thread either.
    subscribe(a, here.id, "gone");
    ASSERT_TRUE(a.cluster.unsubscribe(here.id, "gone"));
    ASSERT_TRUE(eventually([&] { return a.cluster.stats().channel_subscriptions == 0; }));

    auto paused = nats.paused();
    auto stall = publish_until_stalled(a, "room");
    ASSERT_FALSE(stall.last);
    ASSERT_EQ(stall.refused_in_a_row, 5'000) << stall.last.error().message;

    // The cluster thread applies this interest while the channel link's writer holds nats.c's
    // connection lock. Had it subscribed on nats.c itself it would wait there, for up to the
    // write deadline, and fail nothing on time meanwhile: not the remote call at its 300 ms,
    // nor the subscription at its 5 s.
    ASSERT_NO_FATAL_FAILURE(both.start(a, here.id, "hall", address));
    auto r = both.answered.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::timeout);
    auto s = both.subscribed.get();
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, Errc::cluster_unavailable) << s.error().message;
    EXPECT_EQ(both.taken(), (std::vector<std::string>{"call", "subscribed"}));

    // NATS reads again: the queued subscription reaches it, and the subscriber hears what is
    // published there.
    nats.resume();
    ASSERT_TRUE(eventually([&] {
        (void)b.cluster.publish("hall", "msg", "b:hall");
        auto got = here.messages();
        return std::find(got.begin(), got.end(), "b:hall") != got.end();
    }));
}

TEST(ClusterChannels, LimitsAndBadInputAreRefused) {
    NatsServer nats;
    Node a(nats, "a", [](ClusterOptions& c) { c.max_channels_per_connection = 3; });
    Listener l(a);
    for (auto name : {"one", "two", "three"}) ASSERT_TRUE(a.cluster.subscribe(l.id, name));
    EXPECT_EQ(a.cluster.subscribe(l.id, "four").error().code, Errc::limit_exceeded);
    EXPECT_TRUE(a.cluster.subscribe(l.id, "one"));  // already in it: no new slot
    for (std::string bad : {"", ".a", "a.", "a..b", "a b", "a*", "a>", "\xc3\xa9"}) {
        EXPECT_EQ(a.cluster.subscribe(l.id, bad).error().code, Errc::invalid_argument) << bad;
        EXPECT_EQ(a.cluster.publish(bad, "msg", "x").error().code, Errc::invalid_argument) << bad;
    }
    EXPECT_EQ(a.cluster.subscribe(l.id, std::string(129, 'x')).error().code,
              Errc::invalid_argument);
    EXPECT_EQ(a.cluster.subscribe(987654321, "one").error().code, Errc::not_found);
    EXPECT_EQ(a.cluster.publish("one", "", "x").error().code, Errc::invalid_argument);

    subscribe(a, l.id, "one");  // NATS has the interest
    RawNats raw(nats);
    raw.publish("test.ch.one", "garbage");
    raw.publish("test.ch.one", detail::encode_broadcast({"a", "msg", true, true, "\xc1"}));
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().dropped_messages == 2; }));
    ASSERT_TRUE(a.cluster.publish("one", "msg", "a:0"));
    EXPECT_TRUE(eventually([&] { return l.messages().size() == 1; }));
}

}  // namespace
}  // namespace hawser::test
