// PublishQueue: order (operations among messages), the bound in bytes, and a sender that waits
// holding up no publisher.
// No NATS here: `send` is the test's. Among the cluster tests because it is threaded: those run
// under ThreadSanitizer too.
#include "cluster/publish_queue.hpp"

#include "integration/support.hpp"  // eventually

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace hawser::test {
namespace {

using namespace std::chrono_literals;
using detail::PublishQueue;

// What the queue's thread was given, and a gate that holds it inside `send` until opened.
struct GatedSink {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> got;  // "subject data"
    bool open = true;
    bool inside = false;  // the queue's thread waits at the gate

    PublishQueue::Send send() {
        return [this](const char* subject, std::string_view data) {
            std::unique_lock lock(mu);
            inside = true;
            cv.notify_all();
            cv.wait(lock, [&] { return open; });
            inside = false;
            got.push_back(std::string(subject) + " " + std::string(data));
            return data != "lost";
        };
    }
    void close_gate() {
        std::lock_guard lock(mu);
        open = false;
    }
    void open_gate() {
        std::lock_guard lock(mu);
        open = true;
        cv.notify_all();
    }
    // Opens the gate when a test ends early, before its queue waits for its thread.
    struct Opens {
        GatedSink& sink;
        ~Opens() { sink.open_gate(); }
    };
    void wait_inside() {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return inside; });
    }
    std::vector<std::string> taken() {
        std::lock_guard lock(mu);
        return got;
    }
};

TEST(PublishQueue, SendsEverythingInTheOrderPushed) {
    GatedSink sink;
    std::atomic<std::uint64_t> lost{0};
    PublishQueue q(1 << 20, sink.send(), lost);
    std::vector<std::string> expected;
    for (int i = 0; i < 1000; ++i) {
        auto data = std::to_string(i);
        ASSERT_TRUE(q.push(i % 2 ? "odd" : "even", data));
        expected.push_back((i % 2 ? "odd " : "even ") + data);
    }
    ASSERT_TRUE(q.drained(std::chrono::steady_clock::now() + 60s));
    EXPECT_EQ(sink.taken(), expected);
    EXPECT_EQ(q.bytes(), 0u);
    EXPECT_EQ(lost, 0u);
}

TEST(PublishQueue, AStuckSenderHoldsUpNoPublisherAndTheBoundRefusesTheRest) {
    GatedSink sink;
    sink.close_gate();
    std::atomic<std::uint64_t> lost{0};
    std::atomic<int> caught_up{0};
    PublishQueue q(4096, sink.send(), lost, [&] { ++caught_up; });
    GatedSink::Opens opens{sink};
    ASSERT_TRUE(q.push("s", "first"));
    sink.wait_inside();  // the queue's thread waits in send, as in a NATS write
    const std::string kilobyte(1000, 'x');
    int taken = 0;
    Result<void> r;
    while ((r = q.push("s", kilobyte)) && taken < 100) ++taken;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::overloaded);
    EXPECT_GE(taken, 2);  // the bound holds a few of these, not one and not all
    EXPECT_LE(taken, 4);
    EXPECT_LE(q.bytes(), 4096u);
    // An essential message may take the queue to twice the bound, and no further.
    int essential = 0;
    while ((r = q.push("report", kilobyte, PublishQueue::Admit::essential)) && essential < 100)
        ++essential;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::overloaded);
    EXPECT_GE(essential, 3);
    EXPECT_LE(essential, 5);
    EXPECT_LE(q.bytes(), 2 * 4096u);
    EXPECT_FALSE(q.drained(std::chrono::steady_clock::now() + 10ms));
    EXPECT_EQ(caught_up, 0);

    sink.open_gate();
    ASSERT_TRUE(q.drained(std::chrono::steady_clock::now() + 60s));
    auto got = sink.taken();
    ASSERT_EQ(got.size(), std::size_t(1 + taken + essential));
    EXPECT_EQ(got.front(), "s first");
    EXPECT_EQ(got.back(), "report " + kilobyte);  // in the order pushed
    EXPECT_EQ(q.bytes(), 0u);
    // Refused, then empty: whoever lost those may put things right, once.
    EXPECT_TRUE(eventually([&] { return caught_up == 1; }));
    EXPECT_TRUE(q.push("s", kilobyte));  // room again
}

