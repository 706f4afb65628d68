// ZDB's store: one RocksDB per data directory. Layout (docs/zdb.md):
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
#include <rocksdb/cache.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <shared_mutex>

#include "zdb/database_impl.hpp"
#include "zdb/keys.hpp"

namespace hawser::zdb {

namespace {

constexpr const char* meta_family = "__meta";
constexpr std::size_t copy_batch_bytes = 4u << 20;

const char* const family_suffixes[] = {"", ".blobs", ".index"};

std::string family_name(std::uint64_t table, int which) {
    return "t" + std::to_string(table) + family_suffixes[which];
}

std::optional<std::uint64_t> parse_number(std::string_view digits) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
        return std::nullopt;
    return v;
}

// The table number of a family name "t<N>", "t<N>.blobs" or "t<N>.index"; nothing otherwise.
std::optional<std::uint64_t> family_table(std::string_view name) {
    if (!name.starts_with('t')) return std::nullopt;
    auto dot = name.find('.');
    auto suffix = dot == std::string_view::npos ? std::string_view() : name.substr(dot);
    if (!suffix.empty() && suffix != ".blobs" && suffix != ".index") return std::nullopt;
    return parse_number(name.substr(1, dot == std::string_view::npos ? dot : dot - 1));
}

}  // namespace

bool Store::valid_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.rfind("__", 0) == 0) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
            return false;
    return true;
}

namespace {

Error bad_name() {
    return Error{Errc::invalid_argument,
                 "database names are 1-64 of A-Z a-z 0-9 _ . -, not starting with __"};
}

Error no_database(std::string_view name) {
    return Error{Errc::not_found, "no database '" + std::string(name) + "'"};
}

}  // namespace

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

Result<void> StoreImpl::open(const StoreOptions& options) {
    if (options.path.empty()) return Error{Errc::invalid_argument, "store path is empty"};
    cache_ = rocksdb::NewLRUCache(options.block_cache_bytes);
    statistics_ = rocksdb::CreateDBStatistics();
    write_buffer_bytes_ = options.write_buffer_bytes;
    rocksdb::DBOptions dbo;
    dbo.create_if_missing = true;
    dbo.create_missing_column_families = true;
    dbo.max_open_files = options.max_open_files;
    dbo.max_background_jobs = options.background_jobs;
    dbo.statistics = statistics_;
    std::vector<std::string> names;
    if (!rocksdb::DB::ListColumnFamilies(dbo, options.path, &names).ok())
        names = {rocksdb::kDefaultColumnFamilyName};  // a new store
    if (std::find(names.begin(), names.end(), meta_family) == names.end())
        names.push_back(meta_family);
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) {
        bool known = n == meta_family || n == rocksdb::kDefaultColumnFamilyName || family_table(n);
        if (!known)
            return Error{Errc::storage_error, "'" + options.path + "' holds column family '" + n +
                                                  "', which is not ZDB's layout"};
        bool blobs = n.size() > 6 && n.compare(n.size() - 6, 6, ".blobs") == 0;
        descriptors.emplace_back(n, family_options(blobs ? 1 : 0));
    }
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> opened;
    auto s = rocksdb::DB::Open(dbo, options.path, descriptors, &opened, &raw);
    if (!s.ok()) return storage_error(s);
    db_.reset(raw);
    handles_ = std::make_shared<FamilyHandles>(*db_);
    for (auto* h : opened) handles_->add(h);
    for (auto* h : opened) {
        if (h->GetName() == meta_family) meta_ = h;
        auto table = family_table(h->GetName());
        if (!table) continue;
        auto& f = families_[*table];
        auto& slot = h->GetName().ends_with(".blobs")   ? f.blobs
                     : h->GetName().ends_with(".index") ? f.index
                                                        : f.docs;
        slot = h;
        next_table_ = std::max(next_table_, *table + 1);
    }

    // Read the meta family: names, then each named table's state.
    std::map<std::string, std::uint64_t> names_to_tables;
    std::map<std::uint64_t, std::map<std::string, std::uint64_t>> table_meta;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        auto key = it->key().ToString();
        auto value = decode_u64(std::string_view(it->value().data(), it->value().size()));
        if (key.rfind("name/", 0) == 0) {
            names_to_tables[key.substr(5)] = value;
        } else if (key.rfind("table/", 0) == 0) {
            auto slash = key.find('/', 6);
            auto table = parse_number(std::string_view(key).substr(6, slash - 6));
            if (slash == std::string::npos || !table)
                return Error{Errc::storage_error, "malformed ZDB meta entry '" + key + "'"};
            table_meta[*table][key.substr(slash + 1)] = value;
        } else if (key == "next_table") {
            next_table_ = std::max(next_table_, value);
        }
    }
    if (!it->status().ok()) return storage_error(it->status());
    it.reset();
    std::set<std::uint64_t> named;
    for (const auto& [name, number] : names_to_tables) {
        auto f = families_.find(number);
        if (f == families_.end() || !f->second.docs || !f->second.blobs || !f->second.index)
            return Error{Errc::storage_error, "database '" + name + "' (table " +
                                                  std::to_string(number) +
                                                  ") is missing column families"};
        auto& meta = table_meta[number];
        TableState state;
        state.next_id = meta.count("next_id") ? meta["next_id"] : 1;
        state.count = meta["count"];
        for (const auto& [key, v] : meta)
            if (key.rfind("index/", 0) == 0)
                state.indexes.emplace(key.substr(6), static_cast<std::uint16_t>(v));
        auto durability_code = meta.count("durability") ? meta["durability"] : 1;
        if (durability_code > std::uint64_t(Durability::fast))
            return Error{Errc::storage_error, "database '" + name + "' has an unknown durability"};
        auto durability = Durability(durability_code);
        auto table = std::make_shared<Table>(*db_, handles_, meta_, number, f->second, durability,
                                             std::move(state));
        databases_.emplace(name, std::make_shared<DatabaseImpl>(name, std::move(table)));
        named.insert(number);
    }
    if (auto r = collect_garbage(named); !r) return r;
    if (auto r = recover_after_crash(); !r) return r;
    opened_ = true;
    return {};
}

