// ZDB on RocksDB. Layout (docs/zdb.md): per database two column families, "<name>" for
// documents keyed by the 8-byte big-endian id (so key order is id order) and "<name>.blobs" for
// attachments keyed id | name, with blob files enabled so large values live outside the LSM
// tree and scans of documents never touch them. "__meta" holds each database's id high-water
// mark, record count and durability, updated in the same atomic batch as the records.
#include "hawser/zdb/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <map>
#include <mutex>
#include <shared_mutex>

namespace hawser::zdb {

namespace {

constexpr const char* meta_cf = "__meta";
constexpr const char* blob_suffix = ".blobs";

Error storage(const rocksdb::Status& s) {
    return Error{Errc::storage_error, s.ToString()};
}

std::string id_key(RecordId id) {
    std::string k(8, '\0');
    for (int i = 0; i < 8; ++i) k[i] = static_cast<char>(id >> (56 - 8 * i));
    return k;
}

RecordId key_id(const rocksdb::Slice& k) {
    RecordId id = 0;
    for (int i = 0; i < 8 && i < static_cast<int>(k.size()); ++i)
        id = id << 8 | static_cast<std::uint8_t>(k[i]);
    return id;
}

std::string encode_u64(std::uint64_t v) {
    return id_key(v);
}
std::uint64_t decode_u64(const std::string& s) {
    return key_id(s);
}

std::string encode_document(const Map& document) {
    DataFrame df;
    df << document;
    return std::move(df).take_bytes();
}

Result<Map> decode_document(const rocksdb::Slice& bytes) {
    auto df = DataFrame::decode(std::string_view(bytes.data(), bytes.size()));
    if (!df) return df.error();
    return df->read_map();
}

bool is_blob_family(const std::string& name) {
    return name.size() >= 6 && name.compare(name.size() - 6, 6, blob_suffix) == 0;
}

bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name.rfind("__", 0) == 0 || is_blob_family(name))
        return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
            return false;
    return true;
}

bool valid_attachment_name(std::string_view name) {
    return !name.empty() && name.size() <= 255;
}

}  // namespace

class StoreImpl;

class DatabaseImpl final : public Database {
  public:
    DatabaseImpl(StoreImpl& store, std::string name, rocksdb::ColumnFamilyHandle* docs,
                 rocksdb::ColumnFamilyHandle* blobs, Durability durability, RecordId next_id,
                 std::uint64_t count)
        : store_(store),
          name_(std::move(name)),
          docs_(docs),
          blobs_(blobs),
          durability_(durability),
          next_id_(next_id),
          count_(count) {}

    const std::string& name() const override { return name_; }
    Durability durability() const override { return durability_; }

    Result<RecordId> insert(const Map& document) override {
        auto ids = insert_batch({document});
        if (!ids) return ids.error();
        return ids->front();
    }
    Result<std::vector<RecordId>> insert_batch(const std::vector<Map>& documents) override;
    Result<Map> get(RecordId id) const override;
    Result<void> replace(RecordId id, const Map& document) override;
    Result<void> patch(RecordId id, const Map& fields) override;
    Result<void> remove(RecordId id) override;
    Result<bool> exists(RecordId id) const override;
    std::uint64_t count() const override {
        std::lock_guard lock(write_mu_);
        return count_;
    }
    Result<void> scan(const std::function<bool(RecordId, const Map&)>& visit,
                      ScanOptions options) const override;
    Result<void> put_attachment(RecordId id, std::string_view name,
                                std::span<const std::uint8_t> data) override;
    Result<Bytes> get_attachment(RecordId id, std::string_view name) const override;
    Result<void> remove_attachment(RecordId id, std::string_view name) override;
    Result<std::vector<std::string>> attachments(RecordId id) const override;
    DatabaseStats stats() const override;

    void mark_dropped() {
        std::lock_guard lock(write_mu_);
        dropped_ = true;
    }
    rocksdb::ColumnFamilyHandle* docs() const { return docs_; }
    rocksdb::ColumnFamilyHandle* blobs() const { return blobs_; }

