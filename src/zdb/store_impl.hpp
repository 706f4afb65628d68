// StoreImpl: ZDB's store, one RocksDB per data directory. Layout (docs/zdb.md):
//   "__meta"              name/<database> -> table number; table/<N>/{next_id,count,durability,
//                         index/<field>}; next_table; open (set while a process has it open)
//   "t<N>"                documents of table N, keyed by the 8-byte big-endian id
//   "t<N>.blobs"          attachments, keyed id | name, in blob files
//   "t<N>.index"          index entries, keyed index | value | id
// A database name points at a table, so that copy and replace can build a table under no name
// and then publish it with one atomic meta write. Tables no name points at (a copy or a drop
// cut short by a crash) are removed when the store opens. A dropped or replaced table's column
// families are dropped at once and their handles destroyed when the last query or copy reading
// the table ends, which is when RocksDB deletes their files (table.hpp, FamilyHandles).
// store.cpp opens and closes the store; store_tables.cpp makes, names and drops tables;
// store_copies.cpp copies, replaces and checkpoints them.
// Ownership: the application owns the Store; tables are shared with the queries reading them.
// Thread affinity: any thread; mu_ guards the names and the layout.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "zdb/database_impl.hpp"
#include "zdb/keys.hpp"

namespace hawser::zdb {

inline constexpr const char* meta_family = "__meta";
// "t<N>", "t<N>.blobs" or "t<N>.index", for `which` 0, 1 or 2.
std::string family_name(std::uint64_t table, int which);
// The table number of a family name "t<N>", "t<N>.blobs" or "t<N>.index"; nothing otherwise.
std::optional<std::uint64_t> family_table(std::string_view name);
Error bad_name();
Error no_database(std::string_view name);

class StoreImpl final : public Store {
  public:
    ~StoreImpl() override {
        if (opened_) close_cleanly();
        if (handles_) handles_->close();
        db_.reset();
    }

    Result<void> open(const StoreOptions& options);
    Result<std::shared_ptr<Database>> create(const std::string& name,
                                             DatabaseOptions options) override;
    Result<std::shared_ptr<Database>> database(std::string_view name) const override;
    std::vector<std::string> list() const override;
    Result<void> drop(std::string_view name) override;
    Result<void> compact(std::string_view name) override;
    Result<void> copy(std::string_view source, const std::string& destination) override;
    Result<void> replace(std::string_view target, std::string_view source) override;
    Result<void> checkpoint(const std::string& directory) override;
    StoreStats stats() const override;

  private:
    rocksdb::ColumnFamilyOptions family_options(int which) const {
        rocksdb::ColumnFamilyOptions o;
        o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options(cache_)));
        o.compression = rocksdb::kLZ4Compression;
        o.write_buffer_size = write_buffer_bytes_;
        if (which == 1) {  // attachments: values in blob files, so scans never read them
            o.enable_blob_files = true;
            o.min_blob_size = 0;
            o.enable_blob_garbage_collection = true;
        }
        return o;
    }
    Result<std::shared_ptr<DatabaseImpl>> find(std::string_view name) const;
    struct NewTable {
        std::uint64_t number = 0;
        TableFamilies families;
    };
    // A new table, not yet named, for a database to be called `name` (mu_ held).
    Result<NewTable> new_table(const std::string& name);
    void discard(const NewTable& table);
    // Names the table with one synchronous meta write and opens its handle; on failure the
    // table is discarded (mu_ held).
    Result<std::shared_ptr<DatabaseImpl>> publish(const std::string& name, const NewTable& table,
                                                  Durability durability, const TableState& state);
    // Creates the families of a new table, unnamed and with no meta entries yet.
    Result<TableFamilies> create_families(std::uint64_t table);
    void drop_families(const TableFamilies& families);
    // Deletes table `table`'s meta entries, in `batch`.
    void delete_table_meta(rocksdb::WriteBatch& batch, std::uint64_t table) const;
    // Deletes a published table's meta keys with what `batch` holds, in one synchronous write,
    // then drops its families (their handles go with the last query still reading it); marked
    // dropped first, so that no write lands between the two (mu_ held).
    Result<void> unname(Table& table, rocksdb::WriteBatch& batch);
    Result<std::uint64_t> allocate_table();
    Result<void> write_meta(rocksdb::WriteBatch& batch);
    void put_table_meta(rocksdb::WriteBatch& batch, std::uint64_t table, Durability durability,
                        const TableState& state) const;
    // Removes tables no name points at, with their meta entries.
    Result<void> collect_garbage(const std::set<std::uint64_t>& named);
    // The "open" mark in __meta is set while a process has the store open: found at open, it
    // says the last one stopped without closing, and `fast` tables are repaired.
    Result<void> recover_after_crash();
    void close_cleanly();
    Result<void> copy_family(rocksdb::ColumnFamilyHandle* from, rocksdb::ColumnFamilyHandle* to,
                             const rocksdb::Snapshot* snapshot);

    mutable std::shared_mutex mu_;  // the name map and the layout
    std::shared_ptr<rocksdb::Cache> cache_;
    std::shared_ptr<rocksdb::Statistics> statistics_;
    std::size_t write_buffer_bytes_ = 0;
    std::unique_ptr<rocksdb::DB> db_;
    rocksdb::ColumnFamilyHandle* meta_ = nullptr;
    std::shared_ptr<FamilyHandles> handles_;           // every family handle, shared with tables
    std::map<std::uint64_t, TableFamilies> families_;  // every table's families, by number
    std::map<std::string, std::shared_ptr<DatabaseImpl>, std::less<>> databases_;
    std::set<std::string, std::less<>> reserved_;  // names of copies in progress
    std::uint64_t next_table_ = 1;
    bool opened_ = false;  // open() succeeded: closing may clear the "open" mark
};

}  // namespace hawser::zdb