Result<void> StoreImpl::recover_after_crash() {
    std::string mark;
    auto s = db_->Get(rocksdb::ReadOptions(), meta_, "open", &mark);
    if (!s.ok() && !s.IsNotFound()) return storage_error(s);
    if (s.ok()) {
        for (const auto& [name, d] : databases_) {
            auto table = d->table();
            if (!table || (*table)->durability() != Durability::fast) continue;
            if (auto r = (*table)->repair(); !r)
                return Error{r.error().code,
                             "repairing '" + name + "' after a crash: " + r.error().message};
        }
    }
    rocksdb::WriteBatch batch;
    batch.Put(meta_, "open", encode_u64(1));
    return write_meta(batch);
}

void StoreImpl::close_cleanly() {
    // `fast` tables' memtables are their only copy: flush them, then clear the mark.
    std::vector<rocksdb::ColumnFamilyHandle*> unlogged;
    for (const auto& [name, d] : databases_) {
        auto table = d->table();
        if (!table || (*table)->durability() != Durability::fast) continue;
        const auto& f = (*table)->families();
        unlogged.insert(unlogged.end(), {f.docs, f.blobs, f.index});
    }
    if (!unlogged.empty() && !db_->Flush(rocksdb::FlushOptions(), unlogged).ok()) return;
    rocksdb::WriteBatch batch;
    batch.Delete(meta_, "open");
    (void)write_meta(batch);  // if this fails, the next open repairs what needs no repair
}

Result<void> StoreImpl::collect_garbage(const std::set<std::uint64_t>& named) {
    for (auto it = families_.begin(); it != families_.end();) {
        if (named.count(it->first)) {
            ++it;
            continue;
        }
        rocksdb::WriteBatch batch;
        auto prefix = table_meta_prefix(it->first);
        batch.DeleteRange(meta_, prefix, prefix_end(prefix));
        if (auto r = write_meta(batch); !r) return r;
        drop_families(it->second);
        handles_->release(it->second);
        it = families_.erase(it);
    }
    return {};
}

Result<void> StoreImpl::write_meta(rocksdb::WriteBatch& batch) {
    rocksdb::WriteOptions w;
    w.sync = true;  // layout changes survive a power loss whatever the databases' durability
    auto s = db_->Write(w, &batch);
    if (!s.ok()) return storage_error(s);
    return {};
}

void StoreImpl::put_table_meta(rocksdb::WriteBatch& batch, std::uint64_t table,
                               Durability durability, const TableState& state) const {
    auto prefix = table_meta_prefix(table);
    batch.Put(meta_, prefix + "durability", encode_u64(static_cast<std::uint64_t>(durability)));
    batch.Put(meta_, prefix + "next_id", encode_u64(state.next_id));
    batch.Put(meta_, prefix + "count", encode_u64(state.count));
    for (const auto& [path, n] : state.indexes)
        batch.Put(meta_, prefix + "index/" + path, encode_u64(n));
}

