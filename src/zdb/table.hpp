// One physical database: the three column families that hold a database's documents
// ("t<N>", keyed by id), attachments ("t<N>.blobs", blob files) and index entries ("t<N>.index"),
// with its counters and index definitions. A database name points at one table; copy and
// replace move names between tables (docs/zdb.md, "Layout").
// Ownership: shared by the database handle it is bound to and by the queries and copies
// reading it. A dropped (or replaced) table gives its column family handles back when the last
// of them lets it go, and RocksDB then deletes its files.
// Thread safety: safe from any thread. Writes that change the counters, the indexes or the
// index definitions hold write_mu_, so the meta entries written in the same batch are exact.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hawser/zdb/store.hpp"
#include "zdb/record_view.hpp"

namespace hawser::zdb {

struct TableFamilies {
    rocksdb::ColumnFamilyHandle* docs = nullptr;
    rocksdb::ColumnFamilyHandle* blobs = nullptr;
    rocksdb::ColumnFamilyHandle* index = nullptr;
};

// Every column family handle of a store, shared by the store and its tables: a dropped table
// releases its handles when it goes (RocksDB deletes a dropped family's files once its handles
// are destroyed and no read uses it), and the store destroys every handle left when it closes.
// Thread safety: safe from any thread.
class FamilyHandles {
  public:
    explicit FamilyHandles(rocksdb::DB& db) : db_(&db) {}
    void add(rocksdb::ColumnFamilyHandle* handle);
    // Destroys these handles, unless the store has closed already.
    void release(const TableFamilies& families);
    // Destroys every handle left (before RocksDB closes); later releases do nothing.
    void close();

  private:
    std::mutex mu_;
    rocksdb::DB* db_;  // null once closed
    std::set<rocksdb::ColumnFamilyHandle*> open_;
};

// The meta entries of table N live under "table/<N>/".
std::string table_meta_prefix(std::uint64_t number);

struct TableState {
    RecordId next_id = 1;
    std::uint64_t count = 0;
    std::map<std::string, std::uint16_t, std::less<>> indexes;  // field path -> index number
};

class Table {
  public:
    Table(rocksdb::DB& db, std::shared_ptr<FamilyHandles> handles,
          rocksdb::ColumnFamilyHandle* meta, std::uint64_t number, TableFamilies families,
          Durability durability, TableState state);
    // A dropped table's column family handles go with it.
    ~Table();
    Table(const Table&) = delete;
    Table& operator=(const Table&) = delete;

    std::uint64_t number() const { return number_; }
    Durability durability() const { return durability_; }
    const TableFamilies& families() const { return families_; }
    rocksdb::DB& db() const { return db_; }
    TableState state() const;
    std::uint64_t count() const;  // state().count without copying the index definitions
    // A RocksDB snapshot with the counters that match it (release it with the DB).
    std::pair<const rocksdb::Snapshot*, TableState> snapshot() const;
    // Called before the store unnames the table (its meta keys deleted, its families dropped):
    // writes fail with not_found from here on, so none lands after the keys are gone, readers
    // finish what they started, and the handles go with the table. Waits for a write under
    // way. `dropped` false takes it back, when unnaming it failed.
    void mark_dropped(bool dropped = true);

    Result<std::vector<RecordId>> insert(const std::vector<Map>& documents);
    // Inserts unless the index on `field` already holds the document's value there.
    Result<RecordId> insert_unique(const Map& document, std::string_view field);
    // Writes encoded documents under ids chosen by the caller (query output, copies); the ids
    // must be free. The id counter moves past the highest.
    Result<void> put_encoded(const std::vector<std::pair<RecordId, std::string>>& records);
    // Moves the id counter to at least `next_id`: ids below it are never handed out.
    Result<void> reserve_ids(RecordId next_id);
    // The stored document bytes, or nothing when there is no such record.
    Result<std::optional<std::string>> get_encoded(
        RecordId id, const rocksdb::Snapshot* snapshot = nullptr) const;
    Result<void> replace(RecordId id, const Map& document);
    Result<void> patch(RecordId id, const Map& fields);
    Result<void> remove(RecordId id);
    // Visits stored documents in id order over [from, to) (reverse: from downwards, above to).
    Result<void> scan_encoded(const ScanOptions& options,
                              const std::function<bool(RecordId, std::string_view)>& visit,
                              const rocksdb::Snapshot* snapshot = nullptr) const;
    // Whether a full scan should keep the blocks it reads in the block cache: not when the
    // documents are larger than half the cache, where a scan would only evict what point reads
    // and smaller databases need (and pay for every insert and eviction).
    bool scans_fill_cache() const;

