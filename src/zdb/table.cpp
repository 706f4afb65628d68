#include "zdb/table.hpp"

#include <algorithm>
#include <memory>

#include "zdb/index_key.hpp"
#include "zdb/keys.hpp"

namespace hawser::zdb {

rocksdb::ReadOptions reading(const rocksdb::Snapshot* snapshot) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    return ro;
}

namespace {

// Whether `v` holds more than `levels` levels of maps and arrays; looks no deeper than that.
bool deeper_than(const Value& v, std::size_t levels) {
    if (const auto* a = std::get_if<Array>(&v.v))
        return levels == 0 || std::any_of(a->begin(), a->end(), [&](const Value& e) {
                   return deeper_than(e, levels - 1);
               });
    if (const auto* m = std::get_if<Map>(&v.v))
        return levels == 0 || std::any_of(m->begin(), m->end(), [&](const auto& field) {
                   return deeper_than(field.second, levels - 1);
               });
    return false;
}

Error too_deep() {
    return Error{Errc::limit_exceeded, "the document nests deeper than " +
                                           std::to_string(max_document_depth) +
                                           " levels of maps and arrays (max_document_depth)"};
}

}  // namespace

Error Table::no_record(RecordId id) {
    return Error{Errc::not_found, "no record " + std::to_string(id)};
}

void FamilyHandles::add(rocksdb::ColumnFamilyHandle* handle) {
    std::lock_guard lock(mu_);
    open_.insert(handle);
}

void FamilyHandles::release(const TableFamilies& families) {
    std::lock_guard lock(mu_);
    if (!db_) return;
    for (auto* h : {families.docs, families.blobs, families.index})
        if (h && open_.erase(h)) db_->DestroyColumnFamilyHandle(h);
}

void FamilyHandles::close() {
    std::lock_guard lock(mu_);
    if (!db_) return;
    for (auto* h : open_) db_->DestroyColumnFamilyHandle(h);
    open_.clear();
    db_ = nullptr;
}

rocksdb::BlockBasedTableOptions table_options(std::shared_ptr<rocksdb::Cache> cache) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = std::move(cache);
    t.block_size = 16 * 1024;
    return t;
}

Error storage_error(const rocksdb::Status& s) {
    return Error{Errc::storage_error, s.ToString()};
}

std::string encode_document(const Map& document) {
    DataFrame df;
    df << document;
    return std::move(df).take_bytes();
}

Result<Map> decode_document(std::string_view bytes) {
    Field f;
    if (read_field(bytes, f) != bytes.size() || f.kind != Field::Kind::map)
        return Error{Errc::bad_payload, "not a MessagePack map"};
    auto v = f.decode();
    if (!v) return v.error();
    return std::get<Map>(std::move(v->v));
}

Result<void> check_document(const Map& document) {
    for (const auto& [key, value] : document)
        if (deeper_than(value, max_document_depth - 1)) return too_deep();
    return {};
}

Result<void> check_document(std::string_view encoded) {
    switch (check_record(encoded)) {
        case RecordCheck::ok:
            return {};
        case RecordCheck::too_deep:
            return too_deep();
        case RecordCheck::malformed:
            break;
    }
    return Error{Errc::bad_payload, "a document is not a well-formed MessagePack map"};
}

std::string table_meta_prefix(std::uint64_t number) {
    return "table/" + std::to_string(number) + "/";
}

Table::Table(rocksdb::DB& db, std::shared_ptr<FamilyHandles> handles,
             rocksdb::ColumnFamilyHandle* meta, std::uint64_t number, TableFamilies families,
             Durability durability, TableState state)
    : db_(db),
      handles_(std::move(handles)),
      meta_(meta),
      number_(number),
      families_(families),
      durability_(durability),
      state_(std::move(state)) {
    for (const auto& [path, n] : state_.indexes) index_defs_.push_back({n, split_path(path)});
}

Table::~Table() {
    if (dropped_) handles_->release(families_);  // the last user is gone: RocksDB may delete
}

TableState Table::state() const {
    std::lock_guard lock(write_mu_);
    return state_;
}

std::uint64_t Table::count() const {
    std::lock_guard lock(write_mu_);
    return state_.count;
}

std::pair<const rocksdb::Snapshot*, TableState> Table::snapshot() const {
    std::lock_guard lock(write_mu_);  // no write lands between the two
    return {db_.GetSnapshot(), state_};
}

void Table::mark_dropped(bool dropped) {
    std::lock_guard lock(write_mu_);
    dropped_ = dropped;
}

Result<void> Table::writable() const {
    if (dropped_) return Error{Errc::not_found, "the database was dropped or replaced"};
    return {};
}

rocksdb::WriteOptions Table::write_options() const {
    rocksdb::WriteOptions w;
    w.sync = durability_ == Durability::sync;
    w.disableWAL = durability_ == Durability::fast;
    return w;
}

