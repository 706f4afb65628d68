// Helper for the crash test: opens a store, inserts records into a `sync` database as fast as it
// can (its index on "seq" updated in the same batches) and prints each acknowledged id (one per
// line, flushed) until it is killed.
//   zdb_crash_writer <store path>
#include <cstdio>

#include "hawser/zdb/store.hpp"

using namespace hawser;

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    auto store = zdb::Store::open({.path = argv[1]});
    if (!store) return std::fprintf(stderr, "%s\n", store.error().message.c_str()), 1;
    auto db = (*store)->database("crash");
    if (!db) {  // the first round: a sync database with an index, kept in the same batches
        db = (*store)->create("crash", {.durability = zdb::Durability::sync});
        if (db && !(*db)->create_index("seq")) return 1;
    }
    if (!db) return std::fprintf(stderr, "%s\n", db.error().message.c_str()), 1;
    for (std::int64_t i = 0;; ++i) {
        // Alternate single inserts and small batches so both paths are cut mid-way.
        if (i % 2) {
            auto id = (*db)->insert(Map{{"seq", Value(i)}, {"pad", Value(std::string(200, 'p'))}});
            if (!id) return 1;
            std::printf("%llu\n", static_cast<unsigned long long>(*id));
        } else {
            std::vector<Map> docs(5, Map{{"seq", Value(i)}});
            auto ids = (*db)->insert_batch(docs);
            if (!ids) return 1;
            for (auto id : *ids) std::printf("%llu\n", static_cast<unsigned long long>(id));
        }
        std::fflush(stdout);
    }
}
