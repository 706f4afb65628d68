// Helper for the crash tests: opens a store, inserts records into a `sync` database (or a `fast`
// one, with small memtables so that its column families flush at different moments, patching
// older records too, and giving some an attachment) as fast as it can, its index on "seq" updated
// in the same batches, and prints each acknowledged id (one per line, flushed) until it is
// killed.
//   zdb_crash_writer <store path> [fast]
#include <cstdio>
#include <string>
#include <vector>

#include "hawser/zdb/store.hpp"

using namespace hawser;

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) return 2;
    bool fast = argc == 3 && std::string(argv[2]) == "fast";
    auto store =
        zdb::Store::open({.path = argv[1], .write_buffer_bytes = fast ? 64u << 10 : 64u << 20});
    if (!store) return std::fprintf(stderr, "%s\n", store.error().message.c_str()), 1;
    auto db = (*store)->database("crash");
    if (!db) {  // the first round: a database with an index, kept in the same batches
        db = (*store)->create("crash",
                              {.durability = fast ? zdb::Durability::fast : zdb::Durability::sync});
        if (db && !(*db)->create_index("seq")) return 1;
    }
    if (!db) return std::fprintf(stderr, "%s\n", db.error().message.c_str()), 1;
    for (std::int64_t i = 0;; ++i) {
        if (fast && i % 3 == 0 && i > 0) {  // move an older record's index entry
            auto older = static_cast<zdb::RecordId>(1 + i / 2);
            if ((*db)->exists(older).value_or(false))
                (void)(*db)->patch(older, Map{{"seq", Value(-i)}});
        }
        // Alternate single inserts and small batches so both paths are cut mid-way.
        if (i % 2) {
            auto id = (*db)->insert(Map{{"seq", Value(i)}, {"pad", Value(std::string(200, 'p'))}});
            if (!id) return 1;
            // Big attachments fill their family's small memtable first: it flushes ahead of the
            // records, and a crash can leave attachments whose record was lost.
            const std::vector<std::uint8_t> blob(8192, 'b');
            if (fast && !(*db)->put_attachment(*id, "a", blob)) return 1;
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
