// Connections anywhere in the cluster, over a real nats-server: a connection on one node is
// reached from another by its ClusterAddress (send, call with both argument kinds, find), its
// node's errors travel back typed, a node that never answers times out, NATS away fails at
// once, and bad input on the request and answer subjects is dropped and counted.
#include <gtest/gtest.h>

#include <atomic>

#include "cluster/messages.hpp"
#include "cluster/node.hpp"
#include "cluster/remote_messages.hpp"

namespace hawser::test {
namespace {

// A client of `node` that answers "echo" and "sum" and counts "note"s.
struct Peer {
    explicit Peer(Node& node) : client(client_for(node.server)) {
        client.commands().direct_console("note", [this](const Request&, std::string_view t) {
            if (t == "hi") ++notes;
        });
        client.commands().console(
            "echo", [](const Request&, std::string_view t) { return "echo:" + std::string(t); });
        client.commands().dataframe("sum", [](const Request&, DataFrame& f) {
            auto a = f.read_int(), b = f.read_int();
            DataFrame out;
            out << (a && b ? *a + *b : -1);
            return out;
        });
        EXPECT_TRUE(client.connect());
        EXPECT_TRUE(eventually([&] { return node.server.connection_count() == 1; }));
        address = node.cluster.address_of(node.server.connection_ids().at(0));
    }
    std::atomic<int> notes{0};
    ClusterAddress address;
    Client client;  // last, so that it goes first: its handlers use `notes`
};

TEST(ClusterAddressing, SendCallAndFindReachAConnectionOnAnotherNode) {
    NatsServer nats;
    Node a(nats, "a"), b(nats, "b");
    ASSERT_TRUE(sees(a.cluster, 2));
    ASSERT_TRUE(sees(b.cluster, 2));
    auto before = std::chrono::system_clock::now();
    Peer peer(b);
    EXPECT_EQ(peer.address.node, "b");
    auto parsed = ClusterAddress::parse(peer.address.to_string());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, peer.address);

    ASSERT_TRUE(a.cluster.send(peer.address, "note", "hi"));
    EXPECT_TRUE(eventually([&] { return peer.notes.load() == 1; }));
    auto echo = a.cluster.call(peer.address, "echo", std::string("x"), use_wait);
    ASSERT_TRUE(echo) << echo.error().message;
    EXPECT_EQ(*echo, "echo:x");
    DataFrame numbers;
    numbers << 2 << 40;
    auto sum = a.cluster.call(peer.address, "sum", std::move(numbers), use_wait);
    ASSERT_TRUE(sum) << sum.error().message;
    EXPECT_EQ(sum->read_int().value(), 42);
    // The callback token, as on a Connection; it runs on an IO thread, never on NATS's.
    Slot<Result<std::string>> slot;
    std::atomic<bool> on_io{false};
    a.cluster.call(peer.address, "echo", std::string("cb"), [&](Result<std::string> r) {
        on_io = Runtime::on_io_thread();
        slot.set(std::move(r));
    });
    EXPECT_EQ(slot.get().value(), "echo:cb");
    EXPECT_TRUE(on_io.load());
    // And the coroutine token.
    Slot<std::string> from_task;
    auto body = [](Cluster& c, ClusterAddress to, Slot<std::string>& out) -> Task<void> {
        auto r = co_await c.call(to, "echo", std::string("task"));
        out.set(r ? *r : r.error().message);
    };  // parameters, not captures: they live in the coroutine's frame
    spawn(body(a.cluster, peer.address, from_task));
    EXPECT_EQ(from_task.get(), "echo:task");
    EXPECT_EQ(a.cluster.call(peer.address, "", std::string(), use_wait).error().code,
              Errc::invalid_argument);  // at once, not at the deadline

    auto presence = a.cluster.find(peer.address, use_wait);
    ASSERT_TRUE(presence) << presence.error().message;
    EXPECT_EQ(presence->address, peer.address);
    EXPECT_EQ(presence->remote_address, b.server.find(peer.address.id)->remote_address());
    EXPECT_GE(presence->since, before - 1s);  // the clock travels in milliseconds
    EXPECT_LE(presence->since, std::chrono::system_clock::now());

    // The connection's node answers with the connection's own errors.
    auto unknown = a.cluster.call(peer.address, "nope", std::string(), use_wait);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, Errc::unknown_command);
    // A local address goes the same way, without NATS.
    EXPECT_EQ(b.cluster.call(peer.address, "echo", std::string("y"), use_wait).value(), "echo:y");
    EXPECT_EQ(b.cluster.find(peer.address, use_wait).value().remote_address,
              presence->remote_address);
    EXPECT_GE(b.cluster.stats().remote_requests_served, 6u);
    EXPECT_GE(a.cluster.stats().remote_requests_sent, 6u);

    // Gone: not found, from either side.
    peer.client.close();
    ASSERT_TRUE(eventually([&] { return b.server.connection_count() == 0; }));
    auto gone = a.cluster.find(peer.address, use_wait);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, Errc::not_found);
    auto gone_call = a.cluster.call(peer.address, "echo", std::string(), use_wait);
    EXPECT_EQ(gone_call.error().code, Errc::not_found);
    EXPECT_EQ(b.cluster.send(peer.address, "note", "hi").error().code, Errc::not_found);
    EXPECT_EQ(a.cluster.send({"nobody", 1}, "note", "hi").error().code, Errc::not_found);
}

