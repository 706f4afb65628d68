// ZDB secondary indexes: queries answered from an index return exactly what the reference
// evaluation finds, and the index follows every kind of write, restarts and drops.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"
#include "zdb_support.hpp"

using namespace hawser;
using namespace hawser::zdb;
using zdb_test::op;
using zdb_test::reference_match;
using zdb_test::ScratchDir;

namespace {

// Records whose indexed fields hold values of several kinds, or nothing.
Map random_record(std::mt19937& rng, int i) {
    Map m{{"name", Value(std::string(1, char('a' + rng() % 6)) + std::to_string(i))},
          {"flag", Value(rng() % 2 == 0)}};
    switch (rng() % 10) {
        case 0:
            break;  // no level
        case 1:
            m["level"] = Value(double(rng() % 100) + 0.5);
            break;  // a double
        case 2:
            m["level"] = Value(std::to_string(rng() % 100));
            break;  // a string
        case 3:
            m["level"] = Value(Array{Value(1), Value(2)});
            break;  // not indexable
        default:
            m["level"] = Value(std::int64_t(rng() % 100) - 10);  // negatives too
    }
    m["guild"] = Value(Map{{"rank", Value(std::int64_t(rng() % 20))}});
    return m;
}

struct Indexed {
    ScratchDir dir{"index"};
    std::unique_ptr<Store> store = Store::open({.path = dir.path}).value();
    std::shared_ptr<Database> db = store->create("i").value();
    std::map<RecordId, Map> reference;

    // Runs the filter (indexes allowed) and checks it against the reference; returns the index
    // the query used.
    std::string check(const Map& filter, bool reverse = false) {
        std::set<RecordId> expected;
        for (const auto& [id, r] : reference)
            if (reference_match(r, filter)) expected.insert(id);
        QueryOptions o;
        o.reverse = reverse;
        o.ordered = true;
        o.parallelism = 2;
        std::vector<RecordId> got;
        auto q = run_query(db, compile_filter(filter).value(), o, [&](Fragment f) {
                     for (auto& [id, r] : f.records) {
                         EXPECT_EQ(r, reference.at(id));
                         got.push_back(id);
                     }
                 }).value();
        EXPECT_EQ(q->wait().value(), QueryEnd::completed);
        std::vector<RecordId> want(expected.begin(), expected.end());
        if (reverse) std::reverse(want.begin(), want.end());
        EXPECT_EQ(got, want);
        return q->progress().index;
    }
};

}  // namespace

TEST(ZdbIndex, IndexedQueriesMatchTheReference) {
    Indexed t;
    std::mt19937 rng(5);
    std::vector<Map> docs;
    for (int i = 0; i < 3000; ++i) docs.push_back(random_record(rng, i));
    auto ids = t.db->insert_batch(docs).value();
    for (std::size_t i = 0; i < ids.size(); ++i) t.reference[ids[i]] = docs[i];
    for (const char* field : {"level", "name", "flag", "guild.rank"})
        ASSERT_TRUE(t.db->create_index(field)) << field;
    EXPECT_EQ(t.db->stats().indexes,
              (std::vector<std::string>{"flag", "guild.rank", "level", "name"}));

    // Narrow conditions use their index; the results are the reference's either way.
    EXPECT_EQ(t.check({{"level", Value(7)}}), "level");
    EXPECT_EQ(t.check({{"level", Value(7.0)}}, true), "level");  // numbers across kinds
    EXPECT_EQ(t.check({{"level", Value("7")}}), "level");        // a string is another value
    EXPECT_EQ(t.check(op("level", "$in", Value(Array{Value(-3), Value(40.5), Value("12")}))),
              "level");
    EXPECT_EQ(t.check(Map{{"level", Value(Map{{"$gt", Value(20)}, {"$lte", Value(25)}})}}),
              "level");
    EXPECT_EQ(t.check(Map{{"level", Value(Map{{"$gte", Value(-10)}, {"$lt", Value(-8)}})}}),
              "level");
    EXPECT_EQ(t.check(op("level", "$lt", Value("2"))), "level");  // strings order byte-wise
    EXPECT_EQ(t.check(op("name", "$prefix", Value("c12"))), "name");
    EXPECT_EQ(t.check({{"name", Value("d100")}}), "name");
    EXPECT_EQ(t.check({{"guild.rank", Value(3)}, {"flag", Value(true)}}), "guild.rank");
    // Equality wins over a range.
    EXPECT_EQ(t.check(Map{{"level", Value(Map{{"$gte", Value(0)}})}, {"name", Value("a7")}}),
              "name");
    // An $or uses the union of one index per branch, when every branch has a narrow one.
    auto either = [](Map a, Map b) { return Map{{"$or", Value(Array{Value(a), Value(b)})}}; };
    EXPECT_EQ(t.check(either({{"level", Value(7)}}, {{"level", Value(8)}})), "level | level");
    EXPECT_EQ(t.check(either({{"level", Value(7)}, {"flag", Value(true)}},
                             {{"name", Value(Map{{"$prefix", Value("b2")}})}}),
                      true),
              "level | name");
    EXPECT_EQ(
        t.check(Map{
            {"$and", Value(Array{Value(either({{"guild.rank", Value(2)}}, {{"name", Value("c5")}})),
                                 Value(Map{{"flag", Value(false)}})})}}),
        "guild.rank | name");
    EXPECT_EQ(t.check(either({{"level", Value(7)}}, {{"unindexed", Value(1)}})), "");
    EXPECT_EQ(t.check(either({{"level", Value(7)}}, {{"flag", Value(true)}})), "");  // broad
    // A narrow condition beside the $or is taken before the union.
    auto beside = either({{"level", Value(7)}}, {{"level", Value(8)}});
    beside["name"] = Value("d100");
    EXPECT_EQ(t.check(beside), "name");
    // Conditions of different kinds on one field match nothing, and need no scan to say so.
    EXPECT_EQ(t.check(Map{{"level", Value(Map{{"$gt", Value(5)}, {"$lt", Value("9")}})}}), "level");
    // Broad conditions are cheaper as a scan.
    EXPECT_EQ(t.check(op("level", "$gte", Value(-5))), "");
    EXPECT_EQ(t.check({{"flag", Value(true)}}), "");

    // Random mixes of indexable and other conditions.
    for (int round = 0; round < 40; ++round) {
        std::int64_t n = std::int64_t(rng() % 110) - 10;
        const char* ops[] = {"$eq", "$gt", "$gte", "$lt", "$lte"};
        Map filter = op("level", ops[rng() % 5], Value(n));
        if (round % 2)
            filter["name"] = Value(Map{{"$prefix", Value(std::string(1, 'a' + rng() % 6))}});
        if (round % 3 == 0)
            filter["guild.rank"] = Value(Map{{"$ne", Value(std::int64_t(rng() % 20))}});
        t.check(filter, round % 4 == 0);
        // And an $or of it with an equality on another indexed field.
        auto rank = Map{{"guild.rank", Value(std::int64_t(rng() % 20))}};
        t.check({{"$or", Value(Array{Value(filter), Value(rank)})}}, round % 4 == 1);
    }
}

