// The cluster's pure parts: the channel table (membership, limits, interest changes taken as
// net changes), the table of requests waiting for other nodes (ids, deadlines, bound), and
// the codecs of requests and answers to remote connections (round trips and bad input).
#include <gtest/gtest.h>

#include <algorithm>

#include "cluster/channel_table.hpp"
#include "cluster/envelope_bytes.hpp"
#include "cluster/pending_requests.hpp"
#include "cluster/remote_messages.hpp"
#include "rpc/cluster_hop.hpp"
#include "rpc/host.hpp"

namespace hawser::detail {
namespace {

using Added = ChannelTable::Added;

bool wanted(const std::vector<ChannelTable::Interest>& changes, std::string_view channel,
            bool want) {
    return std::any_of(changes.begin(), changes.end(),
                       [&](auto& c) { return c.channel == channel && c.wanted == want; });
}

TEST(ChannelTable, MembershipAndLimits) {
    ChannelTable t;
    EXPECT_EQ(t.subscribe(1, "a", 2), Added::yes);
    EXPECT_EQ(t.subscribe(1, "a", 2), Added::already);
    EXPECT_EQ(t.subscribe(1, "b", 2), Added::yes);
    EXPECT_EQ(t.subscribe(1, "c", 2), Added::over_limit);
    EXPECT_EQ(t.subscribe(2, "a", 2), Added::yes);
    auto members = t.subscribers("a");
    std::sort(members.begin(), members.end());
    EXPECT_EQ(members, (std::vector<ConnectionId>{1, 2}));
    EXPECT_EQ(t.channels_of(1), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(t.unsubscribe(1, "a"));
    EXPECT_FALSE(t.unsubscribe(1, "a"));
    EXPECT_FALSE(t.unsubscribe(9, "a"));
    t.remove(1);
    t.remove(1);
    EXPECT_TRUE(t.channels_of(1).empty());
    EXPECT_EQ(t.subscribers("a"), std::vector<ConnectionId>{2});
    EXPECT_TRUE(t.subscribers("b").empty());
    EXPECT_FALSE(t.has("b"));
    EXPECT_EQ(t.subscribe(3, "x", 0), Added::over_limit);
    EXPECT_TRUE(t.channels_of(3).empty());
}

TEST(ChannelTable, InterestChangesAreNetChanges) {
    ChannelTable t;
    EXPECT_FALSE(t.changed());
    t.subscribe(1, "a", 8);
    t.subscribe(2, "a", 8);  // not a change: "a" was wanted already
    t.subscribe(1, "b", 8);
    auto first = t.take_changes();
    EXPECT_EQ(first.size(), 2u);
    EXPECT_TRUE(wanted(first, "a", true));
    EXPECT_TRUE(wanted(first, "b", true));
    EXPECT_TRUE(t.take_changes().empty());
    // A storm on "b" that ends where it began: at most a no-op entry, wanted as before.
    for (int i = 0; i < 100; ++i) {
        t.unsubscribe(1, "b");
        t.subscribe(1, "b", 8);
    }
    auto storm = t.take_changes();
    EXPECT_LE(storm.size(), 1u);
    EXPECT_TRUE(storm.empty() || wanted(storm, "b", true));
    t.unsubscribe(1, "a");  // 2 is still in "a"
    EXPECT_FALSE(t.changed());
    t.remove(2);
    t.remove(1);
    auto last = t.take_changes();
    EXPECT_TRUE(wanted(last, "a", false));
    EXPECT_TRUE(wanted(last, "b", false));
}

TEST(PendingRequests, CompleteOnceExpireInOrderAndStayBounded) {
    using Clock = PendingRequests::Clock;
    PendingRequests p(2);
    auto t0 = Clock::now();
    std::vector<std::string> done;
    auto record = [&](std::string what) {
        return PendingRequests::Done([&done, what](RemoteAnswer) { done.push_back(what); });
    };
    auto kept = record("kept");
    auto late_done = record("late"), soon_done = record("soon");
    auto late = p.add(t0 + std::chrono::seconds(2), "b", late_done);
    auto soon = p.add(t0 + std::chrono::seconds(1), "c", soon_done);
    ASSERT_TRUE(late && soon);
    EXPECT_NE(*late, *soon);
    EXPECT_FALSE(p.add(t0, "b", kept));  // bounded, and the refused completion stays the caller's
    ASSERT_TRUE(kept);
    EXPECT_EQ(p.next_deadline(), t0 + std::chrono::seconds(1));
    EXPECT_TRUE(p.expire(t0).empty());
    for (auto& d : p.expire(t0 + std::chrono::seconds(1))) d({});
    EXPECT_EQ(done, std::vector<std::string>{"soon"});
    EXPECT_FALSE(p.take(*soon));  // expired: gone
    auto taken = p.take(*late);
    ASSERT_TRUE(taken);
    EXPECT_FALSE(p.take(*late));  // once
    EXPECT_EQ(p.size(), 0u);
    EXPECT_FALSE(p.next_deadline());
    auto last = record("a");
    p.add(t0, "b", last);
    EXPECT_EQ(p.take_all().size(), 1u);
    // A node that leaves takes its requests, and only those, with it.
    auto to_b = record("to b"), to_c = record("to c");
    p.add(t0, "b", to_b);
    p.add(t0, "c", to_c);
    auto left_at = p.added();
    EXPECT_TRUE(p.take_node("d", left_at).empty());
    auto of_b = p.take_node("b", left_at);
    ASSERT_EQ(of_b.size(), 1u);
    of_b[0]({});
    EXPECT_EQ(done.back(), "to b");
    EXPECT_EQ(p.size(), 1u);
    // Added after it left: to a run of the same name that came back, which a late leave event
    // must not fail.
    auto to_b_again = record("to b again");
    p.add(t0, "b", to_b_again);
    EXPECT_TRUE(p.take_node("b", left_at).empty());
    auto of_b_again = p.take_node("b", p.added());
    ASSERT_EQ(of_b_again.size(), 1u);
    of_b_again[0]({});
    EXPECT_EQ(done.back(), "to b again");
    EXPECT_EQ(p.size(), 1u);
}

TEST(RemoteMessages, RoundTrips) {
    RemoteRequest r;
    r.op = RemoteRequest::Op::call;
    r.dataframe = true;
    r.compress = false;
    r.request = 0x0102030405060708ull;
    r.connection = 0xfffffffffffffff0ull;
    r.timeout_ms = 30000;
    r.origin = "node-1";
    r.command = "echo";
    r.argument = std::string("\0arg", 4);
    auto back = decode_request(encode_request(r));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->op, r.op);
    EXPECT_EQ(back->dataframe, true);
    EXPECT_EQ(back->compress, false);
    EXPECT_EQ(back->request, r.request);
    EXPECT_EQ(back->connection, r.connection);
    EXPECT_EQ(back->timeout_ms, r.timeout_ms);
    EXPECT_EQ(back->origin, r.origin);
    EXPECT_EQ(back->command, r.command);
    EXPECT_EQ(back->argument, r.argument);
    auto a = decode_answer(encode_answer({42, Errc::not_found, "gone"}));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->request, 42u);
    EXPECT_EQ(a->code, Errc::not_found);
    EXPECT_EQ(a->body, "gone");
}

TEST(RemoteMessages, BadInputIsRefused) {
    RemoteRequest good;
    good.op = RemoteRequest::Op::call;
    good.request = 1;
    good.origin = "n";
    good.command = "c";
    auto bytes = encode_request(good);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
        EXPECT_FALSE(decode_request(bytes.substr(0, cut))) << cut;  // every truncation
    auto with = [&](std::size_t at, char value) {
        auto b = bytes;
        b[at] = value;
        return b;
    };
    EXPECT_FALSE(decode_request(with(0, 2)));     // version
    EXPECT_FALSE(decode_request(with(1, 0)));     // kind
    EXPECT_FALSE(decode_request(with(1, 4)));     // kind
    EXPECT_FALSE(decode_request(with(2, 4)));     // flags
    EXPECT_FALSE(decode_request(with(23, '.')));  // origin "." is no node name
    auto no_id = good;
    no_id.request = 0;
    EXPECT_FALSE(decode_request(encode_request(no_id)));
    auto no_command = good;
    no_command.command.clear();
    EXPECT_FALSE(decode_request(encode_request(no_command)));
    auto find = no_command;
    find.op = RemoteRequest::Op::find;
    EXPECT_TRUE(decode_request(encode_request(find)));  // a find names no command
    // A field cut short fails every field after it, even one the bytes left would fill: here
    // the ids are missing, and the timeout, origin and command would fit.
    EXPECT_FALSE(decode_request(std::string("\x01\x03\x00", 3) + std::string(4, '\0') +
                                std::string("\x01"
                                            "a"
                                            "\x00",
                                            3)));
    EXPECT_FALSE(decode_answer("\x01short"));
    EnvelopeReader reader{std::string_view("12345", 5)};
    EXPECT_FALSE(reader.take(8));
    EXPECT_FALSE(reader.take(1));  // the bytes are there, but the read before came up short
    EXPECT_FALSE(reader.number(1));
    EXPECT_FALSE(decode_answer(std::string("\x02") + std::string(10, '\0')));
    EXPECT_FALSE(decode_answer(std::string("\x01") + std::string(8, '\0') + "\xff\xff"));
}

TEST(ClusterHop, RedirectTextsAndRouteRepliesAreChecked) {
    std::string key(64, 'a');
    auto r = parse_redirect("n2 " + key + " 127.0.0.1:7102,[::1]:7102", false);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->node, "n2");
    ASSERT_TRUE(r->key);
    EXPECT_EQ(r->endpoints, (std::vector<std::string>{"127.0.0.1:7102", "[::1]:7102"}));
    EXPECT_TRUE(parse_redirect("n2 - 127.0.0.1:7102", true));  // plaintext: no key
    std::string many = "n2 " + key + " ";
    for (int i = 0; i < 17; ++i) many += "h:" + std::to_string(i) + ",";
    for (const auto& bad : std::vector<std::string>{
             std::string(), "n2", "n2 " + key, "n2 " + key + " ", "n2 - 127.0.0.1:7102",
             "n2 xyz 127.0.0.1:7102", " " + key + " 127.0.0.1:7102", many})
        EXPECT_FALSE(parse_redirect(bad, false)) << bad;

