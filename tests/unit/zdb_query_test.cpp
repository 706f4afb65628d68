// ZDB filter queries against a real RocksDB: results checked against a plain in-memory
// evaluation of the same filter over the same random data.
#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"

#include "zdb_support.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <random>
#include <set>
#include <thread>

using namespace hawser;
using namespace hawser::zdb;
using namespace std::chrono_literals;

namespace {

struct Fixture {
    std::string path = ::testing::TempDir() + "zdb_query_" + std::to_string(::getpid());
    std::unique_ptr<Store> store;
    std::shared_ptr<Database> db;
    std::map<RecordId, Map> reference;

    explicit Fixture(int records) {
        std::filesystem::remove_all(path);
        store = Store::open({.path = path}).value();
        db = store->create("q", {.durability = Durability::fast}).value();
        std::mt19937 rng(77);
        std::vector<Map> docs;
        for (int i = 0; i < records; ++i)
            docs.push_back(
                Map{{"level", Value(std::int64_t(rng() % 100))},
                    {"name", Value(std::string(1, char('a' + rng() % 26)) + std::to_string(i))}});
        auto ids = db->insert_batch(docs).value();
        for (std::size_t i = 0; i < ids.size(); ++i) reference[ids[i]] = docs[i];
        // A few holes, as deletes leave them.
        for (RecordId id : {5u, 6u, 700u}) {
            if (!reference.count(id)) continue;
            db->remove(id).value();
            reference.erase(id);
        }
    }
    ~Fixture() {
        db.reset();
        store.reset();
        std::filesystem::remove_all(path);
    }
};

// level >= min and the name starts with the given letter.
Filter level_and_letter() {
    return [](RecordId, const Map& r, const Map& p) {
        return r.at("level").as<std::int64_t>() >= p.at("min").as<std::int64_t>() &&
               r.at("name").as<std::string>()[0] == p.at("letter").as<std::string>()[0];
    };
}

}  // namespace

TEST(ZdbQuery, MatchesTheReferenceForAnyParallelismAndDirection) {
    Fixture f(3000);
    std::mt19937 rng(1);
    auto filter = level_and_letter();
    for (int round = 0; round < 12; ++round) {
        QueryOptions o;
        o.params = Map{{"min", Value(std::int64_t(rng() % 100))},
                       {"letter", Value(std::string(1, char('a' + rng() % 26)))}};
        o.parallelism = 1 + round % 4;
        o.reverse = round % 2;
        o.ordered = round % 3 == 0;
        o.fragment_records = 7;
        std::vector<RecordId> got;
        std::size_t largest = 0;
        auto q = run_query(f.db, filter, o, [&](Fragment fr) {
                     largest = std::max(largest, fr.records.size());
                     for (auto& [id, rec] : fr.records) got.push_back(id);
                 }).value();
        EXPECT_EQ(q->wait().value(), QueryEnd::completed);
        std::vector<RecordId> expected;
        for (auto& [id, rec] : f.reference)
            if (filter(id, rec, o.params)) expected.push_back(id);
        if (o.reverse) std::reverse(expected.begin(), expected.end());
        if (o.ordered) {
            EXPECT_EQ(got, expected) << "round " << round;
        } else {
            EXPECT_EQ(std::multiset<RecordId>(got.begin(), got.end()),
                      std::multiset<RecordId>(expected.begin(), expected.end()))
                << "round " << round;
        }
        EXPECT_LE(largest, 7u);
        EXPECT_EQ(q->progress().scanned, f.reference.size());
        EXPECT_EQ(q->progress().matched, expected.size());
    }
}

TEST(ZdbQuery, LimitsStopTheQuery) {
    Fixture f(2000);
    auto all = [](RecordId, const Map&, const Map&) { return true; };
    QueryOptions o;
    o.max_results = 25;
    o.parallelism = 3;
    std::size_t delivered = 0;
    auto q = run_query(f.db, all, o, [&](Fragment fr) { delivered += fr.records.size(); }).value();
    EXPECT_EQ(q->wait().value(), QueryEnd::max_results);
    EXPECT_EQ(delivered, 25u);

    QueryOptions s;
    s.max_scanned = 100;
    s.parallelism = 1;
    auto q2 = run_query(f.db, all, s, [](Fragment) {}).value();
    EXPECT_EQ(q2->wait().value(), QueryEnd::max_scanned);
    EXPECT_EQ(q2->progress().scanned, 100u);
}