    Result<void> put_attachment(RecordId id, std::string_view name,
                                std::span<const std::uint8_t> data);
    Result<std::optional<Bytes>> get_attachment(RecordId id, std::string_view name) const;
    Result<void> remove_attachment(RecordId id, std::string_view name);
    Result<std::vector<std::string>> attachments(RecordId id) const;

    // Builds the index from the records present (writes wait meanwhile), then keeps it.
    Result<void> create_index(const std::string& path);
    Result<void> drop_index(std::string_view path);
    // Visits the ids whose indexed value key lies in [from, to) ("" = the end of the index).
    Result<void> index_ids(std::uint16_t index, const std::string& from, const std::string& to,
                           const rocksdb::Snapshot* snapshot,
                           const std::function<bool(RecordId)>& visit) const;

    rocksdb::WriteOptions write_options() const;

    // After a crash, a `fast` table's column families may have been flushed at different points
    // (no WAL ties their memtables together): recounts the records, moves the id counter past
    // the highest and rebuilds every index from the records.
    Result<void> repair();

  private:
    struct IndexDef {
        std::uint16_t number;
        FieldPath path;
    };
    // Adds the index entries of one document to the batch (put) or removes them.
    void index_document(rocksdb::WriteBatch& batch, RecordId id, std::string_view document,
                        bool put) const;
    void put_counters(rocksdb::WriteBatch& batch) const;
    static Error no_record(RecordId id);
    Result<void> build_index(const IndexDef& def);  // write_mu_ held
    // Into `batch`: deletes attachments of ids with no record (repair, write_mu_ held).
    Result<void> delete_orphan_attachments(rocksdb::WriteBatch& batch);
    Result<std::string> current(RecordId id) const;  // the stored bytes, or not_found
    Result<void> writable() const;                   // write_mu_ held
    Result<void> write(rocksdb::WriteBatch& batch);
    Result<void> write_definition(rocksdb::WriteBatch& batch);
    Result<std::vector<RecordId>> insert_locked(const std::vector<Map>& documents);
    Result<void> rewrite(RecordId id, const std::string& old_document, std::string new_document);

    rocksdb::DB& db_;
    const std::shared_ptr<FamilyHandles> handles_;
    rocksdb::ColumnFamilyHandle* const meta_;
    const std::uint64_t number_;
    const TableFamilies families_;
    const Durability durability_;

    mutable std::mutex write_mu_;
    TableState state_;
    std::vector<IndexDef> index_defs_;  // state_.indexes, paths split
    bool dropped_ = false;
};

// Documents are small and scanned often: 16 KiB blocks (fewer per-block costs on scans than
// the 4 KiB default) compressed with LZ4 (the cheapest to decompress).
rocksdb::BlockBasedTableOptions table_options(std::shared_ptr<rocksdb::Cache> cache);

Error storage_error(const rocksdb::Status& s);
rocksdb::ReadOptions reading(const rocksdb::Snapshot* snapshot);  // at that snapshot (or now)
std::string encode_document(const Map& document);
Result<Map> decode_document(std::string_view bytes);
// What every write checks before storing a document, decoded or encoded, so that the reader
// can read it back: limit_exceeded beyond max_document_depth levels.
Result<void> check_document(const Map& document);
Result<void> check_document(std::string_view encoded);

}  // namespace hawser::zdb