TEST(PublishQueue, OperationsRunInTheirPlaceAmongTheMessagesAndAreBoundedAlike) {
    GatedSink sink;
    sink.close_gate();
    std::atomic<std::uint64_t> lost{0};
    PublishQueue q(4096, sink.send(), lost);
    GatedSink::Opens opens{sink};
    auto mark = [&](std::string what) {
        return [&sink, what] {  // runs on the queue's thread, between two sends
            std::lock_guard lock(sink.mu);
            sink.got.push_back(what);
        };
    };
    using Admit = PublishQueue::Admit;
    ASSERT_TRUE(q.push("s", "first"));
    sink.wait_inside();
    ASSERT_TRUE(q.push(mark("subscribe"), 1000, Admit::essential));
    ASSERT_TRUE(q.push("marker", "1", Admit::essential));
    // Bounded operations are refused as messages are; one admitted always is not.
    const std::string kilobyte(1000, 'x');
    Result<void> r;
    int taken = 0;
    while ((r = q.push(mark("bounded"), 1000, Admit::bounded)) && taken < 100) ++taken;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::overloaded);
    EXPECT_LE(taken, 2);
    while ((r = q.push(mark("essential"), 1000, Admit::essential)) && taken < 100) ++taken;
    ASSERT_FALSE(r);
    EXPECT_LE(q.bytes(), 2 * 4096u);
    ASSERT_TRUE(q.push(mark("unsubscribe"), 1000, Admit::always));
    EXPECT_GT(q.bytes(), 2 * 4096u);

    sink.open_gate();
    ASSERT_TRUE(q.drained(std::chrono::steady_clock::now() + 60s));
    auto got = sink.taken();
    ASSERT_EQ(got.size(), std::size_t(4 + taken));
    EXPECT_EQ(got[0], "s first");
    EXPECT_EQ(got[1], "subscribe");
    EXPECT_EQ(got[2], "marker 1");
    EXPECT_EQ(got.back(), "unsubscribe");
    EXPECT_EQ(q.bytes(), 0u);
    EXPECT_EQ(lost, 0u);

    // Stopped, operations waiting are dropped without running, and are not lost messages.
    sink.close_gate();
    ASSERT_TRUE(q.push("s", "held"));
    sink.wait_inside();
    ASSERT_TRUE(q.push(mark("never"), 10, Admit::always));
    ASSERT_TRUE(q.push("s", "never"));
    q.stop();
    EXPECT_EQ(q.push(mark("late"), 10, Admit::always).error().code, Errc::cluster_unavailable);
    sink.open_gate();
    EXPECT_TRUE(eventually([&] { return lost == 1; }));
    EXPECT_EQ(sink.taken().back(), "s held");
}

TEST(PublishQueue, OneMessageIsTakenWhenNothingWaitsHoweverBig) {
    GatedSink sink;
    std::atomic<std::uint64_t> lost{0};
    PublishQueue q(1024, sink.send(), lost);
    ASSERT_TRUE(q.push("big", std::string(10000, 'b')));
    ASSERT_TRUE(q.drained(std::chrono::steady_clock::now() + 60s));
    EXPECT_EQ(sink.taken().size(), 1u);
}

TEST(PublishQueue, LostMessagesAreCountedAndStoppingWaitsOnlyForTheMessageBeingSent) {
    GatedSink sink;
    std::atomic<std::uint64_t> lost{0};
    PublishQueue q(1 << 20, sink.send(), lost);
    GatedSink::Opens opens{sink};
    ASSERT_TRUE(q.push("s", "lost"));
    ASSERT_TRUE(q.drained(std::chrono::steady_clock::now() + 60s));
    EXPECT_EQ(lost, 1u);

    sink.close_gate();
    ASSERT_TRUE(q.push("s", "held"));
    sink.wait_inside();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(q.push("s", "never"));
    q.stop();                                                         // while "held" is being sent
    EXPECT_FALSE(q.drained(std::chrono::steady_clock::now() + 60s));  // at once: it stopped
    EXPECT_EQ(q.push("s", "late").error().code, Errc::cluster_unavailable);
    sink.open_gate();
    // The thread ends after "held"; the hundred behind it are lost, and counted.
    EXPECT_TRUE(eventually([&] { return lost == 101; }));
    EXPECT_EQ(sink.taken(), (std::vector<std::string>{"s lost", "s held"}));
}

}  // namespace
}  // namespace hawser::test