TEST(ZdbQuery, TheEndIsReportedOnceAfterTheLastFragmentWithoutWaiting) {
    Fixture f(3000);
    auto all = [](RecordId, const Map&, const Map&) { return true; };
    for (auto [max_results, expected] : {std::pair<std::uint64_t, QueryEnd>{0, QueryEnd::completed},
                                         {40, QueryEnd::max_results}}) {
        QueryOptions o;
        o.fragment_records = 7;
        o.parallelism = 3;
        o.max_results = max_results;
        std::atomic<std::size_t> delivered{0}, ends{0};
        std::promise<std::pair<Result<QueryEnd>, std::size_t>> ended;
        o.on_end = [&](Result<QueryEnd> end, const QueryProgress& p) {
            ends.fetch_add(1);
            EXPECT_EQ(p.matched, delivered.load());
            ended.set_value({end, delivered.load()});  // what the sink had by then
        };
        auto q =
            run_query(f.db, all, o, [&](Fragment fr) { delivered += fr.records.size(); }).value();
        auto [end, seen] = ended.get_future().get();
        ASSERT_TRUE(end);
        EXPECT_EQ(*end, expected);
        EXPECT_EQ(seen, max_results ? max_results : f.reference.size());
        EXPECT_EQ(q->wait().value(), expected);
        EXPECT_EQ(ends.load(), 1u);
    }
    // A cancelled query reports the cancel.
    QueryOptions o;
    o.fragment_records = 5;
    o.parallelism = 1;
    std::promise<Result<QueryEnd>> ended;
    o.on_end = [&](Result<QueryEnd> end, const QueryProgress&) { ended.set_value(end); };
    std::promise<void> first, cancelled;
    std::atomic<bool> once{false};
    auto q = run_query(f.db, all, o, [&](Fragment) {
                 if (once.exchange(true)) return;
                 first.set_value();
                 cancelled.get_future().wait();  // holds the worker until the cancel is in
             }).value();
    first.get_future().wait();
    q->cancel();
    cancelled.set_value();
    auto end = ended.get_future().get();
    ASSERT_TRUE(end);
    EXPECT_EQ(*end, QueryEnd::cancelled);
}

TEST(ZdbQuery, AQueryStartedPausedReadsNothingUntilResumed) {
    Fixture f(2000);
    QueryOptions o;
    o.start_paused = true;
    o.parallelism = 2;
    std::atomic<std::size_t> delivered{0};
    auto q = run_query(
                 f.db, [](RecordId, const Map&, const Map&) { return true; }, o,
                 [&](Fragment fr) { delivered += fr.records.size(); })
                 .value();
    EXPECT_EQ(q->progress().scanned, 0u);
    EXPECT_EQ(delivered.load(), 0u);
    q->resume();
    EXPECT_EQ(q->wait().value(), QueryEnd::completed);
    EXPECT_EQ(delivered.load(), f.reference.size());
}

TEST(ZdbQuery, APausedQueryStillEndsAtItsTimeLimit) {
    Fixture f(3000);
    QueryOptions o;
    o.fragment_records = 10;
    o.parallelism = 1;
    o.time_limit = 100ms;
    std::atomic<bool> once{false};
    std::shared_ptr<Query> q;
    std::mutex qmu;
    std::unique_lock hold(qmu);
    q = run_query(
            f.db, [](RecordId, const Map&, const Map&) { return true; }, o,
            [&](Fragment) {
                if (once.exchange(true)) return;
                std::lock_guard l(qmu);  // q is assigned
                q->pause();              // and nobody resumes it
            })
            .value();
    hold.unlock();
    EXPECT_EQ(q->wait().value(), QueryEnd::time_limit);
    EXPECT_LT(q->progress().scanned, f.reference.size());
}

