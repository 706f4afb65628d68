#include "hawser/dataframe.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <limits>

using namespace hawser;

TEST(DataFrame, RoundTripsEveryType) {
    DataFrame nested;
    nested << "inner" << 7;
    Map map{{"name", Value("ada")},
            {"age", Value(36)},
            {"tags", Value(Array{Value("x"), Value(true)})}};
    DataFrame df;
    df << true << -42 << std::uint64_t(std::numeric_limits<std::uint64_t>::max()) << 3.25 << "text"
       << Bytes{0, 1, 255} << nested << std::vector<std::int64_t>{1, -2, 3}
       << std::vector<double>{0.5, 1.5} << map << Value(nullptr);
    EXPECT_EQ(df.size(), 11u);

    auto decoded = DataFrame::decode(df.bytes());
    ASSERT_TRUE(decoded) << decoded.error().message;
    DataFrame& in = *decoded;
    EXPECT_EQ(in.size(), 11u);
    EXPECT_EQ(in.read_bool().value(), true);
    EXPECT_EQ(in.read_int().value(), -42);
    EXPECT_EQ(in.read_uint().value(), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(in.read_double().value(), 3.25);
    EXPECT_EQ(in.read_string().value(), "text");
    EXPECT_EQ(in.read_bytes().value(), (Bytes{0, 1, 255}));
    auto inner = in.read_frame().value();
    EXPECT_EQ(inner.size(), 2u);
    EXPECT_EQ(inner.read_string().value(), "inner");
    EXPECT_EQ(inner.read_int().value(), 7);
    EXPECT_TRUE(inner.at_end());
    EXPECT_EQ(in.read_ints().value(), (std::vector<std::int64_t>{1, -2, 3}));
    EXPECT_EQ(in.read_doubles().value(), (std::vector<double>{0.5, 1.5}));
    EXPECT_EQ(in.read_map().value(), map);
    EXPECT_TRUE(in.read_value().value().is<std::nullptr_t>());
    EXPECT_TRUE(in.at_end());
}

TEST(DataFrame, TypeMismatchIsATypedErrorAndDoesNotAdvance) {
    DataFrame df;
    df << "not a number" << 5;
    auto bad = df.read_int();
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, Errc::type_mismatch);
    EXPECT_NE(bad.error().message.find("string"), std::string::npos);
    EXPECT_EQ(df.read_string().value(), "not a number");  // still there
    EXPECT_EQ(df.read_int().value(), 5);
    auto end = df.read_int();
    ASSERT_FALSE(end);
    EXPECT_EQ(end.error().code, Errc::end_of_data);
}

TEST(DataFrame, IntegerSignednessFollowsMessagePack) {
    DataFrame df;
    df << std::uint64_t(1) << std::int64_t(-1) << std::uint64_t(1ull << 63);
    EXPECT_EQ(df.read_int().value(), 1);  // a small unsigned reads as signed
    EXPECT_EQ(df.read_uint().error().code, Errc::type_mismatch);  // negative as unsigned
    df.read_int().value();
    EXPECT_EQ(df.read_int().error().code, Errc::type_mismatch);  // does not fit int64
    EXPECT_EQ(df.read_uint().value(), 1ull << 63);
}

TEST(DataFrame, GetThrowsOnMismatch) {
    DataFrame df;
    df << 1.5;
    EXPECT_THROW(df.get<std::string>(), Exception);
    EXPECT_EQ(df.get<double>(), 1.5);
}

TEST(DataFrame, EncodedValuesAreAppendedAsTheyAreOnlyWhenWellFormed) {
    DataFrame one;
    one << Map{{"level", Value(7)}, {"name", Value("ann")}};
    DataFrame df;
    df << std::uint64_t(1);
    ASSERT_TRUE(df.append_encoded(one.bytes()));
    df << "after";
    EXPECT_EQ(df.size(), 3u);
    EXPECT_EQ(df.get<std::uint64_t>(), 1u);
    EXPECT_EQ(df.get<Map>().at("name").as<std::string>(), "ann");
    EXPECT_EQ(df.get<std::string>(), "after");

    DataFrame two;
    two << 1 << 2;
    auto before = df.bytes();
    EXPECT_EQ(df.append_encoded(two.bytes()).error().code, Errc::invalid_argument);
    EXPECT_FALSE(df.append_encoded(std::string_view(one.bytes()).substr(0, 3)));  // truncated
    EXPECT_FALSE(df.append_encoded(""));
    EXPECT_EQ(df.bytes(), before);  // nothing appended
    EXPECT_EQ(df.size(), 3u);
}