  private:
    rocksdb::WriteOptions write_options() const {
        rocksdb::WriteOptions w;
        w.sync = durability_ == Durability::sync;
        w.disableWAL = durability_ == Durability::fast;
        return w;
    }
    Result<void> check_alive() const {
        if (dropped_) return Error{Errc::not_found, "database '" + name_ + "' was dropped"};
        return {};
    }
    void put_meta(rocksdb::WriteBatch& batch) const;
    // Ok if the record exists; not_found (or the storage error) otherwise.
    Result<void> require(RecordId id) const {
        auto present = exists(id);
        if (!present) return present.error();
        if (!*present)
            return Error{Errc::not_found,
                         "no record " + std::to_string(id) + " in '" + name_ + "'"};
        return {};
    }
    rocksdb::DB& db() const;

    StoreImpl& store_;
    const std::string name_;
    rocksdb::ColumnFamilyHandle* docs_;
    rocksdb::ColumnFamilyHandle* blobs_;
    const Durability durability_;
    // Writes that change the id counter or the count are serialised so that the meta entries
    // written with them are exact; RocksDB serialises its writes anyway.
    mutable std::mutex write_mu_;
    RecordId next_id_;
    std::uint64_t count_;
    bool dropped_ = false;
};

class StoreImpl final : public Store {
  public:
    ~StoreImpl() override {
        std::unique_lock lock(mu_);
        for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
        handles_.clear();
        db_.reset();
    }

    Result<void> open(const StoreOptions& options);
    Result<std::shared_ptr<Database>> create(const std::string& name,
                                             DatabaseOptions options) override;
    Result<std::shared_ptr<Database>> database(std::string_view name) const override;
    std::vector<std::string> list() const override;
    Result<void> drop(std::string_view name) override;
    Result<void> compact(std::string_view name) override;
    Result<void> checkpoint(const std::string& directory) override;

    rocksdb::DB& db() const { return *db_; }
    rocksdb::ColumnFamilyHandle* meta() const { return meta_; }

  private:
    rocksdb::ColumnFamilyOptions docs_options() const {
        rocksdb::ColumnFamilyOptions o;
        rocksdb::BlockBasedTableOptions t;
        t.block_cache = cache_;
        o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
        return o;
    }
    rocksdb::ColumnFamilyOptions blob_options() const {
        auto o = docs_options();
        o.enable_blob_files = true;
        o.min_blob_size = 0;
        o.enable_blob_garbage_collection = true;
        return o;
    }
    Result<std::shared_ptr<DatabaseImpl>> load(const std::string& name,
                                               rocksdb::ColumnFamilyHandle* docs,
                                               rocksdb::ColumnFamilyHandle* blobs);

    mutable std::shared_mutex mu_;
    std::shared_ptr<rocksdb::Cache> cache_;
    std::unique_ptr<rocksdb::DB> db_;
    rocksdb::ColumnFamilyHandle* meta_ = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles_;
    std::map<std::string, std::shared_ptr<DatabaseImpl>, std::less<>> databases_;
};

rocksdb::DB& DatabaseImpl::db() const {
    return store_.db();
}

void DatabaseImpl::put_meta(rocksdb::WriteBatch& batch) const {
    batch.Put(store_.meta(), name_ + "/next_id", encode_u64(next_id_));
    batch.Put(store_.meta(), name_ + "/count", encode_u64(count_));
}

Result<std::vector<RecordId>> DatabaseImpl::insert_batch(const std::vector<Map>& documents) {
    std::lock_guard lock(write_mu_);
    if (auto a = check_alive(); !a) return a.error();
    if (documents.empty()) return std::vector<RecordId>{};
    rocksdb::WriteBatch batch;
    std::vector<RecordId> ids;
    ids.reserve(documents.size());
    RecordId next = next_id_;
    for (const auto& d : documents) {
        batch.Put(docs_, id_key(next), encode_document(d));
        ids.push_back(next++);
    }
    auto saved_next = next_id_;
    auto saved_count = count_;
    next_id_ = next;
    count_ += documents.size();
    put_meta(batch);
    auto s = db().Write(write_options(), &batch);
    if (!s.ok()) {
        next_id_ = saved_next, count_ = saved_count;
        return storage(s);
    }
    return ids;
}