TEST(ZdbQuery, CancelPauseAndResume) {
    Fixture f(3000);
    auto all = [](RecordId, const Map&, const Map&) { return true; };
    {
        QueryOptions o;
        o.fragment_records = 10;
        std::shared_ptr<Query> q;
        std::promise<void> first;
        bool once = false;
        int calls = 0;  // the sink is called one at a time
        std::mutex qmu;
        std::unique_lock hold(qmu);
        q = run_query(f.db, all, o, [&](Fragment) {
                ++calls;
                if (once) return;
                once = true;
                std::lock_guard l(qmu);  // q is assigned
                q->cancel();             // from inside the sink
                first.set_value();
            }).value();
        hold.unlock();
        first.get_future().wait();
        EXPECT_EQ(q->wait().value(), QueryEnd::cancelled);
        EXPECT_LT(q->progress().scanned, f.reference.size());
        EXPECT_EQ(calls, 1);  // nothing reaches the sink after the cancel
    }
    {
        QueryOptions o;
        o.fragment_records = 10;
        o.parallelism = 2;
        std::promise<void> paused;
        std::atomic<bool> once{false};
        std::shared_ptr<Query> q;
        std::mutex qmu;
        std::unique_lock hold(qmu);
        q = run_query(f.db, all, o, [&](Fragment) {
                if (!once.exchange(true)) {
                    std::lock_guard l(qmu);  // q is assigned
                    q->pause();
                    paused.set_value();
                }
            }).value();
        hold.unlock();
        paused.get_future().wait();
        auto at_pause = q->progress().scanned;
        std::this_thread::sleep_for(50ms);  // time passes; a paused query must not move on
        EXPECT_LE(q->progress().scanned, at_pause + o.parallelism);
        q->resume();
        EXPECT_EQ(q->wait().value(), QueryEnd::completed);
        EXPECT_EQ(q->progress().scanned, f.reference.size());
    }
}

TEST(ZdbQuery, ASinkOrFilterThatThrowsFailsTheQueryNotTheProcess) {
    Fixture f(1000);
    QueryOptions o;
    o.fragment_records = 10;
    o.parallelism = 2;
    auto all = [](RecordId, const Map&, const Map&) { return true; };
    auto thrown = run_query(f.db, all, o, [](Fragment) { throw std::runtime_error("sink"); });
    auto end = thrown.value()->wait();
    ASSERT_FALSE(end);
    EXPECT_EQ(end.error().code, Errc::handler_error);
    EXPECT_NE(end.error().message.find("sink"), std::string::npos) << end.error().message;
    auto picky = [](RecordId id, const Map&, const Map&) -> bool {
        if (id == 500) throw std::runtime_error("filter");
        return false;
    };
    end = run_query(f.db, picky, o, [](Fragment) {}).value()->wait();
    ASSERT_FALSE(end);
    EXPECT_EQ(end.error().code, Errc::handler_error);
    EXPECT_NE(end.error().message.find("filter"), std::string::npos) << end.error().message;
}

TEST(ZdbQuery, HowItEndedStaysWhatOnEndSaidAndAnyThreadMayWait) {
    Fixture f(2000);
    auto all = [](RecordId, const Map&, const Map&) { return true; };
    QueryOptions o;
    o.parallelism = 2;
    auto q = run_query(f.db, all, o, [](Fragment) {}).value();
    std::vector<std::thread> waiters;
    std::atomic<int> completed{0};
    for (int i = 0; i < 4; ++i)
        waiters.emplace_back([&] { completed += q->wait().value() == QueryEnd::completed; });
    for (auto& t : waiters) t.join();
    EXPECT_EQ(completed.load(), 4);
    q->cancel();  // after the end: nothing to cancel
    EXPECT_EQ(q->wait().value(), QueryEnd::completed);
}

TEST(ZdbQuery, NamedFiltersAndBadArguments) {
    Fixture f(10);
    FilterRegistry filters;
    filters.add("level_and_letter", level_and_letter());
    EXPECT_NE(filters.find("level_and_letter"), nullptr);
    EXPECT_EQ(filters.find("missing"), nullptr);
    EXPECT_EQ(run_query(f.db, nullptr, {}, [](Fragment) {}).error().code, Errc::invalid_argument);
    EXPECT_EQ(run_query(nullptr, level_and_letter(), {}, [](Fragment) {}).error().code,
              Errc::invalid_argument);
    QueryOptions zero;
    zero.fragment_records = 0;
    EXPECT_EQ(run_query(f.db, level_and_letter(), zero, [](Fragment) {}).error().code,
              Errc::invalid_argument);
}

