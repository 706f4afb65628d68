// ZDB against raw RocksDB iteration and SQLite, on the same generated records, in one run.
//   zdb_bench [--records N] [--dir PATH] [--cache-mib N]
// Measures: batch insert rate; a selective and a broad filtered full scan with 1 and 2 workers;
// raw RocksDB iteration over the same encoded records (the floor: no decoding, no filter);
// SQLite with the documents as JSON text and the equivalent json_extract query.
#include <sqlite3.h>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

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
    std::size_t cache_bytes = StoreOptions{}.block_cache_bytes;  // ZDB's and raw RocksDB's
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--records")
            n = std::stoull(argv[i + 1]);
        else if (a == "--dir")
            dir = argv[i + 1];
        else if (a == "--cache-mib")
            cache_bytes = std::stoull(argv[i + 1]) << 20;
    }
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::printf("zdb_bench: %llu records of 4 fields\n", static_cast<unsigned long long>(n));

    // --- ZDB insert ---
    auto store = Store::open({.path = dir + "/zdb", .block_cache_bytes = cache_bytes}).value();
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
    rocksdb::Options ro;  // the table options of ZDB's documents (store.cpp, table.cpp)
    ro.create_if_missing = true;
    {
        rocksdb::BlockBasedTableOptions table;
        table.block_cache = rocksdb::NewLRUCache(cache_bytes);
        table.block_size = 16 * 1024;
        ro.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
        ro.compression = rocksdb::kLZ4Compression;
    }
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
    std::uint64_t raw_bytes = 0;
    raw->GetIntProperty("rocksdb.estimate-live-data-size", &raw_bytes);
    const bool fill_cache = raw_bytes < cache_bytes / 2;
    // Raw iteration over [lo, hi) of the key space, on `threads` threads.
    auto raw_scan = [&](int threads) {
        auto start = Clock::now();
        std::vector<std::thread> workers;
        std::atomic<std::uint64_t> total{0};
        for (int w = 0; w < threads; ++w)
            workers.emplace_back([&, w] {
                auto key = [](std::uint64_t id) {
                    std::string k(8, '\0');
                    for (int i = 0; i < 8; ++i) k[i] = char(id >> (56 - 8 * i));
                    return k;
                };
                std::uint64_t span = (n + threads - 1) / threads;
                auto upper = key(1 + (w + 1) * span);
                rocksdb::Slice upper_slice(upper);
                rocksdb::ReadOptions options;  // as ZDB reads: see Table::scans_fill_cache
                options.iterate_upper_bound = &upper_slice;
                options.fill_cache = fill_cache;
                std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(options));
                std::uint64_t bytes = 0, count = 0;
                for (it->Seek(key(1 + w * span)); it->Valid(); it->Next())
                    bytes += it->value().size(), ++count;
                total += count + (bytes == 0);
            });
        for (auto& w : workers) w.join();
        if (total != n) std::exit(1);
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

    auto zdb_scan = [&](const Map& filter_map, std::size_t workers, bool decode = false,
                        bool use_indexes = true) {
        auto filter = compile_filter(filter_map).value();
        QueryOptions o;
        o.parallelism = workers;
        o.fragment_records = 10000;
        o.decode = decode;
        o.use_indexes = use_indexes;
        std::uint64_t matched = 0;
        auto start = Clock::now();
        auto q = run_query(db, filter, o, [&](Fragment f) { matched += f.size(); }).value();
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
    // Each measurement is taken `rounds` times, interleaved (one of each per round, after a
    // warm-up round), and the median is reported with the spread.
    constexpr int rounds = 7;
    std::map<std::string, std::vector<double>> samples;
    std::map<std::string, std::uint64_t> matches;
    auto take = [&](const std::string& what, std::pair<double, std::uint64_t> result, int round) {
        if (round >= 0) samples[what].push_back(result.first);
        if (matches.count(what) == 0) matches[what] = result.second;
    };
    for (int round = -1; round < rounds; ++round) {
        take("raw 1", {raw_scan(1), 0}, round);
        take("raw 2", {raw_scan(2), 0}, round);
        for (std::size_t c = 0; c < std::size(cases); ++c) {
            auto k = std::to_string(c);
            take(k + " zdb 1", zdb_scan(cases[c].filter, 1), round);
            take(k + " zdb 2", zdb_scan(cases[c].filter, 2), round);
            take(k + " zdb 2 decoded", zdb_scan(cases[c].filter, 2, true), round);
            take(k + " sqlite", sqlite_scan(cases[c].where), round);
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    auto line = [&](const char* label, const std::string& what) {
        auto v = samples[what];
        std::sort(v.begin(), v.end());
        std::printf("    %-28s %10.0f records/s  (%.0f-%.0f)", label, median(v), v.front(),
                    v.back());
    };
    // A ratio is the median of the ratios within each round: both sides measured seconds apart,
    // so a busy spell on the machine slows both.
    auto ratio = [&](const std::string& a, const std::string& b) {
        std::vector<double> r;
        for (int i = 0; i < rounds; ++i) r.push_back(samples[a][i] / samples[b][i]);
        return median(r);
    };
    std::printf(
        "  scans: median of %d interleaved rounds (min-max); ratios: median of the\n"
        "  ratios within each round\n",
        rounds);
    std::printf("  raw RocksDB iteration (same table and read options, no decode, no filter):\n");
    line("1 thread", "raw 1");
    std::printf("\n");
    line("2 threads", "raw 2");
    std::printf("  speed-up %.2fx\n", ratio("raw 2", "raw 1"));
    for (std::size_t c = 0; c < std::size(cases); ++c) {
        auto k = std::to_string(c);
        std::set<std::uint64_t> counts{matches[k + " zdb 1"], matches[k + " zdb 2"],
                                       matches[k + " zdb 2 decoded"], matches[k + " sqlite"]};
        if (counts.size() != 1) std::printf("  MISMATCH in match counts\n");
        std::printf("  %s: %llu matches\n", cases[c].name,
                    static_cast<unsigned long long>(matches[k + " sqlite"]));
        line("zdb 1 worker", k + " zdb 1");
        std::printf("  %.2f of raw, %.1fx sqlite\n", ratio(k + " zdb 1", "raw 1"),
                    ratio(k + " zdb 1", k + " sqlite"));
        line("zdb 2 workers", k + " zdb 2");
        std::printf("  %.2f of raw (2 threads), %.1fx sqlite, speed-up %.2fx\n",
                    ratio(k + " zdb 2", "raw 2"), ratio(k + " zdb 2", k + " sqlite"),
                    ratio(k + " zdb 2", k + " zdb 1"));
        line("zdb 2 workers, decoded Maps", k + " zdb 2 decoded");
        std::printf("  %.1fx sqlite\n", ratio(k + " zdb 2 decoded", k + " sqlite"));
        line("sqlite json_extract", k + " sqlite");
        std::printf("\n");
    }

    // Indexed equality against the same query as a full scan.
    t = Clock::now();
    db->create_index("name").value();
    std::printf("  index on name built in %.1f s\n", since(t));
    auto lookup = [&](bool use_indexes) {
        constexpr int lookups = 20;
        auto start = Clock::now();
        std::uint64_t found = 0;
        for (int i = 0; i < lookups; ++i) {
            Map f{{"name", Value("player" + std::to_string((i * 7919) % n))}};
            auto filter = compile_filter(f).value();
            QueryOptions o;
            o.use_indexes = use_indexes;
            o.decode = false;
            auto q = run_query(db, filter, o, [&](Fragment fr) { found += fr.size(); }).value();
            q->wait().value();
            if (use_indexes && q->progress().index != "name") std::exit(2);
            if (!use_indexes && i == 2) return std::pair{(i + 1) / since(start), found};
        }
        return std::pair{lookups / since(start), found};
    };
    auto [scan_lookups, f1] = lookup(false);
    auto [index_lookups, f2] = lookup(true);
    std::printf("  equality on name: full scan %.2f queries/s, indexed %.0f queries/s: %.0fx\n",
                scan_lookups, index_lookups, index_lookups / scan_lookups);
    if (f2 != 20)
        std::printf("  MISMATCH: indexed lookups found %llu of 20\n", (unsigned long long)f2);
    (void)f1;
    auto st = store->stats();
    std::printf("  block cache: %.0f MiB of %.0f MiB used, hit rate %.3f\n",
                st.cache_usage_bytes / 1048576.0, st.cache_capacity_bytes / 1048576.0,
                st.cache_hit_rate());
    sqlite3_close(lite);
    raw.reset();
    db.reset();
    store.reset();
    std::filesystem::remove_all(dir);
    return 0;
}
