// Notices and questions between nodes' services, over a real nats-server.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <mutex>

#include "cluster/node.hpp"
#include "rpc/host.hpp"

namespace hawser::test {
namespace {

// What one node's "seen" notice handler received.
struct Seen {
    std::mutex mu;
    std::vector<std::string> bodies;
    std::size_t size() {
        std::lock_guard lock(mu);
        return bodies.size();
    }
};

TEST(ClusterNotices, ANoticeReachesEveryNodeOnce) {
    NatsServer nats;
    std::map<std::string, Seen> seen;
    auto listen = [&](std::string name) {
        return [&seen, name](Node& n) {
            n.cluster.on_notice("seen", [&seen, name](std::string_view body) {
                std::lock_guard lock(seen[name].mu);
                seen[name].bodies.emplace_back(body);
            });
        };
    };
    seen["a"], seen["b"], seen["c"];  // made before any handler runs
    Node a(nats, "a", {}, listen("a")), b(nats, "b", {}, listen("b"));
    Node c(nats, "c");  // no handler: the notice passes it by
    ASSERT_TRUE(sees(a.cluster, 3));
    ASSERT_TRUE(a.cluster.notify("seen", std::string("one\0two", 7)));
    ASSERT_TRUE(b.cluster.notify("seen", "three"));
    ASSERT_TRUE(eventually([&] { return seen["a"].size() == 2 && seen["b"].size() == 2; }));
    for (auto name : {"a", "b"}) {
        std::lock_guard lock(seen[name].mu);
        EXPECT_EQ(std::count(seen[name].bodies.begin(), seen[name].bodies.end(),
                             std::string("one\0two", 7)),
                  1);
    }
    EXPECT_EQ(a.cluster.notify("not a topic", "x").error().code, Errc::invalid_argument);
    EXPECT_EQ(a.cluster.notify("seen", std::string(2u << 20, 'x')).error().code,
              Errc::limit_exceeded);
    EXPECT_THROW(a.cluster.on_notice("a.b", [](std::string_view) {}), std::invalid_argument);
}

TEST(ClusterNotices, AQuestionGathersEveryNodesAnswer) {
    NatsServer nats;
    auto answering = [](Node& n) {
        n.cluster.on_question("who", [&n](std::string_view body) {
            return n.cluster.node_name() + ":" + std::string(body);
        });
    };
    // Nodes stay known through a loaded machine's stalls: the test is about the answers.
    auto patient = [](ClusterOptions& o) { o.node_expiry = std::chrono::seconds(10); };
    Node a(nats, "a", patient, answering), b(nats, "b", patient, answering),
        c(nats, "c", patient, answering);
    // A question waits for the nodes the asker knows of.
    ASSERT_TRUE(sees(a.cluster, 3));
    ASSERT_TRUE(sees(b.cluster, 3));
    auto answers = b.cluster.ask("who", "hi", use_wait, 10s).value();
    EXPECT_EQ(answers,
              (std::map<std::string, std::string>{{"a", "a:hi"}, {"b", "b:hi"}, {"c", "c:hi"}}));
    // The callback form runs once, on an IO thread.
    std::promise<Result<std::map<std::string, std::string>>> got;
    a.cluster.ask("who", "cb", [&](Result<std::map<std::string, std::string>> r) {
        EXPECT_TRUE(detail::Host::current_loop_index().has_value());
        got.set_value(std::move(r));
    });
    EXPECT_EQ(got.get_future().get().value().size(), 3u);
}

TEST(ClusterNotices, ANodeThatDoesNotAnswerIsMissingAtTheDeadline) {
    NatsServer nats;
    auto answering = [](Node& n) {
        n.cluster.on_question("who", [](std::string_view) { return std::string("here"); });
    };
    Node a(nats, "a", {}, answering), b(nats, "b", {}, answering), c(nats, "c");
    ASSERT_TRUE(sees(a.cluster, 3));
    auto answers = a.cluster.ask("who", "", use_wait, 300ms).value();
    EXPECT_EQ(answers, (std::map<std::string, std::string>{{"a", "here"}, {"b", "here"}}));
    EXPECT_EQ(a.cluster.ask("bad topic", "", use_wait).error().code, Errc::invalid_argument);
}

TEST(ClusterNotices, BadQuestionsAndAnswersAreDroppedAndCounted) {
    NatsServer nats;
    std::atomic<int> asked{0};
    Node a(nats, "a", {}, [&](Node& n) {
        n.cluster.on_question("who", [&](std::string_view) {
            ++asked;
            return std::string("x");
        });
    });
    RawNats raw(nats);
    raw.publish("test.ask.who", "garbage");
    raw.publish("test.reply.a", "\xc1");
    DataFrame no_origin;
    no_origin << "bad.origin" << std::uint64_t(1) << Bytes{};
    raw.publish("test.ask.who", no_origin.bytes());
    EXPECT_TRUE(eventually([&] { return a.cluster.stats().dropped_messages == 3; }));
    EXPECT_EQ(asked.load(), 0);
    // A late or unknown answer is ignored; the node still answers well-formed questions.
    DataFrame late;
    late << "b" << std::uint64_t(999) << Bytes{};
    raw.publish("test.reply.a", late.bytes());
    EXPECT_EQ(a.cluster.ask("who", "", use_wait, 10s).value().size(), 1u);
    EXPECT_EQ(asked.load(), 1);
}

// An answer too big to send is counted as dropped (the asker goes on without it at its
// timeout), and "wait as long as it takes" (the longest timeout) is a long wait, not none.
TEST(ClusterNotices, AnAnswerOverTheLimitIsCountedAndTheLongestTimeoutWaits) {
    NatsServer nats;
    auto small = [](ClusterOptions& o) { o.max_message_bytes = 1024; };
    Node a(nats, "a", small, [](Node& n) {
        n.cluster.on_question("big", [](std::string_view) { return std::string(2048, 'x'); });
        n.cluster.on_question("who", [](std::string_view) { return std::string("a"); });
    });
    auto missing = a.cluster.ask("big", "", use_wait, 300ms).value();
    EXPECT_TRUE(missing.empty());
    EXPECT_EQ(a.cluster.stats().dropped_messages, 1u);
    auto answers = a.cluster.ask("who", "", use_wait, Milliseconds::max()).value();
    EXPECT_EQ(answers, (std::map<std::string, std::string>{{"a", "a"}}));
}

TEST(ClusterNotices, StoppedClustersFailAtOnce) {
    NatsServer nats;
    Node a(nats, "a", {}, [](Node& n) {
        n.cluster.on_question("who", [](std::string_view) { return std::string(); });
    });
    a.cluster.stop();
    EXPECT_EQ(a.cluster.notify("seen", "x").error().code, Errc::cluster_unavailable);
    EXPECT_EQ(a.cluster.ask("who", "", use_wait).error().code, Errc::cluster_unavailable);
}

}  // namespace
}  // namespace hawser::test