Result<Map> DatabaseImpl::get(RecordId id) const {
    if (auto a = check_alive(); !a) return a.error();
    rocksdb::PinnableSlice value;
    auto s = db().Get(rocksdb::ReadOptions(), docs_, id_key(id), &value);
    if (s.IsNotFound())
        return Error{Errc::not_found, "no record " + std::to_string(id) + " in '" + name_ + "'"};
    if (!s.ok()) return storage(s);
    return decode_document(value);
}

Result<bool> DatabaseImpl::exists(RecordId id) const {
    if (auto a = check_alive(); !a) return a.error();
    rocksdb::PinnableSlice value;
    auto s = db().Get(rocksdb::ReadOptions(), docs_, id_key(id), &value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return storage(s);
    return true;
}

Result<void> DatabaseImpl::replace(RecordId id, const Map& document) {
    std::lock_guard lock(write_mu_);
    if (auto r = require(id); !r) return r;
    auto s = db().Put(write_options(), docs_, id_key(id), encode_document(document));
    if (!s.ok()) return storage(s);
    return {};
}

Result<void> DatabaseImpl::patch(RecordId id, const Map& fields) {
    std::lock_guard lock(write_mu_);
    if (auto a = check_alive(); !a) return a.error();
    auto current = get(id);
    if (!current) return current.error();
    for (const auto& [key, value] : fields) {
        if (value.is<std::nullptr_t>())
            current->erase(key);
        else
            current->insert_or_assign(key, value);
    }
    auto s = db().Put(write_options(), docs_, id_key(id), encode_document(*current));
    if (!s.ok()) return storage(s);
    return {};
}

Result<void> DatabaseImpl::remove(RecordId id) {
    std::lock_guard lock(write_mu_);
    if (auto r = require(id); !r) return r;
    rocksdb::WriteBatch batch;
    batch.Delete(docs_, id_key(id));
    batch.DeleteRange(blobs_, id_key(id), id_key(id + 1));
    --count_;
    put_meta(batch);
    auto s = db().Write(write_options(), &batch);
    if (!s.ok()) {
        ++count_;
        return storage(s);
    }
    return {};
}

Result<void> DatabaseImpl::scan(const std::function<bool(RecordId, const Map&)>& visit,
                                ScanOptions options) const {
    if (auto a = check_alive(); !a) return a.error();
    std::unique_ptr<rocksdb::Iterator> it(db().NewIterator(rocksdb::ReadOptions(), docs_));
    if (!options.reverse) {
        if (options.from)
            it->Seek(id_key(options.from));
        else
            it->SeekToFirst();
    } else {
        if (options.from)
            it->SeekForPrev(id_key(options.from));
        else
            it->SeekToLast();
    }
    for (; it->Valid(); options.reverse ? it->Prev() : it->Next()) {
        RecordId id = key_id(it->key());
        if (options.to && (options.reverse ? id <= options.to : id >= options.to)) break;
        auto doc = decode_document(it->value());
        if (!doc)
            return Error{Errc::storage_error,
                         "record " + std::to_string(id) + " is corrupt: " + doc.error().message};
        if (!visit(id, *doc)) break;
    }
    if (!it->status().ok()) return storage(it->status());
    return {};
}

Result<void> DatabaseImpl::put_attachment(RecordId id, std::string_view name,
                                          std::span<const std::uint8_t> data) {
    if (!valid_attachment_name(name))
        return Error{Errc::invalid_argument, "attachment names are 1-255 bytes"};
    std::lock_guard lock(write_mu_);
    if (auto r = require(id); !r) return r;
    auto s = db().Put(write_options(), blobs_, id_key(id) + std::string(name),
                      rocksdb::Slice(reinterpret_cast<const char*>(data.data()), data.size()));
    if (!s.ok()) return storage(s);
    return {};
}

Result<Bytes> DatabaseImpl::get_attachment(RecordId id, std::string_view name) const {
    if (auto a = check_alive(); !a) return a.error();
    rocksdb::PinnableSlice value;
    auto s = db().Get(rocksdb::ReadOptions(), blobs_, id_key(id) + std::string(name), &value);
    if (s.IsNotFound())
        return Error{Errc::not_found,
                     "no attachment '" + std::string(name) + "' on record " + std::to_string(id)};
    if (!s.ok()) return storage(s);
    auto p = reinterpret_cast<const std::uint8_t*>(value.data());
    return Bytes(p, p + value.size());
}

Result<void> DatabaseImpl::remove_attachment(RecordId id, std::string_view name) {
    if (auto a = check_alive(); !a) return a.error();
    auto s = db().Delete(write_options(), blobs_, id_key(id) + std::string(name));
    if (!s.ok()) return storage(s);
    return {};
}

Result<std::vector<std::string>> DatabaseImpl::attachments(RecordId id) const {
    if (auto a = check_alive(); !a) return a.error();
    std::vector<std::string> names;
    auto prefix = id_key(id);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db().NewIterator(ro, blobs_));
    // Keys only: the values (blobs) are not read.
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
        names.emplace_back(it->key().data() + 8, it->key().size() - 8);
    if (!it->status().ok()) return storage(it->status());
    return names;
}