    DataFrame reply;
    reply << Map{{"node", "n2"},
                 {"here", "n1"},
                 {"endpoints", Array{Value("127.0.0.1:7102")}},
                 {"public_key", key}};
    auto route = parse_route_reply(reply.bytes(), DecodeLimits{}, false);
    ASSERT_TRUE(route) << route.error().message;
    EXPECT_EQ(route->here, "n1");
    DataFrame keyless;
    keyless << Map{{"node", "n2"}, {"endpoints", Array{Value("127.0.0.1:7102")}}};
    EXPECT_FALSE(parse_route_reply(keyless.bytes(), DecodeLimits{}, false));
    EXPECT_TRUE(parse_route_reply(keyless.bytes(), DecodeLimits{}, true));
    EXPECT_FALSE(parse_route_reply("\xc1", DecodeLimits{}, true));
    DataFrame not_a_map;
    not_a_map << 5;
    EXPECT_FALSE(parse_route_reply(not_a_map.bytes(), DecodeLimits{}, true));
}

TEST(ConnectionIds, ARestartedProcessDoesNotReuseIds) {
    // Ids count up from the clock (microseconds) at the first connection: a process started
    // later begins above every id an earlier run could have reached at its pace.
    auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    auto id = Host::next_id(3);
    EXPECT_EQ(id & 0xff, 3u);
    EXPECT_GT(id >> 8, 1'577'836'800'000'000u);  // after 2020-01-01: from the clock
    EXPECT_LE(id >> 8, std::uint64_t(now_us) + 1'000'000'000);
    EXPECT_GT(Host::next_id(3), id);
}

}  // namespace
}  // namespace hawser::detail
