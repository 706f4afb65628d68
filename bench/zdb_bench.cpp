// ZDB against raw RocksDB iteration and SQLite, on the same generated records, in one run.
//   zdb_bench [--records N] [--dir PATH]
// Measures: batch insert rate; a selective and a broad filtered full scan with 1 and 2 workers;
// raw RocksDB iteration over the same encoded records (the floor: no decoding, no filter);
// SQLite with the documents as JSON text and the equivalent json_extract query.
#include <sqlite3.h>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/store.hpp"

using namespace hawser;
using namespace hawser::zdb;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

Map record(std::mt19937& rng, std::uint64_t i) {
    return Map{{"level", Value(std::int64_t(rng() % 100))},
               {"guild", Value(std::int64_t(rng() % 10))},
               {"score", Value(double(rng() % 100000) / 100)},
               {"name", Value("player" + std::to_string(i))}};
}

std::string to_json(const Map& m) {
    return "{\"level\":" + std::to_string(m.at("level").as<std::int64_t>()) +
           ",\"guild\":" + std::to_string(m.at("guild").as<std::int64_t>()) +
           ",\"score\":" + std::to_string(m.at("score").as<double>()) + ",\"name\":\"" +
           m.at("name").as<std::string>() + "\"}";
}

void sql(sqlite3* db, const char* statement) {
    char* err = nullptr;
    if (sqlite3_exec(db, statement, nullptr, nullptr, &err) != SQLITE_OK) {
        std::fprintf(stderr, "sqlite: %s\n", err);
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t n = 10'000'000;
    std::string dir = "/tmp/hawser_zdb_bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--records")
            n = std::stoull(argv[i + 1]);
        else if (a == "--dir")
            dir = argv[i + 1];
    }
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::printf("zdb_bench: %llu records of 4 fields\n", static_cast<unsigned long long>(n));

    // --- ZDB insert ---
    auto store = Store::open({.path = dir + "/zdb"}).value();
    auto db = store->create("bench", {.durability = Durability::fast}).value();
    std::mt19937 rng(1);
    auto t = Clock::now();
    std::vector<Map> batch;
    for (std::uint64_t i = 0; i < n; ++i) {
        batch.push_back(record(rng, i));
        if (batch.size() == 10000) {
            db->insert_batch(batch).value();
            batch.clear();
        }
    }
    db->insert_batch(batch).value();
    double zdb_insert = n / since(t);
    std::printf("  insert   zdb (batches of 10,000, durability fast): %10.0f records/s\n",
                zdb_insert);
    store->compact("bench").value();

    // --- raw RocksDB: same encoded values, iterate and touch every value ---
    rocksdb::DB* raw_ptr = nullptr;
    rocksdb::Options ro;
    ro.create_if_missing = true;
    rocksdb::DB::Open(ro, dir + "/raw", &raw_ptr);
    std::unique_ptr<rocksdb::DB> raw(raw_ptr);
    {
        std::uint64_t id = 0;
        rocksdb::WriteBatch wb;
        rocksdb::WriteOptions wo;
        wo.disableWAL = true;
        db->scan([&](RecordId rid, const Map& m) {
              DataFrame df;
              df << m;
              std::string key(8, '\0');
              for (int i = 0; i < 8; ++i) key[i] = char(rid >> (56 - 8 * i));
              wb.Put(key, df.bytes());
              if (++id % 10000 == 0) raw->Write(wo, &wb), wb.Clear();
              return true;
          }).value();
        raw->Write(wo, &wb);
        raw->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr);
    }
    auto raw_scan = [&] {
        auto start = Clock::now();
        std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions()));
        std::uint64_t bytes = 0, count = 0;
        for (it->SeekToFirst(); it->Valid(); it->Next()) bytes += it->value().size(), ++count;
        if (count != n) std::exit(1);
        return n / since(start);
    };

    // --- SQLite: JSON text ---
    sqlite3* lite = nullptr;
    sqlite3_open((dir + "/sqlite.db").c_str(), &lite);
    sql(lite,
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE t(id INTEGER PRIMARY KEY, "
        "doc TEXT)");
    {
        sql(lite, "BEGIN");
        sqlite3_stmt* ins = nullptr;
        sqlite3_prepare_v2(lite, "INSERT INTO t(id, doc) VALUES(?, ?)", -1, &ins, nullptr);
        t = Clock::now();
        db->scan([&](RecordId id, const Map& m) {
              auto j = to_json(m);
              sqlite3_bind_int64(ins, 1, std::int64_t(id));
              sqlite3_bind_text(ins, 2, j.data(), int(j.size()), SQLITE_TRANSIENT);
              sqlite3_step(ins);
              sqlite3_reset(ins);
              return true;
          }).value();
        sqlite3_finalize(ins);
        sql(lite, "COMMIT");
        std::printf("  insert   sqlite (one transaction, JSON text):       %10.0f records/s\n",
                    n / since(t));
    }
    auto sqlite_scan = [&](const char* where) {
        std::string q = std::string("SELECT id, doc FROM t WHERE ") + where;
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(lite, q.c_str(), -1, &st, nullptr);
        auto start = Clock::now();
        std::uint64_t matched = 0;
        while (sqlite3_step(st) == SQLITE_ROW) ++matched;
        sqlite3_finalize(st);
        return std::pair{n / since(start), matched};
    };

    auto zdb_scan = [&](const Map& filter_map, std::size_t workers) {
        auto filter = compile_filter(filter_map).value();
        QueryOptions o;
        o.parallelism = workers;
        o.fragment_records = 10000;
        std::uint64_t matched = 0;
        auto start = Clock::now();
        auto q = run_query(db, filter, o, [&](Fragment f) { matched += f.records.size(); }).value();
        q->wait().value();
        return std::pair{n / since(start), matched};
    };

    struct Case {
        const char* name;
        Map filter;
        const char* where;
    } cases[] = {
        {"selective (level = 7 and guild = 3, ~0.1%)",
         Map{{"level", Value(7)}, {"guild", Value(3)}},
         "json_extract(doc, '$.level') = 7 AND json_extract(doc, '$.guild') = 3"},
        {"broad (level >= 50, ~50%)", Map{{"level", Value(Map{{"$gte", Value(50)}})}},
         "json_extract(doc, '$.level') >= 50"},
    };
    double raw_rate = raw_scan();  // warm
    raw_rate = raw_scan();
    std::printf("  scan     raw RocksDB iteration (no decode, no filter): %10.0f records/s\n",
                raw_rate);
    for (auto& c : cases) {
        auto [one, m1] = zdb_scan(c.filter, 1);
        auto [two, m2] = zdb_scan(c.filter, 2);
        auto [lite_rate, m3] = sqlite_scan(c.where);
        if (m1 != m2 || m1 != m3)
            std::printf("  MISMATCH: %llu %llu %llu\n", (unsigned long long)m1,
                        (unsigned long long)m2, (unsigned long long)m3);
        std::printf("  %s: %llu matches\n", c.name, static_cast<unsigned long long>(m1));
        std::printf("    zdb 1 worker  %10.0f records/s  (%.2f of raw, %.1fx sqlite)\n", one,
                    one / raw_rate, one / lite_rate);
        std::printf(
            "    zdb 2 workers %10.0f records/s  (%.2f of raw, %.1fx sqlite, speed-up %.2fx)\n",
            two, two / raw_rate, two / lite_rate, two / one);
        std::printf("    sqlite        %10.0f records/s\n", lite_rate);
    }
    sqlite3_close(lite);
    raw.reset();
    db.reset();
    store.reset();
    std::filesystem::remove_all(dir);
    return 0;
}
