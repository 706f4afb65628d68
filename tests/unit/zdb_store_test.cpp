// ZDB storage against a real RocksDB in a scratch directory.
#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/store.hpp"

#include "zdb/record_view.hpp"
#include "zdb_support.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>
#include <set>
#include <thread>

#include <filesystem>
#include <random>

using namespace hawser;
using namespace hawser::zdb;

namespace {

using zdb_test::ScratchDir;

Map doc(std::string name, std::int64_t level) {
    return Map{{"name", Value(std::move(name))}, {"level", Value(level)}};
}

// A document `levels` maps and arrays deep, itself the first level: maps and arrays in turn down
// to a map {"x": 1}.
Map nested(std::size_t levels) {
    Value inner = Map{{"x", Value(1)}};
    for (std::size_t level = 2; level < levels; ++level)
        inner = level % 2 ? Value(Map{{"d", std::move(inner)}}) : Value(Array{std::move(inner)});
    return Map{{"d", std::move(inner)}, {"levels", Value(std::int64_t(levels))}};
}

// Starts the crash writer with its output on the pipe; the parent keeps the reading end.
pid_t start_writer(const std::string& store, const char* mode, int pipe_ends[2]) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pipe_ends[1], 1);
        ::close(pipe_ends[0]);
        ::execl(ZDB_CRASH_WRITER, ZDB_CRASH_WRITER, store.c_str(), mode, nullptr);
        ::_exit(127);
    }
    ::close(pipe_ends[1]);
    return pid;
}

}  // namespace

TEST(ZdbStore, InsertGetReplacePatchRemove) {
    ScratchDir dir("crud");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("players").value();
    auto id = db->insert(doc("ada", 3)).value();
    EXPECT_EQ(id, 1u);
    EXPECT_EQ(db->get(id).value(), doc("ada", 3));
    EXPECT_TRUE(db->exists(id).value());
    db->replace(id, doc("ada", 4)).value();
    EXPECT_EQ(db->get(id)->at("level"), Value(4));
    db->patch(id, Map{{"guild", Value("north")}, {"level", Value(nullptr)}}).value();
    auto patched = db->get(id).value();
    EXPECT_EQ(patched.count("level"), 0u);
    EXPECT_EQ(patched.at("guild"), Value("north"));
    EXPECT_EQ(db->count(), 1u);
    db->remove(id).value();
    EXPECT_FALSE(db->exists(id).value());
    EXPECT_EQ(db->get(id).error().code, Errc::not_found);
    EXPECT_EQ(db->remove(id).error().code, Errc::not_found);
    EXPECT_EQ(db->replace(id, doc("x", 1)).error().code, Errc::not_found);
    EXPECT_EQ(db->count(), 0u);
}

