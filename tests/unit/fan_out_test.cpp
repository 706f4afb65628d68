// Fan-outs waiting for their IO thread are bounded in what they hold: the frame and the ids of
// the connections they go to. On a loop with a manual clock, nothing runs until the test says.
#include <gtest/gtest.h>

#include <vector>

#include "rpc/broadcast.hpp"
#include "rpc/host.hpp"
#include "rpc/loop.hpp"

namespace hawser::detail {
namespace {

TEST(FanOut, WaitingFanOutsCountTheIdsTheyHold) {
    RuntimeImpl runtime(RuntimeOptions{1, 1}, Loop::ClockMode::manual);
    Limits limits;
    limits.max_send_queue_bytes = 1u << 20;
    auto host = std::make_shared<Host>(runtime, false, ProtocolMark{}, limits, Timeouts{},
                                       TransportOptions{});
    // A big channel's subscribers (none of them connected: the ids are what is held) and a
    // small message: 80,000 bytes of ids against a frame of a few dozen.
    std::vector<ConnectionId> subscribers(10'000);
    for (std::size_t i = 0; i < subscribers.size(); ++i) subscribers[i] = i << 8;
    auto publish = [&] {
        FanOut to;
        to.only = &subscribers;
        return fan_out(host, Kind::direct_console, "news", "hi", false, std::move(to));
    };
    int accepted = 0;
    Result<void> last;
    while ((last = publish()) && accepted < 1000) ++accepted;
    ASSERT_FALSE(last);
    EXPECT_EQ(last.error().code, Errc::overloaded);
    auto held = subscribers.size() * sizeof(ConnectionId);
    EXPECT_EQ(std::size_t(accepted), limits.max_send_queue_bytes / held);
    // Once the loop has run them, what they held is given back.
    runtime.loop(0).run_here([] {});
    EXPECT_EQ(host->counters.broadcast_pending_bytes.load(), 0u);
    EXPECT_TRUE(publish());
    runtime.loop(0).run_here([] {});
}

}  // namespace
}  // namespace hawser::detail
