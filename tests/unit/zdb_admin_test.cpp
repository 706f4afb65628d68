// ZDB administration: copy and atomic replace of databases, what a crash in the middle leaves
// (nothing under any name), and the store's cache statistics.
#include <gtest/gtest.h>

#include <rocksdb/db.h>
#include <filesystem>
#include <fstream>

#include <algorithm>
#include <atomic>
#include <random>

#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/store.hpp"
#include "zdb_support.hpp"

using namespace hawser;
using namespace hawser::zdb;
using zdb_test::ScratchDir;

namespace {

Map player(std::string name, std::int64_t level) {
    return Map{{"name", Value(std::move(name))}, {"level", Value(level)}};
}

std::vector<std::string> column_families(const std::string& path) {
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::sort(names.begin(), names.end());
    return names;
}

// Fills a database with about 6 MiB that does not compress (documents and attachments) and
// compacts it, so that it all sits in table and blob files.
void fill(Store& store, const std::string& name) {
    auto db = store.database(name).value();
    std::mt19937_64 random(7);
    auto noise = [&](std::size_t n) {
        std::string s(n, '\0');
        for (auto& c : s) c = static_cast<char>(random());
        return s;
    };
    std::vector<Map> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(Map{{"noise", Value(noise(2000))}});
    auto ids = db->insert_batch(batch).value();
    for (int i = 0; i < 4; ++i) {
        auto blob = noise(500'000);
        db->put_attachment(ids[i], "blob",
                           {reinterpret_cast<const std::uint8_t*>(blob.data()), blob.size()})
            .value();
    }
    ASSERT_TRUE(store.compact(name));
}

// The store's data files shrink back to within 10% of the table's size over `before`.
bool shrinks_back(const std::string& path, std::uint64_t before, std::uint64_t table) {
    return zdb_test::eventually(
        [&] { return zdb_test::data_file_bytes(path) < before + table / 10; });
}

}  // namespace

TEST(ZdbAdmin, CopyIsAConsistentIndependentDatabase) {
    ScratchDir dir("copy");
    auto store = Store::open({.path = dir.path}).value();
    auto src = store->create("live", {.durability = Durability::sync}).value();
    for (int i = 0; i < 50; ++i) src->insert(player("p" + std::to_string(i), i % 7)).value();
    src->remove(50).value();  // the copy keeps the id counter: 50 is never given out again
    src->remove(3).value();
    std::vector<std::uint8_t> blob(300'000, 0x5a);
    src->put_attachment(4, "avatar", blob).value();
    src->create_index("level").value();

    ASSERT_TRUE(store->copy("live", "backup"));
    EXPECT_EQ(store->list(), (std::vector<std::string>{"backup", "live"}));
    EXPECT_EQ(store->copy("live", "backup").error().code, Errc::invalid_argument);
    EXPECT_EQ(store->copy("nope", "x").error().code, Errc::not_found);
    EXPECT_EQ(store->copy("live", "bad name").error().code, Errc::invalid_argument);

    auto copy = store->database("backup").value();
    EXPECT_EQ(copy->durability(), Durability::sync);
    EXPECT_EQ(copy->count(), 48u);
    EXPECT_EQ(copy->stats().next_id, 51u);
    EXPECT_EQ(copy->stats().indexes, std::vector<std::string>{"level"});
    EXPECT_EQ(copy->get(4).value(), player("p3", 3));
    EXPECT_EQ(copy->get_attachment(4, "avatar").value(), blob);
    EXPECT_EQ(copy->exists(3).value(), false);
    // Independent from here on.
    EXPECT_EQ(copy->insert(player("new", 1)).value(), 51u);
    src->patch(1, Map{{"level", Value(99)}}).value();
    EXPECT_EQ(copy->get(1).value(), player("p0", 0));
    // The copied index answers queries on the copy.
    std::size_t found = 0;
    auto q = run_query(copy, compile_filter({{"level", Value(0)}}).value(), {}, [&](Fragment f) {
                 found += f.size();
             }).value();
    q->wait().value();
    EXPECT_EQ(q->progress().index, "level");
    EXPECT_EQ(found, 7u);  // ids 1, 8, ..., 43 (50 was removed; the new record has level 1)
}

TEST(ZdbAdmin, ReplaceSwapsContentsAtomicallyAndSurvivesRestart) {
    ScratchDir dir("replace");
    {
        auto store = Store::open({.path = dir.path}).value();
        auto live = store->create("live").value();
        for (int i = 0; i < 10; ++i) live->insert(player("old" + std::to_string(i), i)).value();
        auto fresh = store->create("fresh", {.durability = Durability::fast}).value();
        fresh->insert(player("new", 42)).value();  // only in a memtable: replace flushes it

        EXPECT_EQ(store->replace("live", "live").error().code, Errc::invalid_argument);
        EXPECT_EQ(store->replace("live", "nope").error().code, Errc::not_found);
        ASSERT_TRUE(store->replace("live", "fresh"));
        EXPECT_EQ(store->list(), std::vector<std::string>{"live"});
        // The old handle of the target sees the new contents; the source's handle is gone.
        EXPECT_EQ(live->count(), 1u);
        EXPECT_EQ(live->get(1).value(), player("new", 42));
        EXPECT_EQ(live->durability(), Durability::fast);
        EXPECT_EQ(fresh->get(1).error().code, Errc::not_found);
        EXPECT_EQ(store->database("fresh").error().code, Errc::not_found);
    }
    auto store = Store::open({.path = dir.path}).value();
    EXPECT_EQ(store->list(), std::vector<std::string>{"live"});
    auto live = store->database("live").value();
    EXPECT_EQ(live->count(), 1u);
    EXPECT_EQ(live->get(1).value(), player("new", 42));
    // One table of three column families, plus the meta and default families: nothing left over.
    EXPECT_EQ(column_families(dir.path).size(), 5u);
}

TEST(ZdbAdmin, QueriesRunningDuringAReplaceFinishOnWhatTheyStarted) {
    ScratchDir dir("replace_query");
    auto store = Store::open({.path = dir.path}).value();
    auto live = store->create("live").value();
    for (int i = 0; i < 2000; ++i) live->insert(player("p", i)).value();
    store->create("empty").value();
    QueryOptions o;
    o.fragment_records = 10;
    std::size_t seen = 0;
    std::shared_ptr<Query> q;
    bool replaced = false;
    q = run_query(live, compile_filter({}).value(), o, [&](Fragment f) {
            seen += f.size();
            if (!replaced) replaced = bool(store->replace("live", "empty"));
        }).value();
    ASSERT_EQ(q->wait().value(), QueryEnd::completed);
    EXPECT_TRUE(replaced);
    EXPECT_EQ(seen, 2000u);
    EXPECT_EQ(live->count(), 0u);
}

// Dropping a database, or replacing it, gives its table's disk space back while the store stays
// open.
TEST(ZdbAdmin, DroppedAndReplacedTablesGiveBackTheirDiskSpace) {
    ScratchDir dir("space");
    auto store = Store::open({.path = dir.path}).value();
    store->create("small").value()->insert(player("a", 1)).value();
    ASSERT_TRUE(store->compact("small"));
    auto base = zdb_test::data_file_bytes(dir.path);

    store->create("big").value();
    fill(*store, "big");
    auto table = zdb_test::data_file_bytes(dir.path) - base;
    ASSERT_GT(table, 5u << 20);
    ASSERT_TRUE(store->drop("big"));
    EXPECT_TRUE(shrinks_back(dir.path, base, table)) << zdb_test::data_file_bytes(dir.path);

    auto live = store->create("live").value();
    fill(*store, "live");
    ASSERT_TRUE(store->replace("live", "small"));  // live's old table goes
    EXPECT_TRUE(shrinks_back(dir.path, base, table)) << zdb_test::data_file_bytes(dir.path);
    EXPECT_EQ(live->get(1).value(), player("a", 1));
}

// A query running on a database that is dropped reads on to its end; the space comes back once
// the query is gone.
TEST(ZdbAdmin, ADroppedTableStaysReadableForItsQueriesThenGoes) {
    ScratchDir dir("space_query");
    auto store = Store::open({.path = dir.path}).value();
    auto base = zdb_test::data_file_bytes(dir.path);
    auto db = store->create("big").value();
    fill(*store, "big");
    auto table = zdb_test::data_file_bytes(dir.path) - base;
    QueryOptions o;
    o.fragment_records = 100;
    o.parallelism = 2;
    std::atomic<std::size_t> seen{0};
    std::atomic<bool> dropped{false};
    std::uint64_t after_drop = 0;
    auto q = run_query(db, compile_filter({}).value(), o, [&](Fragment f) {
                 seen += f.size();
                 if (dropped.exchange(true)) return;
                 EXPECT_TRUE(store->drop("big"));
                 after_drop = zdb_test::data_file_bytes(dir.path);
             }).value();
    ASSERT_EQ(q->wait().value(), QueryEnd::completed);
    EXPECT_TRUE(dropped);
    EXPECT_EQ(seen, 2000u);
    EXPECT_GT(after_drop, base + table / 2);  // still there while the query reads it
    EXPECT_EQ(db->get(1).error().code, Errc::not_found);
    q.reset();
    EXPECT_TRUE(shrinks_back(dir.path, base, table)) << zdb_test::data_file_bytes(dir.path);
}

TEST(ZdbAdmin, UnnamedTablesFromACrashAreRemovedAtOpen) {
    ScratchDir dir("garbage");
    Store::open({.path = dir.path}).value()->create("kept").value()->insert(player("a", 1)).value();
    {  // What a copy cut short leaves: families of a table no name points at.
        auto names = column_families(dir.path);
        std::vector<rocksdb::ColumnFamilyDescriptor> families;
        for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
        std::vector<rocksdb::ColumnFamilyHandle*> handles;
        rocksdb::DB* raw = nullptr;
        ASSERT_TRUE(
            rocksdb::DB::Open(rocksdb::DBOptions(), dir.path, families, &handles, &raw).ok());
        rocksdb::ColumnFamilyHandle* orphan = nullptr;
        ASSERT_TRUE(raw->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "t77", &orphan).ok());
        ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), orphan, "k", "v").ok());
        handles.push_back(orphan);
        for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
        delete raw;
    }
    EXPECT_EQ(column_families(dir.path).size(), 6u);
    {
        auto store = Store::open({.path = dir.path}).value();
        EXPECT_EQ(store->list(), std::vector<std::string>{"kept"});
        EXPECT_EQ(store->database("kept").value()->get(1).value(), player("a", 1));
    }
    EXPECT_EQ(column_families(dir.path).size(), 5u);
}

