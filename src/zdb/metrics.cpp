// ZDB's metrics (write_metrics in hawser/zdb/store.hpp). Runs on the scraping thread; the
// store's stats and database handles are safe from any thread.
#include "hawser/zdb/store.hpp"

namespace hawser::zdb {

void write_metrics(MetricsText& out, const Store& store) {
    auto s = store.stats();
    out.gauge("hawser_zdb_cache_capacity_bytes", "The block cache's capacity",
              double(s.cache_capacity_bytes));
    out.gauge("hawser_zdb_cache_usage_bytes", "The block cache's use", double(s.cache_usage_bytes));
    out.counter("hawser_zdb_cache_hits_total", "Reads that found their block in the cache",
                double(s.cache_hits));
    out.counter("hawser_zdb_cache_misses_total", "Reads that did not", double(s.cache_misses));
    std::vector<std::pair<std::string, DatabaseStats>> databases;
    for (const auto& name : store.list())
        if (auto db = store.database(name)) databases.emplace_back(name, (*db)->stats());
    for (const auto& [name, d] : databases)
        out.gauge("hawser_zdb_records", "Records in each database", double(d.records),
                  {{"database", name}});
    for (const auto& [name, d] : databases) {
        out.gauge("hawser_zdb_bytes", "Bytes on disk (RocksDB's estimate), by database and part",
                  double(d.document_bytes), {{"database", name}, {"part", "documents"}});
        out.gauge("hawser_zdb_bytes", "Bytes on disk (RocksDB's estimate), by database and part",
                  double(d.blob_bytes), {{"database", name}, {"part", "blobs"}});
        out.gauge("hawser_zdb_bytes", "Bytes on disk (RocksDB's estimate), by database and part",
                  double(d.index_bytes), {{"database", name}, {"part", "indexes"}});
    }
}

}  // namespace hawser::zdb