// Random declarative filters over random data: the parallel query returns exactly what an
// in-memory pass of the same filter over the same records finds.
TEST(ZdbQuery, RandomDeclarativeFiltersMatchTheReference) {
    Fixture f(1500);
    std::mt19937 rng(11);
    auto random_condition = [&]() -> Map {
        std::int64_t n = rng() % 100;
        std::string letter(1, char('a' + rng() % 26));
        switch (rng() % 6) {
            case 0:
                return Map{{"level", Value(Map{{"$gte", Value(n)}})}};
            case 1:
                return Map{{"level", Value(Map{{"$lt", Value(n)}})}};
            case 2:
                return Map{{"name", Value(Map{{"$prefix", Value(letter)}})}};
            case 3:
                return Map{{"level", Value(Map{{"$in", Value(Array{Value(n), Value(n / 2)})}})}};
            case 4:
                return Map{{"name", Value(Map{{"$contains", Value(std::to_string(rng() % 10))}})}};
            default:
                return Map{{"level", Value(n)}};
        }
    };
    for (int round = 0; round < 10; ++round) {
        Map filter;
        switch (round % 3) {
            case 0:
                filter = random_condition();
                break;
            case 1:
                filter = Map{
                    {"$or", Value(Array{Value(random_condition()), Value(random_condition())})}};
                break;
            case 2:
                filter =
                    Map{{"$and", Value(Array{Value(random_condition()),
                                             Value(Map{{"$not", Value(random_condition())}})})}};
                break;
        }
        auto compiled = compile_filter(filter).value();
        std::set<RecordId> expected, got;
        for (auto& [id, rec] : f.reference)
            if (zdb_test::reference_match(rec, filter)) expected.insert(id);
        QueryOptions o;
        o.parallelism = 1 + round % 3;
        auto q = run_query(f.db, compiled, o, [&](Fragment fr) {
                     for (auto& [id, rec] : fr.records) got.insert(id);
                 }).value();
        ASSERT_EQ(q->wait().value(), QueryEnd::completed);
        EXPECT_EQ(got, expected) << "round " << round;
    }
}

// Pipeline output: the matches land in another database under their own ids, which then takes
// the source's id counter and can replace it.
TEST(ZdbQuery, OutputDatabaseReceivesTheMatchesUnderTheirIds) {
    Fixture f(2000);
    auto out = f.store->create("high").value();
    auto filter = compile_filter(Map{{"level", Value(Map{{"$gte", Value(90)}})}}).value();
    QueryOptions o;
    o.output = out;
    o.fragment_records = 50;
    auto q = run_query(f.db, filter, o, nullptr).value();
    ASSERT_EQ(q->wait().value(), QueryEnd::completed);
    std::map<RecordId, Map> expected;
    for (auto& [id, r] : f.reference)
        if (r.at("level").as<std::int64_t>() >= 90) expected[id] = r;
    std::map<RecordId, Map> got;
    out->scan([&](RecordId id, const Map& r) { return got.emplace(id, r), true; }).value();
    EXPECT_EQ(got, expected);
    EXPECT_EQ(out->count(), expected.size());
    EXPECT_EQ(out->stats().next_id, f.db->stats().next_id);
    EXPECT_EQ(q->progress().matched, expected.size());

    // The output must start empty, and cannot be the source.
    o.output = out;
    EXPECT_EQ(run_query(f.db, filter, o, nullptr).error().code, Errc::invalid_argument);
    o.output = f.db;
    EXPECT_EQ(run_query(f.db, filter, o, nullptr).error().code, Errc::invalid_argument);
    o.output = nullptr;
    EXPECT_EQ(run_query(f.db, filter, o, nullptr).error().code, Errc::invalid_argument);  // no sink

    // Filtered in place: the output replaces the source; new ids continue after the old ones.
    auto next = f.db->stats().next_id;
    ASSERT_TRUE(f.store->replace("q", "high"));
    EXPECT_EQ(f.db->count(), expected.size());
    EXPECT_EQ(f.db->insert(Map{{"level", Value(1)}}).value(), next);
}

// Ordered delivery holds the fragments of later slices; their workers wait once they hold
// `ordered_lookahead` of them, so memory stays bounded however far ahead they could run.
TEST(ZdbQuery, OrderedQueriesHoldABoundedNumberOfFragments) {
    Fixture f(4000);
    QueryOptions o;
    o.ordered = true;
    o.parallelism = 4;
    o.fragment_records = 10;
    o.ordered_lookahead = 2;
    std::promise<std::shared_ptr<Query>> started;
    auto query = started.get_future().share();
    std::uint64_t most_held = 0;
    std::vector<RecordId> ids;
    auto q = run_query(f.db, compile_filter({}).value(), o, [&](Fragment fr) {
                 most_held = std::max(most_held, query.get()->progress().held);
                 for (auto& [id, r] : fr.records) ids.push_back(id);
             }).value();
    started.set_value(q);
    ASSERT_EQ(q->wait().value(), QueryEnd::completed);
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    EXPECT_EQ(ids.size(), f.reference.size());
    // 3 slices ahead of the one delivered, each at most lookahead + its last fragment.
    EXPECT_LE(most_held, 3u * (2 + 1) * 10);
    EXPECT_EQ(q->progress().held, 0u);
    o.ordered_lookahead = 0;
    EXPECT_EQ(run_query(f.db, compile_filter({}).value(), o, [](Fragment) {}).error().code,
              Errc::invalid_argument);
}

