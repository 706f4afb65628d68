// Reading fields of stored records in place: every MessagePack kind, nested paths, and bytes
// that are truncated, malformed or nested too deep.
#include "zdb/record_view.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace hawser;
using namespace hawser::zdb;

namespace {

std::string encode(const Map& m) {
    DataFrame df;
    df << m;
    return df.bytes();
}

}  // namespace

TEST(RecordView, FindsEveryKindInPlace) {
    Map inner{{"deep", Value(Map{{"x", Value(-7)}})}};
    Map m{{"nil", Value(nullptr)},
          {"t", Value(true)},
          {"small", Value(5)},
          {"neg", Value(-100000)},
          {"big", Value(std::numeric_limits<std::uint64_t>::max())},
          {"min", Value(std::numeric_limits<std::int64_t>::min())},
          {"real", Value(2.5)},
          {"text", Value(std::string(300, 'q'))},
          {"bin", Value(Bytes{1, 2, 3})},
          {"list", Value(Array{Value(1), Value("two")})},
          {"inner", Value(inner)}};
    auto bytes = encode(m);
    RecordView v(bytes);
    using K = Field::Kind;
    EXPECT_EQ(v.find({"nil"})->kind, K::nil);
    EXPECT_TRUE(v.find({"t"})->boolean);
    EXPECT_EQ(v.find({"small"})->integer, 5);
    EXPECT_EQ(v.find({"neg"})->integer, -100000);
    EXPECT_EQ(v.find({"big"})->kind, K::unsigned_integer);
    EXPECT_EQ(v.find({"big"})->unsigned_integer, std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(v.find({"min"})->integer, std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(v.find({"real"})->real, 2.5);
    EXPECT_EQ(v.find({"text"})->text, std::string(300, 'q'));
    EXPECT_EQ(v.find({"bin"})->kind, K::binary);
    EXPECT_EQ(v.find({"list"})->count, 2u);
    EXPECT_EQ(v.find({"list"})->decode().value(), m.at("list"));
    EXPECT_EQ(v.find({"inner"})->decode().value(), Value(inner));
    EXPECT_EQ(v.find(split_path("inner.deep.x"))->integer, -7);
    EXPECT_FALSE(v.find(split_path("inner.deep.y")));
    EXPECT_FALSE(v.find(split_path("small.x")));  // not a map
    EXPECT_FALSE(v.find({"absent"}));
    EXPECT_FALSE(v.corrupt());
}

TEST(RecordView, MalformedBytesAreReportedNotRead) {
    auto bytes = encode(Map{{"a", Value(std::string(40, 'x'))}, {"b", Value(1)}});
    for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
        RecordView v(std::string_view(bytes).substr(0, cut));
        EXPECT_FALSE(v.find({"b"})) << cut;
        EXPECT_TRUE(v.corrupt()) << cut;
    }
    std::string never_used(
        "\x81\xa1"
        "a\xc1",
        4);  // 0xc1 is not a MessagePack type
    RecordView bad(never_used);
    EXPECT_FALSE(bad.find({"a"}));
    EXPECT_TRUE(bad.corrupt());
    // 40 nested single-element arrays: deeper than any record may be.
    std::string deep =
        "\x82\xa1"
        "a" +
        std::string(40, '\x91') + "\x01" +
        "\xa1"
        "b\x02";
    RecordView too_deep(deep);
    EXPECT_FALSE(too_deep.find({"b"}));
    EXPECT_TRUE(too_deep.corrupt());
    Field f;
    EXPECT_EQ(read_field(deep, f), 0u);
    // A declared length far beyond the end.
    std::string huge(
        "\x81\xa1"
        "a\xdb\xff\xff\xff\xff",
        8);
    RecordView lying(huge);
    EXPECT_FALSE(lying.find({"a"}));
    EXPECT_TRUE(lying.corrupt());
}