DatabaseStats DatabaseImpl::stats() const {
    DatabaseStats s;
    {
        std::lock_guard lock(write_mu_);
        s.records = count_;
        s.next_id = next_id_;
    }
    db().GetIntProperty(docs_, "rocksdb.estimate-live-data-size", &s.document_bytes);
    std::uint64_t blob_bytes = 0;
    if (db().GetIntProperty(blobs_, "rocksdb.total-blob-file-size", &blob_bytes))
        s.blob_bytes = blob_bytes;
    return s;
}

// --- store ---

Result<void> StoreImpl::open(const StoreOptions& options) {
    if (options.path.empty()) return Error{Errc::invalid_argument, "store path is empty"};
    cache_ = rocksdb::NewLRUCache(options.block_cache_bytes);
    rocksdb::DBOptions dbo;
    dbo.create_if_missing = true;
    dbo.create_missing_column_families = true;
    dbo.max_open_files = options.max_open_files;
    std::vector<std::string> names;
    auto s = rocksdb::DB::ListColumnFamilies(dbo, options.path, &names);
    if (!s.ok()) names = {rocksdb::kDefaultColumnFamilyName};  // a new store
    if (std::find(names.begin(), names.end(), meta_cf) == names.end()) names.push_back(meta_cf);
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) {
        descriptors.emplace_back(n, is_blob_family(n) ? blob_options() : docs_options());
    }
    rocksdb::DB* raw = nullptr;
    s = rocksdb::DB::Open(dbo, options.path, descriptors, &handles_, &raw);
    if (!s.ok()) return storage(s);
    db_.reset(raw);
    std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
    for (auto* h : handles_) by_name[h->GetName()] = h;
    meta_ = by_name.at(meta_cf);
    for (const auto& [n, h] : by_name) {
        if (n == meta_cf || n == rocksdb::kDefaultColumnFamilyName || is_blob_family(n)) continue;
        auto blobs = by_name.find(n + blob_suffix);
        if (blobs == by_name.end())
            return Error{Errc::storage_error,
                         "database '" + n + "' has no attachment column family"};
        auto d = load(n, h, blobs->second);
        if (!d) return d.error();
        databases_.emplace(n, *d);
    }
    return {};
}

