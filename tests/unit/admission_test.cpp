// Admission without sockets: sources (/32, /64), per-source caps, and a full table that
// forgets nobody who still matters.
#include <gtest/gtest.h>

#include "rpc/admission.hpp"

using namespace hawser;
using namespace hawser::detail;
using namespace std::chrono_literals;

namespace {
asio::ip::address ip(const char* text) {
    return asio::ip::make_address(text);
}
AdmissionOptions options() {
    AdmissionOptions o;
    o.connections_per_second_per_ip = 0;
    return o;
}
}  // namespace

TEST(Admission, AnIpv6Slash64IsOneSource) {
    auto o = options();
    o.max_connections_per_address = 2;
    Admission a;
    a.configure(o).value();
    auto now = Admission::Clock::now();
    EXPECT_EQ(a.admit(ip("2001:db8::1"), now), CloseReason::none);
    EXPECT_EQ(a.admit(ip("2001:db8::ffff:2"), now), CloseReason::none);
    EXPECT_EQ(a.admit(ip("2001:db8::3"), now), CloseReason::too_many_per_address);
    EXPECT_EQ(a.admit(ip("2001:db8:0:1::1"), now), CloseReason::none);  // another /64
    // IPv4 and IPv4-mapped IPv6 are the same /32 source.
    EXPECT_EQ(a.admit(ip("192.0.2.7"), now), CloseReason::none);
    EXPECT_EQ(a.admit(ip("::ffff:192.0.2.7"), now), CloseReason::none);
    EXPECT_EQ(a.admit(ip("192.0.2.7"), now), CloseReason::too_many_per_address);
    EXPECT_EQ(a.admit(ip("192.0.2.8"), now), CloseReason::none);
}

TEST(Admission, TheCapCountsOpenConnectionsNotHandshakes) {
    auto o = options();
    o.max_connections_per_address = 1;
    Admission a;
    a.configure(o).value();
    auto now = Admission::Clock::now();
    ASSERT_EQ(a.admit(ip("192.0.2.1"), now), CloseReason::none);
    a.handshake_done(ip("192.0.2.1"));
    EXPECT_EQ(a.admit(ip("192.0.2.1"), now), CloseReason::too_many_per_address);
    a.closed(ip("192.0.2.1"), false);
    EXPECT_EQ(a.admit(ip("192.0.2.1"), now), CloseReason::none);
    a.closed(ip("192.0.2.1"), true);
    EXPECT_EQ(a.tracked(), 0u);  // nothing left to remember without a rate limit
}

// Filling the table must not reset the buckets of sources that were rate limited.
TEST(Admission, AFullTableForgetsNobodyWithState) {
    auto o = options();
    o.connections_per_second_per_ip = 1;
    o.connection_burst_per_ip = 1;
    o.max_tracked_addresses = 4;
    Admission a;
    a.configure(o).value();
    auto now = Admission::Clock::now();
    ASSERT_EQ(a.admit(ip("192.0.2.1"), now), CloseReason::none);  // bucket now empty
    a.closed(ip("192.0.2.1"), true);
    for (int i = 2; i <= 8; ++i)  // fills the table; later ones share the overflow entry
        a.admit(ip(("192.0.2." + std::to_string(i)).c_str()), now + 1ms);
    EXPECT_LE(a.tracked(), 4u);
    EXPECT_EQ(a.admit(ip("192.0.2.1"), now + 2s / 1000), CloseReason::rate_limited);
    // Admitted again once its bucket has refilled.
    EXPECT_EQ(a.admit(ip("192.0.2.1"), now + 2s), CloseReason::none);
}

TEST(Admission, BadOptionsAreRefused) {
    auto o = options();
    o.connections_per_second_per_ip = -1;
    Admission a;
    EXPECT_EQ(a.configure(o).error().code, Errc::invalid_argument);
    o = options();
    o.deny = {"10.0.0.0/33"};
    EXPECT_EQ(a.configure(o).error().code, Errc::invalid_argument);
}

// A connection counted in the shared entry of a full table is given back there, even when its
// source has an entry of its own by the time it closes.
TEST(Admission, OverflowConnectionsAreGivenBackWhereTheyWereCounted) {
    auto o = options();
    o.max_tracked_addresses = 1;
    Admission a;
    a.configure(o).value();
    auto now = Admission::Clock::now();
    bool first_overflow = false, second_overflow = true, third_overflow = true;
    ASSERT_EQ(a.admit(ip("192.0.2.1"), now), CloseReason::none);  // fills the table
    ASSERT_EQ(a.admit(ip("192.0.2.2"), now, &first_overflow), CloseReason::none);
    EXPECT_TRUE(first_overflow);
    a.closed(ip("192.0.2.1"), true);  // frees the table
    ASSERT_EQ(a.admit(ip("192.0.2.2"), now + 2s, &second_overflow), CloseReason::none);
    EXPECT_FALSE(second_overflow);
    a.handshake_done(ip("192.0.2.2"), first_overflow);
    a.handshake_done(ip("192.0.2.2"), second_overflow);
    EXPECT_EQ(a.handshakes(), 0u);
    a.closed(ip("192.0.2.2"), false, first_overflow);
    a.closed(ip("192.0.2.2"), false, second_overflow);
    EXPECT_EQ(a.tracked(), 0u);
    ASSERT_EQ(a.admit(ip("192.0.2.3"), now + 2s, &third_overflow), CloseReason::none);
    EXPECT_FALSE(third_overflow);
}