void Table::put_counters(rocksdb::WriteBatch& batch) const {
    auto prefix = table_meta_prefix(number_);
    batch.Put(meta_, prefix + "next_id", encode_u64(state_.next_id));
    batch.Put(meta_, prefix + "count", encode_u64(state_.count));
}

void Table::index_document(rocksdb::WriteBatch& batch, RecordId id, std::string_view document,
                           bool put) const {
    if (index_defs_.empty()) return;
    RecordView record(document);
    for (const auto& def : index_defs_) {
        auto field = record.find(def.path);
        if (!field) continue;
        auto value = index_value_key(*field);
        if (!value) continue;
        auto key = index_prefix(def.number) + *value + encode_u64(id);
        if (put)
            batch.Put(families_.index, key, rocksdb::Slice());
        else
            batch.Delete(families_.index, key);
    }
}

Result<void> Table::write(rocksdb::WriteBatch& batch) {
    auto s = db_.Write(write_options(), &batch);
    if (!s.ok()) return storage_error(s);
    return {};
}

Result<void> Table::write_definition(rocksdb::WriteBatch& batch) {
    rocksdb::WriteOptions w;
    w.sync = true;  // definitions survive whatever the durability
    auto s = db_.Write(w, &batch);
    if (!s.ok()) return storage_error(s);
    return {};
}

Result<std::vector<RecordId>> Table::insert(const std::vector<Map>& documents) {
    std::lock_guard lock(write_mu_);
    return insert_locked(documents);
}

Result<RecordId> Table::insert_unique(const Map& document, std::string_view field) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    auto index = state_.indexes.find(field);
    if (index == state_.indexes.end())
        return Error{Errc::invalid_argument,
                     "insert_unique needs an index on '" + std::string(field) + "'"};
    auto def = std::find_if(index_defs_.begin(), index_defs_.end(),
                            [&](const IndexDef& d) { return d.number == index->second; });
    if (auto checked = check_document(document); !checked) return checked.error();
    auto bytes = encode_document(document);
    RecordView record(bytes);
    auto value = def == index_defs_.end() ? std::nullopt : record.find(def->path);
    auto key = value ? index_value_key(*value) : std::nullopt;
    if (!key)
        return Error{Errc::invalid_argument,
                     "the document has no indexable value at '" + std::string(field) + "'"};
    // Value keys delimit themselves: every entry of this value, and no other, is in the range.
    bool taken = false;
    auto looked = index_ids(index->second, *key, prefix_end(*key), nullptr, [&](RecordId) {
        taken = true;
        return false;
    });
    if (!looked) return looked.error();
    if (taken)
        return Error{Errc::already_exists, "a record already holds that " + std::string(field)};
    auto ids = insert_locked({document});
    if (!ids) return ids.error();
    return ids->front();
}

// write_mu_ held.
Result<std::vector<RecordId>> Table::insert_locked(const std::vector<Map>& documents) {
    if (auto w = writable(); !w) return w.error();
    if (documents.empty()) return std::vector<RecordId>{};
    for (std::size_t i = 0; i < documents.size(); ++i) {
        auto checked = check_document(documents[i]);
        if (!checked && documents.size() > 1)
            return Error{checked.error().code, "document " + std::to_string(i + 1) + " of " +
                                                   std::to_string(documents.size()) + ": " +
                                                   checked.error().message};
        if (!checked) return checked.error();
    }
    auto saved = state_;
    rocksdb::WriteBatch batch;
    std::vector<RecordId> ids;
    ids.reserve(documents.size());
    for (const auto& d : documents) {
        auto id = state_.next_id++;
        auto bytes = encode_document(d);
        index_document(batch, id, bytes, true);
        batch.Put(families_.docs, encode_u64(id), bytes);
        ids.push_back(id);
    }
    state_.count += documents.size();
    put_counters(batch);
    if (auto r = write(batch); !r) {
        state_ = std::move(saved);
        return r.error();
    }
    return ids;
}

Result<void> Table::put_encoded(const std::vector<std::pair<RecordId, std::string>>& records) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    if (records.empty()) return {};
    // Everything is checked before the counters move: a refused batch leaves them as they were.
    for (const auto& [id, bytes] : records) {
        if (id == 0) return Error{Errc::invalid_argument, "record ids start at 1"};
        if (auto checked = check_document(bytes); !checked)
            return Error{checked.error().code,
                         "record " + std::to_string(id) + ": " + checked.error().message};
        auto present = get_encoded(id);
        if (!present) return present.error();
        if (*present)
            return Error{Errc::invalid_argument, "record " + std::to_string(id) + " exists"};
    }
    auto saved = state_;
    rocksdb::WriteBatch batch;
    for (const auto& [id, bytes] : records) {
        index_document(batch, id, bytes, true);
        batch.Put(families_.docs, encode_u64(id), bytes);
        state_.next_id = std::max(state_.next_id, id + 1);
    }
    state_.count += records.size();
    put_counters(batch);
    if (auto r = write(batch); !r) {
        state_ = std::move(saved);
        return r.error();
    }
    return {};
}

