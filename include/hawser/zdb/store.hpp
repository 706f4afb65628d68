// ZDB: Hawser's embedded document store on RocksDB. One data directory (a Store) holds many
// named databases; each database holds records — documents (string-keyed maps, stored as
// MessagePack) under stable 64-bit ids assigned in increasing order and never reused — and named
// binary attachments of any size, kept in RocksDB blob files apart from the documents so scans
// never read them. Layout and choices: docs/zdb.md.
// Thread safety: Store and Database are safe to use from any number of threads.
// Ownership: Database handles are shared; a dropped database's handle fails with not_found.
// A Store must outlive the handles and queries taken from it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/metrics.hpp"

namespace hawser::zdb {

using RecordId = std::uint64_t;

// Documents nest at most this many levels of maps and arrays, the document itself being the
// first. Every write refuses a deeper document with limit_exceeded, and the reader (which
// bounds its recursion with the same number) rejects deeper records.
inline constexpr std::size_t max_document_depth = 32;
// A field path ("a.b.c") in a filter or an index is at most this long, and at most
// max_document_depth steps: no record holds a deeper one.
inline constexpr std::size_t max_field_path_bytes = 1024;

// How far an acknowledged write is protected.
enum class Durability : std::uint8_t {
    sync = 0,    // survives a crash and a power loss (WAL fsync'ed per write)
    normal = 1,  // survives a process crash (WAL written, not fsync'ed)
    fast = 2,    // no WAL: for bulk loads; lost on a crash until the next flush
};

struct StoreOptions {
    std::string path;                            // created if missing (create_if_missing)
    std::size_t block_cache_bytes = 256u << 20;  // LRU cache shared by every database
    std::size_t write_buffer_bytes = 64u << 20;  // memtable size per column family
    int max_open_files = 1024;                   // table files RocksDB keeps open
    int background_jobs = 2;                     // flush and compaction threads
    // false: a path that holds no store is an error (not_found) instead of a new, empty store.
    bool create_if_missing = true;
};

struct DatabaseOptions {
    Durability durability = Durability::normal;
};

struct ScanOptions {
    RecordId from = 0;  // first id visited (reverse: the highest); 0 = the start (or end)
    RecordId to = 0;    // stop before this id (reverse: ids above it only); 0 = no bound
    bool reverse = false;
};

struct DatabaseStats {
    std::uint64_t records = 0;
    std::uint64_t next_id = 0;
    std::uint64_t document_bytes = 0;  // on disk, estimated by RocksDB
    std::uint64_t blob_bytes = 0;
    std::uint64_t index_bytes = 0;
    std::vector<std::string> indexes;  // indexed field paths
};

// The store's shared block cache: how full it is and how often reads found their block there.
struct StoreStats {
    std::uint64_t cache_capacity_bytes = 0;
    std::uint64_t cache_usage_bytes = 0;
    std::uint64_t cache_hits = 0;
    std::uint64_t cache_misses = 0;
    double cache_hit_rate() const {
        auto all = cache_hits + cache_misses;
        return all ? double(cache_hits) / double(all) : 0;
    }
};

class Database {
  public:
    virtual ~Database() = default;
    virtual const std::string& name() const = 0;
    virtual Durability durability() const = 0;

    virtual Result<RecordId> insert(const Map& document) = 0;
    virtual Result<std::vector<RecordId>> insert_batch(const std::vector<Map>& documents) = 0;
    // Inserts the document unless a record already holds its value at `field`, which must be
    // indexed (already_exists then): a unique name among every writer of the store, local or
    // remote, since the check and the insert are one step of the database's writes. Plain
    // writes are not checked against it.
    virtual Result<RecordId> insert_unique(const Map& document, const std::string& field) = 0;
    virtual Result<Map> get(RecordId id) const = 0;
    virtual Result<void> replace(RecordId id, const Map& document) = 0;
    // Sets the given top-level fields; a field set to nil is removed.
    virtual Result<void> patch(RecordId id, const Map& fields) = 0;
    // Deletes the record and its attachments.
    virtual Result<void> remove(RecordId id) = 0;
    virtual Result<bool> exists(RecordId id) const = 0;
    virtual std::uint64_t count() const = 0;
    // Visits records in id order; the visitor returns false to stop.
    virtual Result<void> scan(const std::function<bool(RecordId, const Map&)>& visit,
                              ScanOptions options = {}) const = 0;

    virtual Result<void> put_attachment(RecordId id, std::string_view name,
                                        std::span<const std::uint8_t> data) = 0;
    virtual Result<Bytes> get_attachment(RecordId id, std::string_view name) const = 0;
    virtual Result<void> remove_attachment(RecordId id, std::string_view name) = 0;
    virtual Result<std::vector<std::string>> attachments(RecordId id) const = 0;

    // Secondary indexes on a field path (dotted for nested maps), for equality and ranges. The
    // declarative filter uses one when a condition on the field narrows the records enough.
    // Entries are written in the same atomic batch as the records. Building one scans the
    // database; writes wait meanwhile.
    virtual Result<void> create_index(const std::string& field) = 0;
    virtual Result<void> drop_index(std::string_view field) = 0;

    virtual DatabaseStats stats() const = 0;
};

class Store {
  public:
    static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
    virtual ~Store() = default;

    // Names: 1-64 of [A-Za-z0-9_.-], not starting with "__".
    static bool valid_name(std::string_view name);
    virtual Result<std::shared_ptr<Database>> create(const std::string& name,
                                                     DatabaseOptions options = {}) = 0;
    virtual Result<std::shared_ptr<Database>> database(std::string_view name) const = 0;
    virtual std::vector<std::string> list() const = 0;
    virtual Result<void> drop(std::string_view name) = 0;
    virtual Result<void> compact(std::string_view name) = 0;
    // A new database `destination` holding a consistent copy of `source` as it was when the copy
    // began: the same ids, attachments, indexes and durability. Nothing is visible under the new
    // name until the copy is complete.
    virtual Result<void> copy(std::string_view source, const std::string& destination) = 0;
    // Atomically makes `target` name what `source` holds (records, attachments, indexes,
    // durability) and removes the name `source`; target's old contents are dropped. Handles to
    // `target` see the new contents; handles to `source` fail with not_found. Queries already
    // running finish on what they started on.
    virtual Result<void> replace(std::string_view target, std::string_view source) = 0;
    // A consistent copy of the whole store in a new directory, taken online.
    virtual Result<void> checkpoint(const std::string& directory) = 0;
    virtual StoreStats stats() const = 0;
};

// The store's figures for /metrics (hawser/metrics.hpp): the block cache, and per database its
// records and bytes on disk (hawser_zdb_*).
void write_metrics(MetricsText& out, const Store& store);

}  // namespace hawser::zdb