TEST(ClusterAddressing, ACallToANodeThatNeverAnswersTimesOut) {
    NatsServer nats;
    Node a(nats, "a");
    RawNats raw(nats);
    // In the registry, but nothing behind it answers.
    raw.publish("test.node.ghost", detail::encode_report(fake_node("ghost", 1), false));
    ASSERT_TRUE(sees(a.cluster, 2));
    CallOptions quick;
    quick.timeout = 200ms;
    auto r = a.cluster.call({"ghost", 5}, "echo", std::string(), use_wait, quick);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::timeout);
    auto found = a.cluster.find({"ghost", 5}, use_wait, 200ms);
    EXPECT_EQ(found.error().code, Errc::timeout);
}

TEST(ClusterAddressing, ACallToANodeThatLeavesFailsWithoutWaitingForItsDeadline) {
    NatsServer nats;
    Node a(nats, "a");
    RawNats raw(nats);
    raw.publish("test.node.ghost", detail::encode_report(fake_node("ghost", 1), false));
    ASSERT_TRUE(sees(a.cluster, 2));
    CallOptions slow;
    slow.timeout = 60s;
    Slot<Result<std::string>> call;
    a.cluster.call(
        {"ghost", 5}, "echo", std::string(), [&](Result<std::string> r) { call.set(std::move(r)); },
        slow);
    Slot<Result<Presence>> found;
    a.cluster.find(
        {"ghost", 6}, [&](Result<Presence> r) { found.set(std::move(r)); }, 60s);
    EXPECT_FALSE(call.has());
    raw.publish("test.node.ghost", detail::encode_report(fake_node("ghost", 1), true));  // leaves
    EXPECT_EQ(call.get().error().code, Errc::cluster_unavailable);
    EXPECT_EQ(found.get().error().code, Errc::cluster_unavailable);
}

TEST(ClusterAddressing, RequestsWaitingForOtherNodesAreBounded) {
    NatsServer nats;
    Node a(nats, "a", [](ClusterOptions& c) { c.max_remote_requests = 1; });
    RawNats raw(nats);
    raw.publish("test.node.ghost", detail::encode_report(fake_node("ghost", 1), false));
    ASSERT_TRUE(sees(a.cluster, 2));
    Slot<Result<std::string>> first;
    CallOptions slow;
    slow.timeout = 60s;
    a.cluster.call(
        {"ghost", 5}, "echo", std::string(),
        [&](Result<std::string> r) { first.set(std::move(r)); }, slow);
    // The table is full: the next one is refused at once, its callback run, nothing thrown.
    Slot<Result<std::string>> second;
    a.cluster.call(
        {"ghost", 5}, "echo", std::string(),
        [&](Result<std::string> r) { second.set(std::move(r)); }, slow);
    ASSERT_TRUE(second.has());
    EXPECT_EQ(second.get().error().code, Errc::overloaded);
    EXPECT_FALSE(first.has());
    a.cluster.stop();  // the waiting one fails, once, and before stop() returns
    ASSERT_TRUE(first.has());
    EXPECT_EQ(first.get().error().code, Errc::cluster_unavailable);
}

TEST(ClusterAddressing, WithoutNatsRequestsToOtherNodesFailAtOnce) {
    NatsServer nats;
    Node a(nats, "a"), b(nats, "b");
    ASSERT_TRUE(sees(a.cluster, 2));
    Peer peer(b);
    nats.stop();
    // Both NATS connections must have seen it go (connected() turns false with the first);
    // requests go out on the membership one, whose loss `nats_disconnects` counts.
    ASSERT_TRUE(eventually(
        [&] { return !a.cluster.connected() && a.cluster.stats().nats_disconnects > 0; }));
    auto started = std::chrono::steady_clock::now();
    auto r = a.cluster.call(peer.address, "echo", std::string(), use_wait);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::cluster_unavailable);
    EXPECT_EQ(a.cluster.send(peer.address, "note", "hi").error().code, Errc::cluster_unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);  // fails, never hangs
    // Its own node still reaches it.
    EXPECT_EQ(b.cluster.call(peer.address, "echo", std::string("z"), use_wait).value(), "echo:z");
}

TEST(ClusterAddressing, BadInputOnRequestAndAnswerSubjectsIsDroppedAndCounted) {
    NatsServer nats;
    Node a(nats, "a");
    Peer peer(a);
    RawNats raw(nats);
    raw.publish("test.conn.a", "garbage");
    raw.publish("test.conn.a", std::string("\x01\x09", 2));  // an unknown kind, cut short
    detail::RemoteRequest no_origin;
    no_origin.op = detail::RemoteRequest::Op::send;
    no_origin.command = "note";
    no_origin.connection = peer.address.id;
    no_origin.origin = "bad.origin";
    raw.publish("test.conn.a", detail::encode_request(no_origin));
    detail::RemoteRequest bad_frame = no_origin;
    bad_frame.origin = "x";
    bad_frame.dataframe = true;
    bad_frame.argument = "\xc1";
    raw.publish("test.conn.a", detail::encode_request(bad_frame));
    raw.publish("test.answer.a", "\x01");
    // An answer nobody waits for is ignored, not counted: it may be a late one.
    raw.publish("test.answer.a", detail::encode_answer({12345, Errc::ok, "late"}));
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().dropped_messages == 5; }));
    EXPECT_EQ(peer.notes.load(), 0);
    // Still working: a well-formed send from outside the node's process gets through.
    detail::RemoteRequest good = no_origin;
    good.origin = "x";
    good.argument = "hi";
    raw.publish("test.conn.a", detail::encode_request(good));
    EXPECT_TRUE(eventually([&] { return peer.notes.load() == 1; }));
}

TEST(ClusterAddressing, AddressesParseStrictly) {
    EXPECT_TRUE(ClusterAddress::parse("12@n-1_b"));
    for (auto bad : {"", "@n", "12@", "x@n", "0@n", "12@bad.node", "12n", "-1@n", "12 @n"})
        EXPECT_FALSE(ClusterAddress::parse(bad)) << bad;
}

}  // namespace
}  // namespace hawser::test
