// The cluster's pure parts: the node registry (expiry, ordering, routing odds) and the codecs of
// its NATS messages, with forged and broken input.
#include <gtest/gtest.h>

#include <map>

#include "cluster/messages.hpp"
#include "cluster/node_registry.hpp"

namespace hawser::detail {
namespace {

using namespace std::chrono_literals;
using Clock = NodeRegistry::Clock;

NodeInfo node(std::string name, std::uint64_t capacity, std::uint64_t connections,
              std::uint64_t sequence = 1) {
    NodeInfo n;
    n.name = std::move(name);
    n.endpoints = {"127.0.0.1:7100"};
    n.capacity = capacity;
    n.connections = connections;
    n.sequence = sequence;
    return n;
}

TEST(NodeRegistry, ExpiresSilentNodesOnly) {
    NodeRegistry r;
    auto t0 = Clock::time_point{} + 100s;
    EXPECT_TRUE(r.update(node("a", 10, 0), t0));
    EXPECT_TRUE(r.update(node("b", 10, 0), t0 + 2s));
    EXPECT_TRUE(r.expire(t0 + 2999ms, 3s, 1s).empty());
    auto gone = r.expire(t0 + 3s, 3s, 1s);
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0], "a");
    EXPECT_FALSE(r.contains("a"));
    EXPECT_TRUE(r.contains("b"));
}

TEST(NodeRegistry, WaitsLongerForANodeThatSaidItReportsLessOften) {
    NodeRegistry r;
    auto t0 = Clock::time_point{} + 100s;
    auto slow = node("slow", 10, 0);
    slow.report_period = 3500ms;  // a big cluster: 3.5 times the 1 s interval
    r.update(slow, t0);
    r.update(node("usual", 10, 0), t0);  // said nothing: the interval
    auto gone = r.expire(t0 + 3s, 3s, 1s);
    ASSERT_EQ(gone, std::vector<std::string>{"usual"});
    EXPECT_TRUE(r.expire(t0 + 10499ms, 3s, 1s).empty());
    EXPECT_EQ(r.expire(t0 + 10500ms, 3s, 1s), std::vector<std::string>{"slow"});
    // A period shorter than the interval never shortens the expiry.
    auto quick = node("quick", 10, 0);
    quick.report_period = 100ms;
    r.update(quick, t0);
    EXPECT_TRUE(r.expire(t0 + 2999ms, 3s, 1s).empty());
    // An expiry of a century stretched by an hour's period saturates instead of wrapping.
    auto hour = node("hour", 10, 0);
    hour.report_period = 1h;
    r.update(hour, t0);
    EXPECT_TRUE(r.expire(t0 + 24h, std::chrono::hours(24 * 365 * 100), 1s).empty());
}

TEST(NodeRegistry, KnowsWhetherEveryOtherNodeSaysItsPeriod) {
    NodeRegistry r;
    auto self = node("self", 10, 0);  // its own entry may not say yet: its first report
    r.update(self, {});
    EXPECT_TRUE(r.every_other_node_says_its_period("self"));
    auto peer = node("peer", 10, 0);
    peer.report_period = 1s;
    r.update(peer, {});
    EXPECT_TRUE(r.every_other_node_says_its_period("self"));
    r.update(node("old", 10, 0), {});  // an older release
    EXPECT_FALSE(r.every_other_node_says_its_period("self"));
    r.remove("old");
    EXPECT_TRUE(r.every_other_node_says_its_period("self"));
}

TEST(NodeRegistry, ReportPeriodKeepsWhatEachNodeHearsBounded) {
    EXPECT_EQ(report_period(1000ms, 16, 1), 1000ms);
    EXPECT_EQ(report_period(1000ms, 16, 16), 1000ms);
    EXPECT_EQ(report_period(1000ms, 16, 56), 3500ms);   // each hears 56 / 3.5 s = 16 a second
    EXPECT_EQ(report_period(1000ms, 16, 17), 1063ms);   // rounded up: never more than 16
    EXPECT_EQ(report_period(1000ms, 0, 1000), 1000ms);  // 0: no limit
    EXPECT_EQ(report_period(5000ms, 16, 56), 5000ms);   // never sooner than the interval
    EXPECT_EQ(report_period(1000ms, 0.1, 1'000'000), 3'600'000ms);  // at most an hour
}

TEST(NodeRegistry, IgnoresOldReportsButTakesARestart) {
    NodeRegistry r;
    auto t = Clock::time_point{};
    r.update(node("a", 10, 5, 7), t);
    EXPECT_FALSE(r.update(node("a", 10, 1, 6), t));  // late
    EXPECT_EQ(r.nodes()[0].connections, 5u);
    EXPECT_TRUE(r.update(node("a", 10, 0, 1), t));  // restarted
    EXPECT_EQ(r.nodes()[0].connections, 0u);
}

