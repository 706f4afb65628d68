#include "hawser/zdb/declarative_filter.hpp"

#include <gtest/gtest.h>

#include "zdb_support.hpp"

using namespace hawser;
using namespace hawser::zdb;
using zdb_test::op;

namespace {

Map player() {
    return Map{{"name", Value("northwind")},
               {"level", Value(42)},
               {"score", Value(3.5)},
               {"tags", Value(Array{Value("pvp"), Value("eu")})},
               {"guild", Value(Map{{"name", Value("owls")}, {"size", Value(12)}})},
               {"active", Value(true)}};
}

bool matches(const Map& filter) {
    auto f = compile_filter(filter);
    EXPECT_TRUE(f) << (f ? "" : f.error().message);
    return f && (*f)(1, player(), {});
}

}  // namespace

TEST(DeclarativeFilter, EveryOperator) {
    EXPECT_TRUE(matches({{"level", Value(42)}}));
    EXPECT_TRUE(matches(op("level", "$eq", Value(42.0))));  // numbers compare across kinds
    EXPECT_FALSE(matches(op("level", "$ne", Value(42))));
    EXPECT_TRUE(matches(op("missing", "$ne", Value(1))));
    EXPECT_TRUE(matches(op("level", "$gt", Value(41))));
    EXPECT_FALSE(matches(op("level", "$gt", Value(42))));
    EXPECT_TRUE(matches(op("level", "$gte", Value(42))));
    EXPECT_TRUE(matches(op("score", "$lt", Value(4))));
    EXPECT_TRUE(matches(op("score", "$lte", Value(3.5))));
    EXPECT_FALSE(matches(op("name", "$gt", Value(5))));  // different kinds never order
    EXPECT_TRUE(matches(op("name", "$gt", Value("a"))));
    EXPECT_TRUE(matches(op("level", "$in", Value(Array{Value(1), Value(42)}))));
    EXPECT_TRUE(matches(op("level", "$nin", Value(Array{Value(1), Value(2)}))));
    EXPECT_TRUE(matches(op("guild.size", "$exists", Value(true))));
    EXPECT_TRUE(matches(op("guild.rank", "$exists", Value(false))));
    EXPECT_TRUE(matches(op("name", "$prefix", Value("north"))));
    EXPECT_FALSE(matches(op("name", "$prefix", Value("wind"))));
    EXPECT_TRUE(matches(op("name", "$contains", Value("thwi"))));
    EXPECT_TRUE(matches(op("tags", "$contains", Value("eu"))));
    EXPECT_TRUE(matches({{"guild.name", Value("owls")}}));
    EXPECT_TRUE(matches({{"active", Value(true)}}));
    // A whole array among the candidates (the field decoded once for all of them).
    EXPECT_TRUE(matches(
        op("tags", "$in", Value(Array{Value(1), Value(Array{Value("pvp"), Value("eu")})}))));
    EXPECT_FALSE(matches(op("tags", "$in", Value(Array{Value(Array{Value("pvp")})}))));
    EXPECT_TRUE(matches(op("name", "$contains", Value(""))));
    EXPECT_FALSE(matches(op("name", "$contains", Value("windy"))));
}

TEST(DeclarativeFilter, ContainsFindsAPatternInALongRunOfItsOwnLetters) {
    // The pair a plain find takes text times pattern on: found or not, by Boyer-Moore.
    std::string run(200000, 'a');
    auto record = Map{{"text", Value(run + "b")}};
    auto pattern = std::string(4000, 'a') + "b";
    EXPECT_TRUE(compile_filter(op("text", "$contains", Value(pattern))).value()(1, record, {}));
    auto missing = std::string(4000, 'a') + "c";
    EXPECT_FALSE(compile_filter(op("text", "$contains", Value(missing))).value()(1, record, {}));
}

TEST(DeclarativeFilter, LogicalOperators) {
    Map level_ok = op("level", "$gte", Value(40)), level_bad = op("level", "$gte", Value(50));
    EXPECT_TRUE(matches(
        {{"$and", Value(Array{Value(level_ok), Value(op("name", "$prefix", Value("n")))})}}));
    EXPECT_FALSE(matches({{"$and", Value(Array{Value(level_ok), Value(level_bad)})}}));
    EXPECT_TRUE(matches({{"$or", Value(Array{Value(level_bad), Value(level_ok)})}}));
    EXPECT_FALSE(matches({{"$or", Value(Array{Value(level_bad)})}}));
    EXPECT_TRUE(matches({{"$not", Value(level_bad)}}));
    // Several fields in one map are all required.
    EXPECT_FALSE(matches({{"level", Value(42)}, {"name", Value("other")}}));
    EXPECT_TRUE(matches({}));  // the empty filter matches everything
}

TEST(DeclarativeFilter, MalformedFiltersSayWhat) {
    struct Case {
        Map filter;
        const char* mentions;
    } cases[] = {
        {op("level", "$between", Value(1)), "$between"},
        {{{"$xor", Value(Array{})}}, "$xor"},
        {{{"$or", Value(Array{})}}, "$or"},
        {{{"$and", Value(5)}}, "$and"},
        {{{"$or", Value(Array{Value(1)})}}, "filter maps"},
        {{{"$not", Value("x")}}, "$not"},
        {op("level", "$in", Value(3)), "$in"},
        {op("level", "$exists", Value(1)), "$exists"},
        {op("name", "$prefix", Value(3)), "$prefix"},
        {{{"", Value(1)}}, "empty field"},
        {{{std::string(1025, 'a'), Value(1)}}, "at most 1024 bytes"},
        {op("name", "$contains", Value(std::string(4097, 'a'))), "at most 4096 bytes"},
        {{{[] {
               std::string path = "a";
               for (int i = 0; i < 32; ++i) path += ".a";
               return path;
           }(),
           Value(1)}},
         "deeper than 32"},
    };
    for (const auto& c : cases) {
        auto f = compile_filter(c.filter);
        ASSERT_FALSE(f) << c.mentions;
        EXPECT_EQ(f.error().code, Errc::invalid_argument);
        EXPECT_NE(f.error().message.find(c.mentions), std::string::npos) << f.error().message;
    }
}