TEST(ZdbStore, InsertUniqueRefusesATakenValue) {
    ScratchDir dir("unique");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("players").value();
    EXPECT_EQ(db->insert_unique(doc("ada", 1), "name").error().code, Errc::invalid_argument);
    db->create_index("name").value();
    auto ada = db->insert_unique(doc("ada", 1), "name").value();
    EXPECT_EQ(db->insert_unique(doc("ada", 2), "name").error().code, Errc::already_exists);
    // A value that only starts like a taken one is another value.
    EXPECT_TRUE(db->insert_unique(doc("adam", 1), "name"));
    EXPECT_TRUE(db->insert_unique(doc("ad", 1), "name"));
    EXPECT_EQ(db->insert_unique(Map{{"level", Value(1)}}, "name").error().code,
              Errc::invalid_argument);
    EXPECT_EQ(db->count(), 3u);
    // Once the holder goes, the value is free again.
    db->remove(ada).value();
    EXPECT_TRUE(db->insert_unique(doc("ada", 3), "name"));
    // Racing writers: each name is taken exactly once.
    std::atomic<int> won{0}, lost{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                auto r = db->insert_unique(doc("racer" + std::to_string(i), 0), "name");
                if (r) {
                    ++won;
                } else {
                    ++lost;
                    EXPECT_EQ(r.error().code, Errc::already_exists);
                }
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(won.load(), 50);
    EXPECT_EQ(lost.load(), 150);
}

// Every write path refuses a document nested deeper than the reader accepts, and stores nothing;
// one exactly at the limit is stored and read back by get, scans, queries and RecordView.
TEST(ZdbStore, DocumentsDeeperThanTheReaderAcceptsAreRefused) {
    ScratchDir dir("depth");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("deep").value();
    const std::size_t limit = max_document_depth;
    ASSERT_EQ(limit, 32u);  // what RecordView accepts

    auto id = db->insert(nested(limit)).value();
    EXPECT_EQ(db->get(id).value(), nested(limit));
    std::size_t scanned = 0;
    ASSERT_TRUE(db->scan([&](RecordId, const Map& m) { return ++scanned, m == nested(limit); }));
    EXPECT_EQ(scanned, 1u);
    QueryOptions o;
    o.decode = false;
    std::vector<std::string> stored;
    auto q = run_query(db, compile_filter({{"levels", Value(std::int64_t(limit))}}).value(), o,
                       [&](Fragment f) {
                           for (std::size_t i = 0; i < f.encoded.size(); ++i)
                               stored.emplace_back(f.encoded.bytes(i));
                       })
                 .value();
    ASSERT_EQ(q->wait().value(), QueryEnd::completed);
    ASSERT_EQ(stored.size(), 1u);
    Field whole;
    EXPECT_EQ(read_field(stored[0], whole), stored[0].size());
    EXPECT_EQ(whole.decode().value(), Value(nested(limit)));

    auto too_deep = [&](const auto& result) {
        ASSERT_FALSE(result) << "a document deeper than " << limit << " levels was stored";
        EXPECT_EQ(result.error().code, Errc::limit_exceeded);
        EXPECT_NE(result.error().message.find(std::to_string(limit)), std::string::npos)
            << result.error().message;
    };
    too_deep(db->insert(nested(limit + 1)));
    too_deep(db->insert(nested(1000)));
    too_deep(db->insert_batch({doc("fine", 1), nested(limit + 1)}));
    too_deep(db->replace(id, nested(limit + 1)));
    // Patching adds a level: the patched field sits inside the document.
    too_deep(db->patch(id, Map{{"more", Value(nested(limit))}}));
    EXPECT_EQ(db->count(), 1u);
    EXPECT_FALSE(db->exists(id + 1).value());  // the batch's first document was not kept
    EXPECT_EQ(db->get(id).value(), nested(limit));
    db->patch(id, Map{{"more", Value(nested(limit - 1))}}).value();
    EXPECT_EQ(db->get(id)->at("more"), Value(nested(limit - 1)));
    db->replace(id, nested(limit)).value();
    EXPECT_EQ(db->insert(doc("next", 2)).value(), id + 1);  // ids refused writes took are free
}

TEST(ZdbStore, IdsIncreaseAndAreNeverReusedAcrossRestarts) {
    ScratchDir dir("ids");
    std::vector<RecordId> first;
    {
        auto store = Store::open({.path = dir.path}).value();
        auto db = store->create("log", {.durability = Durability::sync}).value();
        first = db->insert_batch({doc("a", 1), doc("b", 2), doc("c", 3)}).value();
        EXPECT_EQ(first, (std::vector<RecordId>{1, 2, 3}));
        db->remove(3).value();  // the highest id is gone...
    }
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->database("log").value();
    EXPECT_EQ(db->durability(), Durability::sync);
    EXPECT_EQ(db->count(), 2u);
    EXPECT_EQ(db->insert(doc("d", 4)).value(), 4u);  // ...and still never comes back
}

TEST(ZdbStore, ScansForwardReverseAndFromAnId) {
    ScratchDir dir("scan");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("s").value();
    std::vector<Map> docs;
    for (int i = 0; i < 300; ++i) docs.push_back(doc("p" + std::to_string(i), i));
    db->insert_batch(docs).value();
    std::vector<RecordId> seen;
    db->scan([&](RecordId id, const Map& m) {
          EXPECT_EQ(m.at("level"), Value(std::int64_t(id - 1)));
          seen.push_back(id);
          return true;
      }).value();
    ASSERT_EQ(seen.size(), 300u);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    seen.clear();
    db->scan(
          [&](RecordId id, const Map&) {
              seen.push_back(id);
              return seen.size() < 5;
          },
          {.from = 100, .reverse = true})
        .value();
    EXPECT_EQ(seen, (std::vector<RecordId>{100, 99, 98, 97, 96}));
    seen.clear();
    db->scan(
          [&](RecordId id, const Map&) {
              seen.push_back(id);
              return true;
          },
          {.from = 298})
        .value();
    EXPECT_EQ(seen, (std::vector<RecordId>{298, 299, 300}));
}

TEST(ZdbStore, AttachmentsLiveApartAndGoWithTheirRecord) {
    ScratchDir dir("blobs");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("files").value();
    auto id = db->insert(doc("report", 1)).value();
    Bytes big(2u << 20);
    std::mt19937 rng(3);
    for (auto& b : big) b = static_cast<std::uint8_t>(rng());
    db->put_attachment(id, "pdf", big).value();
    db->put_attachment(id, "thumb", Bytes{1, 2, 3}).value();
    EXPECT_EQ(db->get_attachment(id, "pdf").value(), big);
    EXPECT_EQ(db->attachments(id).value(), (std::vector<std::string>{"pdf", "thumb"}));
    EXPECT_EQ(db->put_attachment(999, "x", Bytes{1}).error().code, Errc::not_found);
    db->remove_attachment(id, "thumb").value();
    EXPECT_EQ(db->get_attachment(id, "thumb").error().code, Errc::not_found);
    db->remove(id).value();
    EXPECT_EQ(db->get_attachment(id, "pdf").error().code, Errc::not_found);
}

TEST(ZdbStore, A64MiBAttachmentRoundTripsAndScansNeverReadIt) {
    ScratchDir dir("big_blob");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("media").value();
    auto id = db->insert(doc("video", 1)).value();
    Bytes big(64u << 20);
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<std::uint8_t>(i * 2654435761u >> 24);
    db->put_attachment(id, "mp4", big).value();
    EXPECT_EQ(db->get_attachment(id, "mp4").value(), big);
    store->compact("media").value();  // flushes the memtable: values go to blob files
    EXPECT_GE(db->stats().blob_bytes, big.size() / 2);
    std::size_t visited = 0;
    db->scan([&](RecordId, const Map& m) {
          EXPECT_EQ(m.size(), 2u);  // the document only
          return ++visited;
      }).value();
    EXPECT_EQ(visited, 1u);
}

TEST(ZdbStore, DatabasesAreListedDroppedCompactedAndCheckpointed) {
    ScratchDir dir("admin"), copy("admin_copy");
    auto store = Store::open({.path = dir.path}).value();
    auto a = store->create("alpha").value();
    store->create("beta").value();
    EXPECT_EQ(store->list(), (std::vector<std::string>{"alpha", "beta"}));
    EXPECT_EQ(store->create("alpha").error().code, Errc::invalid_argument);
    for (const std::string& bad : {std::string(), std::string("__meta"), std::string("has space"),
                                   std::string("a/b"), std::string(65, 'n')})
        EXPECT_EQ(store->create(bad).error().code, Errc::invalid_argument) << bad;
    a->insert(doc("kept", 1)).value();
    store->compact("alpha").value();
    store->checkpoint(copy.path).value();
    store->drop("beta").value();
    EXPECT_EQ(store->database("beta").error().code, Errc::not_found);
    EXPECT_EQ(store->list(), (std::vector<std::string>{"alpha"}));
    auto copied = Store::open({.path = copy.path}).value();
    EXPECT_EQ(copied->list(), (std::vector<std::string>{"alpha", "beta"}));
    EXPECT_EQ(copied->database("alpha").value()->get(1)->at("name"), Value("kept"));
}

TEST(ZdbStore, DroppedHandlesFailCleanly) {
    ScratchDir dir("dropped");
    auto store = Store::open({.path = dir.path}).value();
    auto db = store->create("gone").value();
    db->insert(doc("x", 1)).value();
    store->drop("gone").value();
    EXPECT_EQ(db->insert(doc("y", 2)).error().code, Errc::not_found);
    EXPECT_EQ(db->get(1).error().code, Errc::not_found);
}

// A child process writes in `sync` mode and is killed with SIGKILL at a random point; after
// reopening, every write it had acknowledged is there and the count matches the records.
TEST(ZdbStore, SyncWritesSurviveSigkill) {
    ScratchDir dir("crash");
    std::mt19937 rng(2026);
    std::set<RecordId> acknowledged;
    for (int round = 0; round < 20; ++round) {
        int out[2];
        ASSERT_EQ(::pipe(out), 0);
        pid_t pid = start_writer(dir.path, nullptr, out);
        // Read acknowledgements until a random number has arrived, then kill mid-stream.
        std::size_t target = 20 + rng() % 400, got = 0;
        std::string pending;
        char buf[4096];
        while (got < target) {
            auto n = ::read(out[0], buf, sizeof buf);
            ASSERT_GT(n, 0) << "the writer died on its own";
            pending.append(buf, static_cast<std::size_t>(n));
            std::size_t nl;
            while ((nl = pending.find('\n')) != std::string::npos) {
                acknowledged.insert(std::stoull(pending.substr(0, nl)));
                pending.erase(0, nl + 1);
                ++got;
            }
        }
        ::kill(pid, SIGKILL);
        // Anything still in the pipe was acknowledged before the kill too.
        ssize_t n;
        while ((n = ::read(out[0], buf, sizeof buf)) > 0)
            pending.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
            acknowledged.insert(std::stoull(pending.substr(0, nl)));
            pending.erase(0, nl + 1);
        }
        ::close(out[0]);
        ::waitpid(pid, nullptr, 0);

        auto store = Store::open({.path = dir.path}).value();
        auto db = store->database("crash").value();
        std::set<RecordId> present;
        std::map<std::int64_t, std::set<RecordId>> by_seq;
        db->scan([&](RecordId id, const Map& m) {
              EXPECT_TRUE(m.count("seq"));
              present.insert(id);
              by_seq[m.at("seq").as<std::int64_t>()].insert(id);
              return true;
          }).value();
        // The index agrees with the records, the newest ones included.
        for (auto it = by_seq.rbegin(); it != by_seq.rend() && it != std::next(by_seq.rbegin(), 5);
             ++it) {
            std::set<RecordId> found;
            auto q = run_query(db, compile_filter({{"seq", Value(it->first)}}).value(), {},
                               [&](Fragment f) {
                                   for (auto& [id, r] : f.records) found.insert(id);
                               })
                         .value();
            ASSERT_TRUE(q->wait());
            EXPECT_EQ(q->progress().index, "seq");
            EXPECT_EQ(found, it->second) << "seq " << it->first << " in round " << round;
        }
        for (auto id : acknowledged)
            ASSERT_TRUE(present.count(id))
                << "acknowledged id " << id << " lost in round " << round;
        EXPECT_EQ(db->count(), present.size()) << "round " << round;
        EXPECT_GE(db->stats().next_id, *present.rbegin() + 1);
    }
}

