#include "rpc/address.hpp"

#include <gtest/gtest.h>

using hawser::detail::parse_host_port;

TEST(Address, ParsesHostsAndPorts) {
    auto a = parse_host_port("localhost:7100");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "localhost");
    EXPECT_EQ(a->port, "7100");
    auto b = parse_host_port("[::1]:0");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->host, "::1");
    EXPECT_EQ(b->port, "0");
}

TEST(Address, RejectsBadAddressesWithAReason) {
    for (auto bad : {"", "localhost", "::1:7100", "[::1]7100", "[::1", "host:", "host:65536",
                     "host:12x", ":7100"}) {
        auto r = parse_host_port(bad);
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_NE(r.error().message.find("address"), std::string::npos);
        }
    }
}