TEST(ZdbAdmin, AForeignRocksDbIsRefused) {
    ScratchDir dir("foreign");
    {
        rocksdb::Options o;
        o.create_if_missing = true;
        rocksdb::DB* raw = nullptr;
        ASSERT_TRUE(rocksdb::DB::Open(o, dir.path, &raw).ok());
        rocksdb::ColumnFamilyHandle* h = nullptr;
        ASSERT_TRUE(raw->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "users", &h).ok());
        raw->DestroyColumnFamilyHandle(h);
        delete raw;
    }
    auto store = Store::open({.path = dir.path});
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().code, Errc::storage_error);
    EXPECT_NE(store.error().message.find("'users'"), std::string::npos) << store.error().message;
}

TEST(ZdbAdmin, OnlyAnEmptyOrMissingDirectoryBecomesAStore) {
    ScratchDir dir("not_a_store");
    // Without create_if_missing a path with no store is not_found, and nothing is made there.
    auto none = Store::open({.path = dir.path, .create_if_missing = false});
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::not_found);
    EXPECT_FALSE(std::filesystem::exists(dir.path));
    // A directory holding other files is refused, not written into.
    std::filesystem::create_directories(dir.path);
    std::ofstream(dir.path + "/notes.txt") << "mine";
    auto other = Store::open({.path = dir.path});
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().code, Errc::invalid_argument);
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path),
                            std::filesystem::directory_iterator()),
              1);
    std::filesystem::remove(dir.path + "/notes.txt");
    Store::open({.path = dir.path}).value()->create("t").value();  // empty: made a store
    EXPECT_TRUE(Store::open({.path = dir.path, .create_if_missing = false}));
}

