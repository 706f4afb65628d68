// NatsLink on a real nats-server: subscriptions queued in order with what is published, so that
// what follows one goes where it says; one nats.c refuses is handed back with its id, not lost;
// a link closed with its writer stuck behind a stopped NATS frees what it held; a link whose
// writes NATS does not take goes on reading, and reconnects past its write deadline.
#include "cluster/nats_link.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "cluster/node.hpp"
#include "cluster/tcp_relay.hpp"

namespace hawser::test {
namespace {

using detail::NatsLink;

// A link with nats.c's one delivery thread for all its subscriptions, as the channel link has:
// messages of different subscriptions arrive in the order NATS sent them.
// `url`: another way to the server (a relay) than its own.
std::unique_ptr<NatsLink> open_link(const NatsServer& nats, std::atomic<std::uint64_t>& lost,
                                    std::chrono::milliseconds write_deadline = 2s,
                                    NatsLink::Events events = {}, std::string url = {}) {
    auto o = cluster_options(nats, "link");
    o.max_publish_queue_bytes = 64 << 10;
    if (!url.empty()) o.nats_urls = {url};
    auto link = NatsLink::open(o, "hawser-link-test", std::move(events), lost,
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

// Publishes until the link has refused everything for a second, which says its writer is
// stuck (it hands a message to nats.c in microseconds; refusals alone could come from a writer
// merely behind); false if the link refused otherwise (lost NATS) or never stuck.
bool fill_until_stuck(NatsLink& link) {
    const std::string piece(4096, 'x');
    auto refused_since = std::chrono::steady_clock::now();
    bool refusing = false;
    for (int i = 0; i < 20'000'000; ++i) {
        auto r = link.publish("t.fill", piece);
        if (!r && r.error().code != Errc::overloaded) return false;
        auto now = std::chrono::steady_clock::now();
        if (r) {
            refusing = false;
        } else if (!refusing) {
            refusing = true;
            refused_since = now;
        } else if (now - refused_since >= 1s) {
            return true;
        }
    }
    return false;
}

TEST(NatsLink, ReadsGoOnWhileNatsTakesNothingTheLinkWrites) {
    NatsServer nats;
    TcpRelay relay(nats.port());
    std::atomic<std::uint64_t> lost{0};
    Received received;
    // A deadline longer than the test: the link must not get out of this by reconnecting.
    auto link = open_link(nats, lost, 60s, {}, relay.url());
    ASSERT_TRUE(link);
    ASSERT_TRUE(link->subscribe("t.in", received.handler()));
    ASSERT_TRUE(link->flush(10s));

    relay.hold_client_writes(true);
    ASSERT_TRUE(fill_until_stuck(*link));
    // Another client publishes to the stuck link's subscription: NATS sends it, and the link
    // reads it although its own writes wait (nats.c's reader once waited for the writer's lock).
    std::atomic<std::uint64_t> other_lost{0};
    auto other = open_link(nats, other_lost);
    ASSERT_TRUE(other);
    // One at a time: nats.c's reader read once more after the writer stuck, then waited.
    for (std::size_t i = 1; i <= 3; ++i) {
        ASSERT_TRUE(other->publish("t.in", std::to_string(i)));
        ASSERT_TRUE(eventually([&] { return received.taken().size() == i; }, 5s)) << i;
    }
    EXPECT_EQ(received.taken(), (std::vector<std::string>{"t.in 1", "t.in 2", "t.in 3"}));
    EXPECT_TRUE(link->connected());

    // Once NATS reads again, what waited goes out, and the link works on.
    relay.hold_client_writes(false);
    ASSERT_TRUE(link->flush(10s));
    ASSERT_TRUE(link->publish("t.in", "after"));
    EXPECT_TRUE(eventually([&] { return received.taken().size() == 4; }));
}

TEST(NatsLink, NatsTakingNothingForTheWriteDeadlineMakesTheLinkReconnect) {
    NatsServer nats;
    TcpRelay relay(nats.port());
    std::atomic<std::uint64_t> lost{0};
    Received received;
    Slot<std::string> lost_because;
    std::atomic<int> connects{0};
    NatsLink::Events events;
    events.disconnected = [&](std::string why) { lost_because.set(why); };
    events.connected = [&] { ++connects; };
    auto link = open_link(nats, lost, 500ms, std::move(events), relay.url());
    ASSERT_TRUE(link);
    ASSERT_TRUE(link->subscribe("t.in", received.handler()));
    ASSERT_TRUE(link->flush(10s));
    const int connected_before = connects;

    relay.hold_client_writes(true);
    (void)fill_until_stuck(*link);  // or until the deadline ended the connection
    EXPECT_NE(lost_because.get().find("write deadline"), std::string::npos);
    relay.hold_client_writes(false);
    // nats.c connects again (through the relay) and sends the subscription again.
    ASSERT_TRUE(eventually([&] { return connects > connected_before && link->connected(); }));
    ASSERT_TRUE(link->flush(10s));
    ASSERT_TRUE(link->publish("t.in", "again"));
    EXPECT_TRUE(eventually([&] { return received.taken().size() == 1; }));
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
    // Until the writer is stuck, or the write deadline ended the connection.
    ASSERT_TRUE(fill_until_stuck(*link) || !link->connected());
    const std::string piece(4096, 'x');
    // Queued behind the stuck write: a subscription, the withdrawal of the held one, and more.
    (void)link->subscribe_in_order("t.queued", received.handler(), {});
    link->unsubscribe(*held);
    (void)link->publish("t.fill", piece, /*essential=*/true);

    // Closing drops what is queued (counting the messages among it) and frees every
    // subscription, made or not (LeakSanitizer checks). No count is asserted: had the deadline
    // ended the connection first, what nats.c held went with it, uncounted, and what was queued
    // may since have fit in nats.c's buffer for the reconnect.
    link.reset();
}

TEST(NatsLink, NatsRefusingItsAuthorisationForGoodIsReportedOnceAndRefusesWhatFollows) {
    NatsServer nats(0, {"--user", "hawser", "--pass", "one"});
    std::atomic<std::uint64_t> lost{0};
    Slot<std::string> closed;
    std::atomic<int> closed_events{0};
    NatsLink::Events events;
    events.closed = [&](std::string why) {
        ++closed_events;
        closed.set(std::move(why));
    };
    auto o = cluster_options(nats, "link");
    o.nats_user = "hawser";
    o.nats_password = "one";
    {  // A link that closes itself says nothing of it.
        std::atomic<int> own_close{0};
        NatsLink::Events quiet;
        quiet.closed = [&](std::string) { ++own_close; };
        auto other = NatsLink::open(o, "hawser-link-test-own", std::move(quiet), lost, {});
        ASSERT_TRUE(other) << other.error().message;
        ASSERT_TRUE(eventually([&] { return (*other)->connected(); }));
        other->reset();
        EXPECT_EQ(own_close, 0);
    }
    auto opened = NatsLink::open(o, "hawser-link-test", std::move(events), lost, {});
    ASSERT_TRUE(opened) << opened.error().message;
    auto& link = *opened;
    ASSERT_TRUE(eventually([&] { return link->connected(); }));

    // The password changed under it: nats.c is refused twice in a row and gives up for good.
    nats.restart_with({"--user", "hawser", "--pass", "two"});
    auto why = closed.get();
    EXPECT_NE(why.find("uthorization"), std::string::npos) << why;
    EXPECT_TRUE(link->closed());
    EXPECT_EQ(link->why_closed(), why);
    EXPECT_FALSE(link->connected());
    auto sub = link->subscribe_in_order("t.s", {}, {});
    ASSERT_FALSE(sub);
    EXPECT_NE(sub.error().message.find("for good"), std::string::npos) << sub.error().message;
    EXPECT_EQ(link->publish("t.s", "x").error().code, Errc::cluster_unavailable);
    link.reset();  // its own close is not reported
    EXPECT_EQ(closed_events, 1);
}

}  // namespace
}  // namespace hawser::test