Result<std::uint64_t> StoreImpl::allocate_table() {
    auto number = next_table_++;
    rocksdb::WriteBatch batch;
    batch.Put(meta_, "next_table", encode_u64(next_table_));
    if (auto r = write_meta(batch); !r) return r.error();
    return number;
}

Result<TableFamilies> StoreImpl::create_families(std::uint64_t table) {
    rocksdb::ColumnFamilyHandle* created[3] = {};
    for (int which = 0; which < 3; ++which) {
        auto s = db_->CreateColumnFamily(family_options(which), family_name(table, which),
                                         &created[which]);
        if (!s.ok()) {
            for (int i = 0; i < which; ++i) {
                db_->DropColumnFamily(created[i]);
                db_->DestroyColumnFamilyHandle(created[i]);
            }
            return storage_error(s);
        }
    }
    for (auto* h : created) handles_->add(h);
    TableFamilies f{created[0], created[1], created[2]};
    families_[table] = f;
    return f;
}

void StoreImpl::drop_families(const TableFamilies& families) {
    // The handles stay valid (RocksDB keeps dropped families readable until their handles are
    // destroyed), so a query still running on the table finishes cleanly.
    for (auto* h : {families.docs, families.blobs, families.index})
        if (h) db_->DropColumnFamily(h);
}

Result<StoreImpl::NewTable> StoreImpl::new_table(const std::string& name) {
    if (databases_.count(name) || reserved_.count(name))
        return Error{Errc::invalid_argument, "database '" + name + "' exists"};
    auto number = allocate_table();
    if (!number) return number.error();
    auto families = create_families(*number);
    if (!families) return families.error();
    return NewTable{*number, *families};
}

void StoreImpl::discard(const NewTable& table) {
    drop_families(table.families);
    handles_->release(table.families);  // never published: nothing else reads it
    families_.erase(table.number);
}

Result<std::shared_ptr<DatabaseImpl>> StoreImpl::publish(const std::string& name,
                                                         const NewTable& table,
                                                         Durability durability,
                                                         const TableState& state) {
    rocksdb::WriteBatch batch;
    put_table_meta(batch, table.number, durability, state);
    batch.Put(meta_, "name/" + name, encode_u64(table.number));
    if (auto r = write_meta(batch); !r) {
        discard(table);
        return r.error();
    }
    auto d = std::make_shared<DatabaseImpl>(
        name, std::make_shared<Table>(*db_, handles_, meta_, table.number, table.families,
                                      durability, state));
    databases_.emplace(name, d);
    return d;
}

Result<std::shared_ptr<Database>> StoreImpl::create(const std::string& name,
                                                    DatabaseOptions options) {
    if (!Store::valid_name(name)) return bad_name();
    std::unique_lock lock(mu_);
    auto table = new_table(name);
    if (!table) return table.error();
    auto d = publish(name, *table, options.durability, TableState{});
    if (!d) return d.error();
    return std::shared_ptr<Database>(*d);
}

Result<std::shared_ptr<DatabaseImpl>> StoreImpl::find(std::string_view name) const {
    auto it = databases_.find(name);
    if (it == databases_.end()) return no_database(name);
    return it->second;
}

Result<std::shared_ptr<Database>> StoreImpl::database(std::string_view name) const {
    std::shared_lock lock(mu_);
    auto d = find(name);
    if (!d) return d.error();
    return std::shared_ptr<Database>(*d);
}

std::vector<std::string> StoreImpl::list() const {
    std::shared_lock lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, d] : databases_) out.push_back(n);
    return out;
}

Result<void> StoreImpl::drop(std::string_view name) {
    std::unique_lock lock(mu_);
    auto d = find(name);
    if (!d) return d.error();
    auto table = (*d)->table();
    if (!table) return table.error();
    rocksdb::WriteBatch batch;
    batch.Delete(meta_, "name/" + std::string(name));
    auto prefix = table_meta_prefix((*table)->number());
    batch.DeleteRange(meta_, prefix, prefix_end(prefix));
    if (auto r = write_meta(batch); !r) return r;
    drop_families((*table)->families());
    (*table)->mark_dropped();  // its handles go with the last query still reading it
    (*d)->unbind();
    families_.erase((*table)->number());
    databases_.erase(databases_.find(name));
    return {};
}