TEST(ZdbAdmin, AReplacedNameNeverGivesItsIdsAgain) {
    ScratchDir dir("replace_ids");
    auto store = Store::open({.path = dir.path}).value();
    auto live = store->create("live").value();
    for (int i = 0; i < 3; ++i) live->insert(Map{{"n", Value(i)}}).value();  // ids 1 to 3
    store->create("fresh").value();  // its counter starts at 1
    store->replace("live", "fresh").value();
    EXPECT_EQ(live->insert(Map{{"n", Value(9)}}).value(), 4u);
    // A durability out of range is refused at create, not stored to fail the next open.
    auto bad = store->create("odd", {.durability = Durability(7)});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

TEST(ZdbAdmin, StatisticsCountCacheHitsAndMisses) {
    ScratchDir dir("stats");
    auto store = Store::open({.path = dir.path, .block_cache_bytes = 8u << 20}).value();
    auto db = store->create("s").value();
    for (int i = 0; i < 1000; ++i) db->insert(player("p" + std::to_string(i), i)).value();
    store->compact("s").value();  // into table files, read through the block cache
    auto before = store->stats();
    EXPECT_EQ(before.cache_capacity_bytes, 8u << 20);
    for (int round = 0; round < 5; ++round)
        for (RecordId id = 1; id <= 1000; id += 10) db->get(id).value();
    auto after = store->stats();
    EXPECT_GT(after.cache_hits, before.cache_hits);
    EXPECT_GT(after.cache_misses + after.cache_hits, before.cache_misses + before.cache_hits);
    EXPECT_GT(after.cache_hit_rate(), 0.5);  // the same blocks, read five times
    EXPECT_GT(after.cache_usage_bytes, 0u);
    auto s = db->stats();
    EXPECT_EQ(s.records, 1000u);
    EXPECT_GT(s.document_bytes, 0u);
}

// A full scan of a database larger than half the cache reads around the cache, so the blocks
// point reads keep hot stay there.
TEST(ZdbAdmin, BigScansDoNotEvictHotRecords) {
    ScratchDir dir("cache");
    auto store = Store::open({.path = dir.path, .block_cache_bytes = 1u << 20}).value();
    auto hot = store->create("hot").value();
    auto big = store->create("big", {.durability = Durability::fast}).value();
    hot->insert(player("hot", 1)).value();
    std::mt19937 rng(4);
    std::vector<Map> docs;
    for (int i = 0; i < 4000; ++i) {
        std::string noise(1000, ' ');  // incompressible: the table stays larger than the cache
        for (auto& c : noise) c = char('a' + rng() % 26);
        docs.push_back(Map{{"noise", Value(noise)}});
    }
    big->insert_batch(docs).value();
    store->compact("hot").value();
    store->compact("big").value();
    hot->get(1).value();  // its block is now cached
    auto before = store->stats();
    std::size_t seen = 0;
    auto q = run_query(big, compile_filter({}).value(), {.decode = false}, [&](Fragment f) {
                 seen += f.size();
             }).value();
    ASSERT_EQ(q->wait().value(), QueryEnd::completed);
    EXPECT_EQ(seen, 4000u);
    auto after_scan = store->stats();
    EXPECT_LT(after_scan.cache_usage_bytes, 512u << 10);
    hot->get(1).value();
    auto after = store->stats();
    EXPECT_EQ(after.cache_hits, after_scan.cache_hits + 1) << "the hot block was evicted";
    EXPECT_EQ(after.cache_misses, after_scan.cache_misses);
    EXPECT_GT(after_scan.cache_misses, before.cache_misses);  // the scan did read blocks
}