// A node restarted under its name whose first reports did not reach NATS (it was still
// connecting) starts past sequence 1: its run says it is another process.
TEST(NodeRegistry, TakesAnotherRunAsARestartWhateverItsSequence) {
    NodeRegistry r;
    auto t = Clock::time_point{};
    r.update(node("a", 10, 5, 5000), t, 111);
    EXPECT_FALSE(r.update(node("a", 10, 1, 4999), t, 111));  // late, same process
    EXPECT_TRUE(r.update(node("a", 10, 0, 3), t, 222));      // restarted
    EXPECT_EQ(r.nodes()[0].connections, 0u);
    EXPECT_FALSE(r.update(node("a", 10, 7, 2), t, 222));  // late, the new process
    EXPECT_TRUE(r.update(node("a", 10, 9, 4), t, 222));
    EXPECT_EQ(r.nodes()[0].connections, 9u);
    // The process it replaced is not news any more, however far its sequence got, and its
    // goodbye does not remove the new one.
    EXPECT_FALSE(r.update(node("a", 10, 1, 6000), t, 111));
    EXPECT_FALSE(r.remove("a", 111));
    EXPECT_EQ(r.nodes()[0].connections, 9u);
    EXPECT_TRUE(r.remove("a", 222));
    EXPECT_EQ(r.size(), 0u);
}

TEST(NodeRegistry, NeverRoutesToAFullOrDrainingNode) {
    NodeRegistry r;
    auto t = Clock::time_point{};
    r.update(node("full", 10, 10), t);
    auto draining = node("draining", 1000, 0);
    draining.draining = true;
    r.update(draining, t);
    auto mute = node("mute", 1000, 0);
    mute.endpoints.clear();
    r.update(mute, t);
    EXPECT_FALSE(r.pick(12345));
    r.update(node("ok", 10, 9), t);
    for (std::uint64_t draw : {0ull, 1ull, 999ull, ~0ull}) EXPECT_EQ(r.pick(draw)->name, "ok");
}

TEST(NodeRegistry, OddsFollowFreeCapacity) {
    NodeRegistry r;
    auto t = Clock::time_point{};
    r.update(node("busy", 1000, 900), t);  // 100 free
    r.update(node("idle", 1000, 100), t);  // 900 free
    std::map<std::string, int> got;
    for (std::uint64_t draw = 0; draw < 1000; ++draw) ++got[r.pick(draw)->name];
    // Draws cover the total once: exactly in proportion.
    EXPECT_EQ(got["busy"], 100);
    EXPECT_EQ(got["idle"], 900);
}

TEST(NodeRegistry, CountsRoutedClientsUntilTheNextReport) {
    NodeRegistry r;
    auto t = Clock::time_point{};
    r.update(node("a", 2, 0), t);
    r.routed_to("a");
    r.routed_to("a");
    EXPECT_FALSE(r.pick(0));  // full by our own count
    r.update(node("a", 2, 1, 2), t);
    EXPECT_TRUE(r.pick(0));
}

TEST(ClusterMessages, ReportRoundTrip) {
    auto n = node("node-1_x", 19000, 1234, 42);
    n.public_key = std::string(64, 'a');
    n.endpoints = {"10.0.0.1:7100", "[::1]:7100"};
    n.handshakes_per_second = 12.5;
    n.cpu = 0.75;
    n.memory_bytes = 1u << 30;
    n.draining = true;
    n.report_period = 3500ms;
    auto r = decode_report(encode_report(n, true));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->leaving);
    EXPECT_EQ(r->info.name, n.name);
    EXPECT_EQ(r->info.endpoints, n.endpoints);
    EXPECT_EQ(r->info.public_key, n.public_key);
    EXPECT_EQ(r->info.capacity, 19000u);
    EXPECT_EQ(r->info.connections, 1234u);
    EXPECT_EQ(r->info.sequence, 42u);
    EXPECT_DOUBLE_EQ(r->info.handshakes_per_second, 12.5);
    EXPECT_DOUBLE_EQ(r->info.cpu, 0.75);
    EXPECT_EQ(r->info.memory_bytes, 1u << 30);
    EXPECT_TRUE(r->info.draining);
    EXPECT_EQ(r->info.report_period, 3500ms);
}