Result<void> StoreImpl::compact(std::string_view name) {
    auto d = database(name);
    if (!d) return d.error();
    auto table = static_cast<DatabaseImpl&>(**d).table();
    if (!table) return table.error();
    const auto& f = (*table)->families();
    for (auto* h : {f.docs, f.blobs, f.index}) {
        auto s = db_->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr);
        if (!s.ok()) return storage_error(s);
    }
    return {};
}

Result<void> StoreImpl::copy_family(rocksdb::ColumnFamilyHandle* from,
                                    rocksdb::ColumnFamilyHandle* to,
                                    const rocksdb::Snapshot* snapshot) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = false;  // a one-off pass should not evict what the application reads
    rocksdb::WriteOptions w;
    w.disableWAL = true;  // flushed before the copy is published
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, from));
    rocksdb::WriteBatch batch;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        batch.Put(to, it->key(), it->value());
        if (batch.GetDataSize() >= copy_batch_bytes) {
            auto s = db_->Write(w, &batch);
            if (!s.ok()) return storage_error(s);
            batch.Clear();
        }
    }
    if (!it->status().ok()) return storage_error(it->status());
    auto s = db_->Write(w, &batch);
    if (s.ok()) s = db_->Flush(rocksdb::FlushOptions(), to);
    if (!s.ok()) return storage_error(s);
    return {};
}

Result<void> StoreImpl::copy(std::string_view source, const std::string& destination) {
    if (!Store::valid_name(destination)) return bad_name();
    std::shared_ptr<Table> from;
    NewTable to;
    {
        std::unique_lock lock(mu_);
        auto d = find(source);
        if (!d) return d.error();
        auto t = (*d)->table();
        if (!t) return t.error();
        from = std::move(*t);
        auto created = new_table(destination);
        if (!created) return created.error();
        to = *created;
        reserved_.insert(destination);
    }
    // The copy runs without the store lock: readers and writers of other databases go on.
    auto [snapshot, state] = from->snapshot();
    Result<void> copied;
    const auto& f = from->families();
    const auto& t = to.families;
    for (auto [a, b] : {std::pair{f.docs, t.docs}, {f.blobs, t.blobs}, {f.index, t.index}}) {
        copied = copy_family(a, b, snapshot);
        if (!copied) break;
    }
    db_->ReleaseSnapshot(snapshot);
    std::unique_lock lock(mu_);
    reserved_.erase(destination);
    if (!copied) {
        discard(to);
        return copied;
    }
    auto d = publish(destination, to, from->durability(), state);
    if (!d) return d.error();
    return {};
}

Result<void> StoreImpl::replace(std::string_view target, std::string_view source) {
    if (target == source) return Error{Errc::invalid_argument, "a database cannot replace itself"};
    std::unique_lock lock(mu_);
    auto t = find(target), s = find(source);
    if (!t) return t.error();
    if (!s) return s.error();
    auto old_table = (*t)->table(), new_table = (*s)->table();
    if (!old_table) return old_table.error();
    if (!new_table) return new_table.error();
    if ((*new_table)->durability() == Durability::fast) {
        // Its latest writes are only in memtables: make them durable before publishing.
        const auto& f = (*new_table)->families();
        auto st = db_->Flush(rocksdb::FlushOptions(), {f.docs, f.blobs, f.index});
        if (!st.ok()) return storage_error(st);
    }
    rocksdb::WriteBatch batch;
    batch.Put(meta_, "name/" + std::string(target), encode_u64((*new_table)->number()));
    batch.Delete(meta_, "name/" + std::string(source));
    auto prefix = table_meta_prefix((*old_table)->number());
    batch.DeleteRange(meta_, prefix, prefix_end(prefix));
    if (auto r = write_meta(batch); !r) return r;
    drop_families((*old_table)->families());
    (*old_table)->mark_dropped();  // its handles go with the last query still reading it
    (*t)->bind(*new_table);
    (*s)->unbind();
    families_.erase((*old_table)->number());
    databases_.erase(databases_.find(source));
    return {};
}

Result<void> StoreImpl::checkpoint(const std::string& directory) {
    rocksdb::Checkpoint* raw = nullptr;
    auto s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    if (!s.ok()) return storage_error(s);
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    s = cp->CreateCheckpoint(directory);
    if (!s.ok()) return storage_error(s);
    return {};
}

StoreStats StoreImpl::stats() const {
    StoreStats s;
    s.cache_capacity_bytes = cache_->GetCapacity();
    s.cache_usage_bytes = cache_->GetUsage();
    s.cache_hits = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
    s.cache_misses = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
    return s;
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
    auto store = std::make_unique<StoreImpl>();
    if (auto r = store->open(options); !r) return r.error();
    return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hawser::zdb