TEST(ZdbIndex, IndexesFollowEveryWriteAndRestart) {
    std::mt19937 rng(9);
    ScratchDir dir("index_writes");
    std::map<RecordId, Map> reference;
    {
        auto store = Store::open({.path = dir.path}).value();
        auto db = store->create("w").value();
        ASSERT_TRUE(db->create_index("level"));  // before any record: built empty, then kept
        for (int i = 0; i < 400; ++i) {
            auto r = random_record(rng, i);
            reference[db->insert(r).value()] = r;
        }
        for (int i = 0; i < 600; ++i) {
            auto it = std::next(reference.begin(), rng() % reference.size());
            switch (rng() % 4) {
                case 0: {  // replace
                    auto r = random_record(rng, i);
                    ASSERT_TRUE(db->replace(it->first, r));
                    it->second = r;
                    break;
                }
                case 1: {  // patch the indexed field, or remove it with nil
                    Value v = rng() % 3 ? Value(std::int64_t(rng() % 100)) : Value(nullptr);
                    ASSERT_TRUE(db->patch(it->first, Map{{"level", v}}));
                    if (v.is<std::nullptr_t>())
                        it->second.erase("level");
                    else
                        it->second["level"] = v;
                    break;
                }
                case 2:  // remove
                    ASSERT_TRUE(db->remove(it->first));
                    reference.erase(it);
                    break;
                default: {
                    auto r = random_record(rng, i);
                    reference[db->insert(r).value()] = r;
                }
            }
        }
    }
    // After a restart the index is still there, still used, still exact.
    auto store = Store::open({.path = dir.path}).value();
    Indexed t;
    t.db = store->database("w").value();
    t.reference = reference;
    EXPECT_EQ(t.db->stats().indexes, std::vector<std::string>{"level"});
    for (std::int64_t v = -10; v < 100; v += 3) EXPECT_EQ(t.check({{"level", Value(v)}}), "level");
    // An index built over existing records agrees with one kept from the start.
    ASSERT_TRUE(t.db->create_index("guild.rank"));
    for (std::int64_t v = 0; v < 20; ++v)
        EXPECT_EQ(t.check({{"guild.rank", Value(v)}}), "guild.rank");
    // Dropped: the same queries scan, with the same results.
    ASSERT_TRUE(t.db->drop_index("level"));
    EXPECT_EQ(t.check({{"level", Value(5)}}), "");
    EXPECT_EQ(t.db->stats().indexes, std::vector<std::string>{"guild.rank"});
}

TEST(ZdbIndex, BadIndexRequestsSayWhy) {
    ScratchDir dir("index_errors");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("e").value();
    ASSERT_TRUE(db->create_index("a.b"));
    EXPECT_EQ(db->create_index("a.b").error().code, Errc::invalid_argument);
    for (const char* bad : {"", ".a", "a.", "a..b"})
        EXPECT_EQ(db->create_index(bad).error().code, Errc::invalid_argument) << bad;
    std::string deep = "a";
    for (int i = 0; i < 32; ++i) deep += ".a";  // 33 steps: no record is that deep
    EXPECT_EQ(db->create_index(deep).error().code, Errc::invalid_argument);
    EXPECT_EQ(db->create_index(std::string(1025, 'x')).error().code, Errc::invalid_argument);
    EXPECT_EQ(db->drop_index("nope").error().code, Errc::not_found);
    for (int i = 0; i < 63; ++i) ASSERT_TRUE(db->create_index("f" + std::to_string(i)));
    auto over = db->create_index("one_more");
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().code, Errc::limit_exceeded);
    EXPECT_NE(over.error().message.find("64"), std::string::npos) << over.error().message;
    // Dropped and made again, indexes take the numbers freed: cycles never run out of them.
    for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(db->drop_index("f" + std::to_string(i % 63)));
        ASSERT_TRUE(db->create_index("f" + std::to_string(i % 63)));
    }
    EXPECT_EQ(db->stats().indexes.size(), 64u);
}
