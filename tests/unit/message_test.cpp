#include "wire/message.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace hawser::detail;

namespace {
std::vector<std::uint8_t> encode(Kind kind, std::uint64_t id, std::string_view name,
                                 std::string_view payload) {
    std::vector<std::uint8_t> out(header_size(id, name) + payload.size());
    auto p = write_header(out.data(), kind, 0, id, name);
    std::copy(payload.begin(), payload.end(), p);
    return out;
}
}  // namespace

TEST(Message, RoundTripsHeaders) {
    for (std::uint64_t id : {0ull, 1ull, 127ull, 128ull, 300ull, 1ull << 35, ~0ull}) {
        auto bytes = encode(Kind::call_dataframe, id, "user.login", "payload");
        auto m = parse_message(bytes);
        ASSERT_TRUE(m) << id;
        EXPECT_EQ(m->kind, Kind::call_dataframe);
        EXPECT_EQ(m->id, id);
        EXPECT_EQ(m->name, "user.login");
        EXPECT_EQ(std::string(m->payload.begin(), m->payload.end()), "payload");
    }
}

TEST(Message, RejectsMalformedHeaders) {
    EXPECT_FALSE(parse_message({}));
    std::vector<std::uint8_t> unknown_kind{42, 0, 1, 0};
    EXPECT_FALSE(parse_message(unknown_kind));
    std::vector<std::uint8_t> zero_kind{0, 0, 1, 0};
    EXPECT_FALSE(parse_message(zero_kind));
    std::vector<std::uint8_t> name_past_end{1, 0, 1, 10, 'a'};
    EXPECT_FALSE(parse_message(name_past_end));
    std::vector<std::uint8_t> endless_varint{1,    0,    0x80, 0x80, 0x80, 0x80, 0x80,
                                             0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0};
    EXPECT_FALSE(parse_message(endless_varint));
    std::vector<std::uint8_t> overflowing{1,    0,    0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0x7f, 0};
    EXPECT_FALSE(parse_message(overflowing));
}

TEST(Message, CodedPayloads) {
    std::vector<std::uint8_t> p{0x00, 0x07, 'b', 'y', 'e'};
    auto c = parse_coded(p);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->first, 7);
    EXPECT_EQ(c->second, "bye");
    std::vector<std::uint8_t> short_payload{1};
    EXPECT_FALSE(parse_coded(short_payload));
}