Result<void> Table::reserve_ids(RecordId next_id) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    if (next_id <= state_.next_id) return {};
    auto saved = state_.next_id;
    state_.next_id = next_id;
    rocksdb::WriteBatch batch;
    put_counters(batch);
    if (auto r = write(batch); !r) {
        state_.next_id = saved;
        return r.error();
    }
    return {};
}

Result<std::optional<std::string>> Table::get_encoded(RecordId id,
                                                      const rocksdb::Snapshot* snapshot) const {
    std::string value;
    auto s = db_.Get(reading(snapshot), families_.docs, encode_u64(id), &value);
    if (s.IsNotFound()) return std::optional<std::string>{};
    if (!s.ok()) return storage_error(s);
    return std::optional<std::string>(std::move(value));
}

Result<std::string> Table::current(RecordId id) const {
    auto bytes = get_encoded(id);
    if (!bytes) return bytes.error();
    if (!*bytes) return no_record(id);
    return std::move(**bytes);
}

Result<void> Table::rewrite(RecordId id, const std::string& old_document,
                            std::string new_document) {
    rocksdb::WriteBatch batch;
    index_document(batch, id, old_document, false);
    index_document(batch, id, new_document, true);
    batch.Put(families_.docs, encode_u64(id), new_document);
    return write(batch);
}

Result<void> Table::replace(RecordId id, const Map& document) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    if (auto checked = check_document(document); !checked) return checked;
    auto old = current(id);
    if (!old) return old.error();
    return rewrite(id, *old, encode_document(document));
}

Result<void> Table::patch(RecordId id, const Map& fields) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    auto old = current(id);
    if (!old) return old.error();
    auto document = decode_document(*old);
    if (!document) return document.error();
    for (const auto& [key, value] : fields) {
        if (value.is<std::nullptr_t>())
            document->erase(key);
        else
            document->insert_or_assign(key, value);
    }
    if (auto checked = check_document(*document); !checked) return checked;
    return rewrite(id, *old, encode_document(*document));
}

Result<void> Table::remove(RecordId id) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    auto old = current(id);
    if (!old) return old.error();
    rocksdb::WriteBatch batch;
    index_document(batch, id, *old, false);
    batch.Delete(families_.docs, encode_u64(id));
    batch.DeleteRange(families_.blobs, encode_u64(id), encode_u64(id + 1));
    --state_.count;
    put_counters(batch);
    if (auto r = write(batch); !r) {
        ++state_.count;
        return r;
    }
    return {};
}

Result<void> Table::scan_encoded(const ScanOptions& options,
                                 const std::function<bool(RecordId, std::string_view)>& visit,
                                 const rocksdb::Snapshot* snapshot) const {
    // The bound is checked on the decoded id, which costs less than iterate_upper_bound's
    // comparator call per step.
    auto ro = reading(snapshot);
    ro.fill_cache = scans_fill_cache();
    std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(ro, families_.docs));
    if (!options.reverse) {
        if (options.from)
            it->Seek(encode_u64(options.from));
        else
            it->SeekToFirst();
    } else {
        if (options.from)
            it->SeekForPrev(encode_u64(options.from));
        else
            it->SeekToLast();
    }
    for (; it->Valid(); options.reverse ? it->Prev() : it->Next()) {
        RecordId id = decode_u64(it->key().ToStringView());
        if (options.to && (options.reverse ? id <= options.to : id >= options.to)) break;
        if (!visit(id, it->value().ToStringView())) break;
    }
    if (!it->status().ok()) return storage_error(it->status());
    return {};
}

bool Table::scans_fill_cache() const {
    std::uint64_t documents = 0, capacity = 0;
    if (!db_.GetIntProperty(families_.docs, "rocksdb.estimate-live-data-size", &documents) ||
        !db_.GetIntProperty(families_.docs, "rocksdb.block-cache-capacity", &capacity))
        return true;
    return documents < capacity / 2;
}

Result<void> Table::repair() {
    std::lock_guard lock(write_mu_);
    std::uint64_t count = 0;
    RecordId last = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(rocksdb::ReadOptions(), families_.docs));
    for (it->SeekToFirst(); it->Valid(); it->Next())
        ++count, last = decode_u64(it->key().ToStringView());
    if (!it->status().ok()) return storage_error(it->status());
    it.reset();
    for (const auto& def : index_defs_)
        if (auto r = build_index(def); !r) return r;
    state_.count = count;
    state_.next_id = std::max(state_.next_id, last + 1);
    rocksdb::WriteBatch batch;
    if (auto r = delete_orphan_attachments(batch); !r) return r;
    put_counters(batch);
    if (auto r = write_definition(batch); !r) return r;
    // What was rebuilt is written without a WAL: flush it before the store calls it repaired.
    auto s = db_.Flush(rocksdb::FlushOptions(), {families_.docs, families_.index, families_.blobs});
    if (!s.ok()) return storage_error(s);
    return {};
}

}  // namespace hawser::zdb