TEST(ClusterMessages, AReportWithoutItsPeriodIsAnOlderNodes) {
    Map older{{"name", "old"}, {"endpoints", Array{}}, {"public_key", ""},
              {"capacity", 1}, {"connections", 0},     {"handshakes_per_second", 0},
              {"cpu", 0},      {"memory_bytes", 0},    {"draining", false},
              {"sequence", 1}, {"leaving", false}};
    auto decode = [](const Map& m) {
        DataFrame f;
        f << m;
        return decode_report(f.bytes());
    };
    auto r = decode(older);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->info.report_period, 0ms);  // the listener's own interval and expiry apply
    // Present, it must be a count of milliseconds.
    for (Value bad : {Value("soon"), Value(-1), Value(1.5)}) {
        auto m = older;
        m["report_period_ms"] = bad;
        EXPECT_FALSE(decode(m));
    }
}

TEST(ClusterMessages, BadReportsAreRefused) {
    EXPECT_FALSE(decode_report(""));
    EXPECT_FALSE(decode_report("garbage"));
    EXPECT_FALSE(decode_report(std::string(100000, '\x91')));  // deep nesting, oversized
    auto with = [](auto change) {
        auto n = node("ok", 1, 0);
        change(n);
        return decode_report(encode_report(n, false));
    };
    EXPECT_TRUE(with([](NodeInfo&) {}));
    EXPECT_FALSE(with([](NodeInfo& n) { n.name = "has.dot"; }));  // a subject token
    EXPECT_FALSE(with([](NodeInfo& n) { n.name = ""; }));
    EXPECT_FALSE(with([](NodeInfo& n) { n.name = std::string(65, 'x'); }));
    EXPECT_FALSE(with([](NodeInfo& n) { n.public_key = "abc"; }));
    EXPECT_FALSE(with([](NodeInfo& n) { n.public_key = std::string(64, 'z'); }));
    EXPECT_FALSE(with([](NodeInfo& n) { n.endpoints.assign(17, "h:1"); }));
    EXPECT_FALSE(with([](NodeInfo& n) { n.endpoints = {std::string(301, 'h')}; }));
    EXPECT_TRUE(with([](NodeInfo& n) { n.report_period = 1h; }));
    EXPECT_FALSE(with([](NodeInfo& n) { n.report_period = 1h + 1ms; }));  // a dead node kept
    // A map with a field of the wrong type.
    DataFrame f;
    f << Map{{"name", "a"}, {"endpoints", Array{}}, {"public_key", ""}, {"capacity", "many"}};
    EXPECT_FALSE(decode_report(f.bytes()));
    // Two values where one map belongs.
    DataFrame two;
    two << Map{} << Map{};
    EXPECT_FALSE(decode_report(two.bytes()));
}

TEST(ClusterMessages, BroadcastRoundTripAndBadInput) {
    ClusterBroadcast b{"n1", "news", true, false, std::string("\x00\x01payload", 9)};
    auto d = decode_broadcast(encode_broadcast(b));
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->origin, "n1");
    EXPECT_EQ(d->command, "news");
    EXPECT_TRUE(d->dataframe);
    EXPECT_FALSE(d->compress);
    EXPECT_EQ(d->argument, b.argument);
    auto encoded = encode_broadcast(b);
    for (std::size_t cut = 0; cut < 8; ++cut)  // every prefix short of the command fails
        EXPECT_FALSE(decode_broadcast(encoded.substr(0, cut))) << cut;
    auto bad_version = encoded;
    bad_version[0] = 2;
    EXPECT_FALSE(decode_broadcast(bad_version));
    auto bad_flags = encoded;
    bad_flags[1] = 8;
    EXPECT_FALSE(decode_broadcast(bad_flags));
    EXPECT_FALSE(decode_broadcast(encode_broadcast({"bad.origin", "x", false, true, ""})));
    EXPECT_FALSE(decode_broadcast(encode_broadcast({"n1", "", false, true, ""})));
}

TEST(ClusterMessages, InterestMarkerRoundTripAndBadInput) {
    auto m = decode_marker(encode_marker({18446744073709551615ull, 42}));
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->run, 18446744073709551615ull);
    EXPECT_EQ(m->number, 42u);
    for (std::string_view bad : {"", "1", "1 ", " 1", "1  2", "1 2 3", "-1 2", "1 +2", "1 x",
                                 "18446744073709551616 1", "1\t2", "1 2\n"})
        EXPECT_FALSE(decode_marker(bad)) << bad;
}

TEST(ClusterMessages, Subjects) {
    ClusterSubjects s("app.prod");
    EXPECT_EQ(s.node("n1"), "app.prod.node.n1");
    EXPECT_EQ(s.node_of("app.prod.node.n1"), "n1");
    EXPECT_EQ(s.node_of("app.prod.node."), "");
    EXPECT_EQ(s.node_of("other.node.n1"), "");
    EXPECT_EQ(s.nodes, "app.prod.node.*");
    EXPECT_EQ(s.broadcast, "app.prod.broadcast");
}

}  // namespace
}  // namespace hawser::detail