// An output database dropped while the query writes into it ends the query with an error.
TEST(ZdbQuery, AnOutputDroppedMidwayStopsTheQueryWithAnError) {
    Fixture f(2000);
    auto out = f.store->create("gone").value();
    QueryOptions o;
    o.output = out;
    o.fragment_records = 10;
    o.parallelism = 1;
    bool dropped = false;
    auto q = run_query(f.db, compile_filter({}).value(), o, [&](Fragment) {
                 if (!dropped) dropped = bool(f.store->drop("gone"));
             }).value();
    auto end = q->wait();
    EXPECT_TRUE(dropped);
    ASSERT_FALSE(end);
    EXPECT_EQ(end.error().code, Errc::not_found);
    EXPECT_NE(end.error().message.find("query output"), std::string::npos) << end.error().message;
    EXPECT_EQ(q->progress().matched, 10u);  // the first fragment, written before the drop
}

TEST(ZdbQuery, FragmentsAreBoundedByBytesAndCanStayEncoded) {
    Fixture f(1000);
    QueryOptions o;
    o.decode = false;
    o.fragment_bytes = 300;
    o.parallelism = 2;
    std::size_t fragments = 0, records = 0;
    auto q = run_query(f.db, compile_filter({}).value(), o, [&](Fragment fr) {
                 ++fragments;
                 EXPECT_TRUE(fr.records.empty());
                 std::size_t bytes = 0, largest = 0;
                 for (std::size_t i = 0; i < fr.encoded.size(); ++i) {
                     auto b = fr.encoded.bytes(i);
                     bytes += b.size(), largest = std::max(largest, b.size());
                     // As stored: the same record once decoded.
                     auto df = DataFrame::decode(b).value();
                     EXPECT_EQ(df.read_map().value(), f.reference.at(fr.encoded.id(i)));
                 }
                 EXPECT_LT(bytes, 300 + largest);  // the record that crossed the bound at most
                 records += fr.encoded.size();
             }).value();
    ASSERT_EQ(q->wait().value(), QueryEnd::completed);
    EXPECT_EQ(records, f.reference.size());
    EXPECT_GT(fragments, records * 15 / 300);  // records are about 15 bytes
}

// A query reads a snapshot taken when it starts: writes racing with it change nothing it sees.
TEST(ZdbQuery, QueriesDuringWritesSeeTheirSnapshot) {
    Fixture f(0);
    auto filter = compile_filter(Map{{"level", Value(Map{{"$lt", Value(50)}})}}).value();
    std::mt19937 rng(3);
    for (int round = 0; round < 3; ++round) {
        auto db = f.store->create("snap" + std::to_string(round)).value();
        std::vector<Map> docs;
        for (int i = 0; i < 3000; ++i)
            docs.push_back(Map{{"level", Value(std::int64_t(rng() % 100))}});
        auto ids = db->insert_batch(docs).value();
        std::map<RecordId, Map> reference;
        std::set<RecordId> expected, got;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            reference[ids[i]] = docs[i];
            if (docs[i].at("level").as<std::int64_t>() < 50) expected.insert(ids[i]);
        }
        QueryOptions o;
        o.fragment_records = 20;
        o.parallelism = 2;
        auto q = run_query(db, filter, o, [&](Fragment fr) {
                     for (auto& [id, r] : fr.records) {
                         EXPECT_EQ(r, reference.at(id));
                         got.insert(id);
                     }
                 }).value();
        // Meanwhile every record is rewritten with a level the filter takes, or removed, and
        // records it would match are added.
        std::atomic<bool> done{false};
        std::thread writer([&] {
            for (auto id : ids) {
                if (done.load()) break;
                if (id % 7 == 0)
                    db->remove(id).value();
                else
                    db->patch(id, Map{{"level", Value(100 - int(id % 50))}}).value();
                db->insert(Map{{"level", Value(1)}}).value();
            }
        });
        ASSERT_EQ(q->wait().value(), QueryEnd::completed);
        done = true;
        writer.join();
        EXPECT_EQ(got, expected) << "round " << round;
    }
}
