// The big-stream payload codecs: what is encoded parses back, and every malformed shape is
// refused.
#include <gtest/gtest.h>

#include "wire/stream_messages.hpp"

using namespace hawser::detail;

TEST(StreamMessages, OpenAcceptCreditRoundTrip) {
    std::vector<std::uint8_t> meta{0x91, 0x01}, out;
    encode_stream_open(out, {12345, true, meta});
    auto open = parse_stream_open(out);
    ASSERT_TRUE(open);
    EXPECT_EQ(open->size, 12345u);
    EXPECT_TRUE(open->resumable);
    EXPECT_EQ(std::vector<std::uint8_t>(open->metadata.begin(), open->metadata.end()), meta);
    encode_stream_accept(out, {7, 65536});
    auto accept = parse_stream_accept(out);
    ASSERT_TRUE(accept);
    EXPECT_EQ(accept->offset, 7u);
    EXPECT_EQ(accept->window, 65536u);
    encode_stream_credit(out, 99);
    EXPECT_EQ(parse_stream_credit(out), 99u);
}

TEST(StreamMessages, MalformedPayloadsAreRefused) {
    std::vector<std::uint8_t> short_open(8, 0), bad_flags(9, 0), zero_credit(4, 0),
        big_credit{0x80, 0, 0, 0}, short_end(31, 0), accept_big_window(12, 0);
    bad_flags[8] = 0x02;
    accept_big_window[8] = 0x80;
    EXPECT_FALSE(parse_stream_open(short_open));
    EXPECT_FALSE(parse_stream_open(bad_flags));
    EXPECT_FALSE(parse_stream_credit(zero_credit));
    EXPECT_FALSE(parse_stream_credit(big_credit));
    EXPECT_FALSE(parse_stream_end(short_end));
    EXPECT_FALSE(parse_stream_accept(accept_big_window));
    EXPECT_FALSE(parse_stream_accept(std::vector<std::uint8_t>(11, 0)));
}
