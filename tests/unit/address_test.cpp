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

TEST(Address, HostPortTextIsWhatParseReads) {
    using hawser::detail::host_port_text;

    EXPECT_EQ(host_port_text("127.0.0.1", 7100), "127.0.0.1:7100");
    EXPECT_EQ(host_port_text("::1", 7100), "[::1]:7100");
    EXPECT_EQ(host_port_text("::ffff:10.0.0.1", 80), "[::ffff:10.0.0.1]:80");
    auto back = parse_host_port(host_port_text("2001:db8::7", 443));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->host, "2001:db8::7");
    EXPECT_EQ(back->port, "443");
}
