// NatsLink on a real nats-server: subscriptions queued in order with what is published, so that
// what follows one goes where it says; one nats.c refuses is handed back with its id, not lost;
// and a link closed with its writer stuck behind a stopped NATS frees what it held.
#include "cluster/nats_link.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "cluster/node.hpp"

namespace hawser::test {
namespace {

using detail::NatsLink;

// A link with nats.c's one delivery thread for all its subscriptions, as the channel link has:
// messages of different subscriptions arrive in the order NATS sent them.
std::unique_ptr<NatsLink> open_link(const NatsServer& nats, std::atomic<std::uint64_t>& lost,
                                    std::chrono::milliseconds write_deadline = 2s) {
    auto o = cluster_options(nats, "link");
    o.max_publish_queue_bytes = 64 << 10;
    auto link = NatsLink::open(o, "hawser-link-test", {}, lost,
                               {NatsLink::Delivery::shared, {}, write_deadline});
    EXPECT_TRUE(link) << link.error().message;
    if (!link) return nullptr;
    EXPECT_TRUE(eventually([&] { return (*link)->connected(); }));
    return std::move(*link);
}

struct Received {
    std::mutex mu;
    std::vector<std::string> got;  // "subject data"

    NatsLink::Handler handler() {
        return [this](std::string_view subject, std::string_view data) {
            std::lock_guard lock(mu);
            got.push_back(std::string(subject) + " " + std::string(data));
        };
    }
    std::vector<std::string> taken() {
        std::lock_guard lock(mu);
        return got;
    }
};

TEST(NatsLink, QueuedSubscriptionsTakeEffectInTheirPlaceAmongPublications) {
    NatsServer nats;
    std::atomic<std::uint64_t> lost{0};
    Received received;  // before the link: its handlers run until the link is gone
    auto link = open_link(nats, lost);
    ASSERT_TRUE(link);
    auto id = link->subscribe_in_order("t.s", received.handler(), {});
    ASSERT_TRUE(id) << id.error().message;
    // Published right behind the subscription, on the same connection: NATS has it first.
    ASSERT_TRUE(link->publish("t.s", "1"));
    ASSERT_TRUE(eventually([&] { return received.taken().size() == 1; }));

    // Withdrawn in its place too: what is published behind the withdrawal is not delivered,
    // and "t.end", behind that, says when it would have been.
    ASSERT_TRUE(link->subscribe_in_order("t.end", received.handler(), {}));
    link->unsubscribe(*id);
    ASSERT_TRUE(link->publish("t.s", "2"));
    ASSERT_TRUE(link->publish("t.end", "x"));
    ASSERT_TRUE(eventually([&] { return received.taken().size() == 2; }));
    EXPECT_EQ(received.taken(), (std::vector<std::string>{"t.s 1", "t.end x"}));
    EXPECT_EQ(lost, 0u);
}

TEST(NatsLink, ASubscriptionNatsRefusesIsHandedBackWithItsId) {
    NatsServer nats;
    std::atomic<std::uint64_t> lost{0};
    Received received;
    Slot<std::pair<std::uint64_t, std::string>> refused;
    auto link = open_link(nats, lost);
    ASSERT_TRUE(link);
    // Not a NATS subject: nats.c refuses it on the queue's thread, after the id was given.
    auto id = link->subscribe_in_order("t..bad", received.handler(),
                                       [&](std::uint64_t rid, const Error& why) {
                                           refused.set({rid, why.message});
                                       });
    ASSERT_TRUE(id);
    auto [rid, why] = refused.get();
    EXPECT_EQ(rid, *id);
    EXPECT_NE(why.find("t..bad"), std::string::npos) << why;
    link->unsubscribe(*id);  // forgotten already: nothing to do

    // The link goes on as before.
    ASSERT_TRUE(link->subscribe_in_order("t.good", received.handler(), {}));
    ASSERT_TRUE(link->publish("t.good", "1"));
    ASSERT_TRUE(
        eventually([&] { return received.taken() == std::vector<std::string>{"t.good 1"}; }));
}

TEST(NatsLink, ClosingWithTheWriterStuckBehindAStoppedNatsFreesWhatItHeld) {
    NatsServer nats;
    std::atomic<std::uint64_t> lost{0};
    Received received;
    auto link = open_link(nats, lost, 500ms);
    ASSERT_TRUE(link);
    auto held = link->subscribe_in_order("t.held", received.handler(), {});
    ASSERT_TRUE(held);
    ASSERT_TRUE(link->flush(10s));  // NATS has it

    auto paused = nats.paused();
    // Until 5,000 refusals in a row say the writer is stuck in its write (refusals alone could
    // come from a writer merely behind), or the write deadline ended it.
    const std::string piece(4096, 'x');
    Result<void> r;
    int refused_in_a_row = 0;
    for (int i = 0; i < 2'000'000 && refused_in_a_row < 5'000; ++i) {
        r = link->publish("t.fill", piece);
        if (!r && r.error().code != Errc::overloaded) break;
        refused_in_a_row = r ? 0 : refused_in_a_row + 1;
    }
    ASSERT_FALSE(r);
    // Queued behind the stuck write: a subscription, the withdrawal of the held one, and more.
    (void)link->subscribe_in_order("t.queued", received.handler(), {});
    link->unsubscribe(*held);
    (void)link->publish("t.fill", piece, /*essential=*/true);

    // Closing waits for the write under way (at most its deadline), drops what is queued
    // (counting the messages among it) and frees every subscription, made or not. The stuck
    // write is lost at least, to the deadline or to the close.
    link.reset();
    EXPECT_GE(lost, 1u);
}

}  // namespace
}  // namespace hawser::test