Result<std::shared_ptr<DatabaseImpl>> StoreImpl::load(const std::string& name,
                                                      rocksdb::ColumnFamilyHandle* docs,
                                                      rocksdb::ColumnFamilyHandle* blobs) {
    auto read = [&](const std::string& key, std::uint64_t fallback) -> Result<std::uint64_t> {
        std::string v;
        auto s = db_->Get(rocksdb::ReadOptions(), meta_, name + "/" + key, &v);
        if (s.IsNotFound()) return fallback;
        if (!s.ok()) return storage(s);
        return decode_u64(v);
    };
    auto next = read("next_id", 1), count = read("count", 0), durability = read("durability", 1);
    if (!next) return next.error();
    if (!count) return count.error();
    if (!durability) return durability.error();
    return std::make_shared<DatabaseImpl>(*this, name, docs, blobs, Durability(*durability), *next,
                                          *count);
}

Result<std::shared_ptr<Database>> StoreImpl::create(const std::string& name,
                                                    DatabaseOptions options) {
    if (!valid_name(name))
        return Error{Errc::invalid_argument,
                     "database names are 1-64 of A-Z a-z 0-9 _ . -, not starting with __"};
    std::unique_lock lock(mu_);
    if (databases_.count(name))
        return Error{Errc::invalid_argument, "database '" + name + "' exists"};
    rocksdb::ColumnFamilyHandle *docs = nullptr, *blobs = nullptr;
    auto s = db_->CreateColumnFamily(docs_options(), name, &docs);
    if (!s.ok()) return storage(s);
    s = db_->CreateColumnFamily(blob_options(), name + blob_suffix, &blobs);
    if (!s.ok()) {
        db_->DropColumnFamily(docs);
        db_->DestroyColumnFamilyHandle(docs);
        return storage(s);
    }
    rocksdb::WriteOptions w;
    w.sync = true;
    s = db_->Put(w, meta_, name + "/durability",
                 encode_u64(static_cast<std::uint64_t>(options.durability)));
    if (!s.ok()) return storage(s);
    handles_.push_back(docs);
    handles_.push_back(blobs);
    auto d = std::make_shared<DatabaseImpl>(*this, name, docs, blobs, options.durability, 1, 0);
    databases_.emplace(name, d);
    return std::shared_ptr<Database>(d);
}

Result<std::shared_ptr<Database>> StoreImpl::database(std::string_view name) const {
    std::shared_lock lock(mu_);
    auto it = databases_.find(name);
    if (it == databases_.end())
        return Error{Errc::not_found, "no database '" + std::string(name) + "'"};
    return std::shared_ptr<Database>(it->second);
}

std::vector<std::string> StoreImpl::list() const {
    std::shared_lock lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, d] : databases_) out.push_back(n);
    return out;
}

Result<void> StoreImpl::drop(std::string_view name) {
    std::unique_lock lock(mu_);
    auto it = databases_.find(name);
    if (it == databases_.end())
        return Error{Errc::not_found, "no database '" + std::string(name) + "'"};
    auto d = it->second;
    d->mark_dropped();
    for (auto* h : {d->docs(), d->blobs()}) {
        auto s = db_->DropColumnFamily(h);
        if (!s.ok()) return storage(s);
    }
    rocksdb::WriteBatch batch;
    for (auto key : {"/next_id", "/count", "/durability"})
        batch.Delete(meta_, std::string(name) + key);
    auto s = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!s.ok()) return storage(s);
    databases_.erase(it);
    // The handles stay valid (RocksDB keeps dropped families alive until destroyed); they are
    // destroyed with the store, so a late reader through an old handle fails cleanly.
    return {};
}

Result<void> StoreImpl::compact(std::string_view name) {
    auto d = database(name);
    if (!d) return d.error();
    auto& impl = static_cast<DatabaseImpl&>(**d);
    for (auto* h : {impl.docs(), impl.blobs()}) {
        auto s = db_->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr);
        if (!s.ok()) return storage(s);
    }
    return {};
}

Result<void> StoreImpl::checkpoint(const std::string& directory) {
    rocksdb::Checkpoint* raw = nullptr;
    auto s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    if (!s.ok()) return storage(s);
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    s = cp->CreateCheckpoint(directory);
    if (!s.ok()) return storage(s);
    return {};
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
    auto store = std::make_unique<StoreImpl>();
    if (auto r = store->open(options); !r) return r.error();
    return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hawser::zdb
