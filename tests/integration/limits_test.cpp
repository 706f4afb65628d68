// Limits: pending calls, slow consumers, maximum connections.
#include <atomic>
#include <latch>
#include <random>

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

TEST(Limits, PendingCallsPerConnectionAreBounded) {
    HeldReplies held;
    Fixture f([&](Commands& c) { c.console("stall", held.handler()); }, {}, loopback_server(),
              [](ClientOptions& o) { o.limits.max_pending_calls = 8; });
    std::latch done(9);
    std::atomic<int> too_many{0};
    for (int i = 0; i < 9; ++i)
        f.to_server.call("stall", "", [&](Result<std::string> r) {
            if (!r && r.error().code == Errc::too_many_pending) ++too_many;
            done.count_down();
        });
    ASSERT_TRUE(eventually([&] { return held.size() == 8; }));
    EXPECT_EQ(too_many.load(), 1);
    held.reply_all("ok");
    done.wait();
}

TEST(Limits, ServerBoundsHandlersInFlightPerConnection) {
    auto so = loopback_server();
    so.limits.max_pending_calls = 4;
    HeldReplies held;
    Fixture f([&](Commands& c) { c.console("stall", held.handler()); }, {}, so);
    std::latch done(5);
    std::atomic<int> refused{0};
    for (int i = 0; i < 5; ++i)
        f.to_server.call("stall", "", [&](Result<std::string> r) {
            if (!r && r.error().code == Errc::too_many_pending) ++refused;
            done.count_down();
        });
    ASSERT_TRUE(eventually([&] { return refused == 1; }));
    held.reply_all("ok");
    done.wait();
}

TEST(Limits, SlowConsumerIsCutOff) {
    auto so = plaintext_server();
    so.limits.max_send_queue_bytes = 1u << 20;
    Server server(so);
    Slot<CloseReason> reason;
    server.on_disconnect([&](const Connection&, CloseReason r) { reason.set(r); });
    server.start().value();
    RawSocket reader_that_never_reads(server.ports()[0], 4096);
    reader_that_never_reads.plaintext_hello();
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 1; }));
    std::string chunk(64 * 1024, '\0');  // incompressible, so compression cannot shrink it
    std::mt19937 rng(1);
    for (auto& c : chunk) c = static_cast<char>(rng());
    // Broadcast until the kernel buffers fill and the send queue passes its limit.
    // (A broadcast refused `overloaded` waits for the IO thread to catch up: try again.)
    EXPECT_TRUE(eventually([&] {
        auto r = server.broadcast("spam", chunk);
        EXPECT_TRUE(r || r.error().code == Errc::overloaded);
        return reason.has();
    }));
    EXPECT_EQ(reason.get(), CloseReason::slow_consumer);
    EXPECT_EQ(server.stats().closed(CloseReason::slow_consumer), 1u);
}

TEST(Limits, MaxConnectionsRefusesTheExtraOnes) {
    auto so = plaintext_server();
    so.max_connections = 3;
    Server server(so);
    server.start().value();
    std::vector<std::unique_ptr<RawSocket>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<RawSocket>(server.ports()[0]));
        held.back()->plaintext_hello();
    }
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 3; }));
    RawSocket extra(server.ports()[0]);
    extra.read_until_closed();  // the server closes it at once
    EXPECT_EQ(server.stats().refused, 1u);
    EXPECT_EQ(server.connection_count(), 3u);
}

TEST(Limits, LimitsChangeWhileRunning) {
    auto so = plaintext_server();
    so.max_connections = 1;
    Server server(so);
    server.start().value();
    RawSocket first(server.ports()[0]);
    first.plaintext_hello();
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 1; }));
    {
        RawSocket refused(server.ports()[0]);
        refused.read_until_closed();
    }
    EXPECT_EQ(server.stats().closed(CloseReason::max_connections), 1u);

    // A bad rule changes nothing.
    AdmissionOptions bad = so.admission;
    bad.deny = {"not a range"};
    EXPECT_FALSE(server.update_limits(2, bad));
    {
        RawSocket refused(server.ports()[0]);
        refused.read_until_closed();
    }
    EXPECT_EQ(server.stats().closed(CloseReason::max_connections), 2u);

    // A higher cap lets the next one in; a deny rule then refuses loopback.
    ASSERT_TRUE(server.update_limits(2, so.admission));
    RawSocket second(server.ports()[0]);
    second.plaintext_hello();
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 2; }));
    AdmissionOptions deny = so.admission;
    deny.deny = {"127.0.0.0/8"};
    ASSERT_TRUE(server.update_limits(0, deny));
    {
        RawSocket denied(server.ports()[0]);
        denied.read_until_closed();
    }
    EXPECT_EQ(server.stats().closed(CloseReason::denied), 1u);
    EXPECT_EQ(server.connection_count(), 2u);  // the open ones stay
}