// A `fast` database has no WAL tying its column families together, so a crash can leave the
// records, the counters and the index flushed at different points. The store notices the
// unclean stop at the next open and repairs it: the count, the id counter and the index agree
// with the records again.
TEST(ZdbStore, FastDatabasesAreRepairedAfterACrash) {
    ScratchDir dir("crash_fast");
    std::mt19937 rng(7);
    for (int round = 0; round < 8; ++round) {
        int out[2];
        ASSERT_EQ(::pipe(out), 0);
        pid_t pid = start_writer(dir.path, "fast", out);
        std::size_t target = 500 + rng() % 3000, lines = 0;
        char buf[4096];
        while (lines < target) {
            auto n = ::read(out[0], buf, sizeof buf);
            ASSERT_GT(n, 0) << "the writer died on its own";
            lines += std::count(buf, buf + n, '\n');
        }
        ::kill(pid, SIGKILL);
        ::close(out[0]);
        ::waitpid(pid, nullptr, 0);

        auto store = Store::open({.path = dir.path}).value();
        auto db = store->database("crash").value();
        std::map<std::int64_t, std::set<RecordId>> by_seq;
        std::uint64_t records = 0;
        RecordId last = 0;
        db->scan([&](RecordId id, const Map& m) {
              by_seq[m.at("seq").as<std::int64_t>()].insert(id);
              ++records, last = id;
              return true;
          }).value();
        EXPECT_EQ(db->count(), records) << "round " << round;
        EXPECT_GT(db->stats().next_id, last) << "round " << round;
        // No attachment outlived its record: the ids past the last record hold none.
        for (RecordId id = last + 1; id < last + 64; ++id)
            EXPECT_TRUE(db->attachments(id).value().empty()) << id << " in round " << round;
        // Every indexed value answers exactly its records: sample the values and a missing one.
        std::vector<std::int64_t> values;
        for (const auto& [seq, ids] : by_seq) values.push_back(seq);
        for (int probe = 0; probe < 12 && !values.empty(); ++probe) {
            auto seq = probe == 0 ? values.back() : values[rng() % values.size()];
            std::set<RecordId> found;
            auto q =
                run_query(db, compile_filter({{"seq", Value(seq)}}).value(), {}, [&](Fragment f) {
                    for (auto& [id, r] : f.records) found.insert(id);
                }).value();
            ASSERT_TRUE(q->wait());
            EXPECT_EQ(q->progress().index, "seq");
            EXPECT_EQ(found, by_seq[seq]) << "seq " << seq << " in round " << round;
        }
    }
}