TEST(DataFrame, RejectsTruncatedAndMalformedInput) {
    DataFrame df;
    df << "hello world";
    auto bytes = df.bytes();
    auto truncated = DataFrame::decode(std::string_view(bytes).substr(0, bytes.size() - 3));
    ASSERT_FALSE(truncated);
    EXPECT_EQ(truncated.error().code, Errc::bad_payload);
    // 0xc1 is never used in MessagePack.
    EXPECT_FALSE(DataFrame::decode(std::string("\xc1", 1)));
    // ext types are not part of DataFrame.
    EXPECT_FALSE(DataFrame::decode(std::string("\xd4\x01\x00", 3)));
    // A map with a non-string key decodes (it is valid MessagePack) but reads as a typed error.
    auto m = DataFrame::decode(std::string("\x81\x01\x02", 3));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->read_map().error().code, Errc::type_mismatch);
}

TEST(DataFrame, DecodingIsBounded) {
    // An array header claiming 2^32-1 elements in five bytes must not allocate for them.
    auto huge = DataFrame::decode(std::string("\xdd\xff\xff\xff\xff", 5));
    ASSERT_FALSE(huge);
    EXPECT_EQ(huge.error().code, Errc::limit_exceeded);

    std::string deep(40, '\x91');  // 40 nested one-element arrays
    deep += '\x00';
    auto too_deep = DataFrame::decode(deep);
    ASSERT_FALSE(too_deep);
    EXPECT_EQ(too_deep.error().code, Errc::limit_exceeded);

    DataFrame many;
    for (int i = 0; i < 100; ++i) many << i;
    DecodeLimits limits;
    limits.max_elements = 50;
    EXPECT_EQ(DataFrame::decode(many.bytes(), limits).error().code, Errc::limit_exceeded);
    limits = {};
    limits.max_bytes = 10;
    EXPECT_EQ(DataFrame::decode(many.bytes(), limits).error().code, Errc::limit_exceeded);
    EXPECT_TRUE(DataFrame::decode(many.bytes()));
}

namespace {

// The process's peak resident memory so far, in KiB.
long peak_rss_kib() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

// `outer` arrays of `inner` nils inside one array: every byte is a value.
std::string nested_nils(std::uint32_t outer, std::uint8_t inner) {
    std::string bytes = {'\xdc', char(outer >> 8), char(outer & 0xff)};
    for (std::uint32_t i = 0; i < outer; ++i) {
        bytes += {'\xdc', '\x00', char(inner)};
        bytes.append(inner, '\xc0');
    }
    return bytes;
}

}  // namespace

TEST(DataFrame, AmplifyingFramesAreRefusedBeforeAnythingIsAllocated) {
    // 16 MiB of nils nested two deep: msgpack-cxx would build a 24-byte object per nil (~400 MB)
    // before anyone counted them. The headers alone must be enough to refuse it.
    auto bomb = nested_nils(64000, 255);
    ASSERT_LE(bomb.size(), DecodeLimits{}.max_bytes);
    auto before = peak_rss_kib();
    auto r = DataFrame::decode(bomb);
    auto grown_kib = peak_rss_kib() - before;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::limit_exceeded);
    EXPECT_LT(grown_kib, 32 * 1024) << "decode grew the process by " << grown_kib << " KiB";

    // A header announcing 2^24 nils with a few bytes present, at the top and nested.
    auto announced = DataFrame::decode(std::string("\xdd\x01\x00\x00\x00\xc0\xc0", 7));
    ASSERT_FALSE(announced);
    EXPECT_EQ(announced.error().code, Errc::limit_exceeded);
    // Within max_container but more elements than bytes left: nothing is allocated for them.
    auto short_array = DataFrame::decode(std::string("\x92\xdc\xff\x00\xc0\xc0\xc0", 7));
    ASSERT_FALSE(short_array);
    EXPECT_EQ(short_array.error().code, Errc::bad_payload);
}

TEST(DataFrame, DecodedMemoryHasItsOwnLimit) {
    auto frame = nested_nils(100, 100);  // 10,100 values in about 10 KB
    ASSERT_TRUE(DataFrame::decode(frame));
    DecodeLimits limits;
    limits.max_decoded_bytes = 100 * 1024;  // below the ~240 KB msgpack-cxx would build
    auto r = DataFrame::decode(frame, limits);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::limit_exceeded);
    EXPECT_NE(r.error().message.find("memory"), std::string::npos) << r.error().message;
}

TEST(DataFrame, EmptyFrame) {
    auto df = DataFrame::decode("");
    ASSERT_TRUE(df);
    EXPECT_TRUE(df->empty());
    EXPECT_EQ(df->read_bool().error().code, Errc::end_of_data);
}

TEST(DataFrame, WholeDoublesStayDoubles) {
    DataFrame df;
    df << 5.0 << Value(Map{{"score", Value(2.0)}}) << std::vector<double>{1.0, 2.5};
    auto in = DataFrame::decode(df.bytes()).value();
    EXPECT_TRUE(in.read_value()->is<double>());
    EXPECT_TRUE(in.read_map()->at("score").is<double>());
    EXPECT_EQ(in.read_value()->as<Array>().at(0), Value(1.0));
}
