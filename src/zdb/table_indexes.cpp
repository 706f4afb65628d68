// Table (see table.hpp): its indexes, built from the records present and kept with each write.
#include <algorithm>
#include <memory>

#include "zdb/index_key.hpp"
#include "zdb/keys.hpp"
#include "zdb/table.hpp"

namespace hawser::zdb {

namespace {

constexpr std::size_t max_indexes = 64;
constexpr std::size_t build_batch = 10000;  // index entries per write while building

}  // namespace

Result<void> Table::create_index(const std::string& path) {
    if (path.empty() || path.front() == '.' || path.back() == '.' ||
        path.find("..") != std::string::npos || path.size() > max_field_path_bytes ||
        std::size_t(std::count(path.begin(), path.end(), '.')) >= max_document_depth)
        return Error{Errc::invalid_argument,
                     "index field '" + path.substr(0, 80) + "' is not a field path (at most " +
                         std::to_string(max_document_depth) + " steps and " +
                         std::to_string(max_field_path_bytes) + " bytes)"};
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    if (state_.indexes.count(path))
        return Error{Errc::invalid_argument, "an index on '" + path + "' exists"};
    if (state_.indexes.size() >= max_indexes)
        return Error{Errc::limit_exceeded,
                     "a database has at most " + std::to_string(max_indexes) + " indexes"};
    // The lowest number no live index has (build_index clears what a dropped one left under
    // it): past the highest + 1, create and drop cycles would run out of 16 bits, and wrap onto
    // a live index's entries.
    std::uint16_t number = 1;
    while (std::any_of(index_defs_.begin(), index_defs_.end(),
                       [&](const IndexDef& d) { return d.number == number; }))
        ++number;  // at most max_indexes steps
    IndexDef def{number, split_path(path)};
    if (auto r = build_index(def); !r) return r;
    // Without a WAL the entries live in the memtable only: flush them before the definition.
    if (durability_ == Durability::fast) {
        auto s = db_.Flush(rocksdb::FlushOptions(), families_.index);
        if (!s.ok()) return storage_error(s);
    }
    // The definition lands last: until then no query uses the index.
    rocksdb::WriteBatch batch;
    batch.Put(meta_, table_meta_prefix(number_) + "index/" + path, encode_u64(number));
    if (auto r = write_definition(batch); !r) return r;
    state_.indexes.emplace(path, number);
    index_defs_.push_back(std::move(def));
    return {};
}

Result<void> Table::build_index(const IndexDef& def) {
    auto prefix = index_prefix(def.number);
    // Entries left under this number (by a crashed build, or stale ones) go first.
    rocksdb::WriteBatch batch;
    batch.DeleteRange(families_.index, prefix, prefix_end(prefix));
    std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(rocksdb::ReadOptions(), families_.docs));
    std::size_t pending = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        RecordView record(it->value().ToStringView());
        auto field = record.find(def.path);
        auto value = field ? index_value_key(*field) : std::nullopt;
        if (value) {
            batch.Put(families_.index, prefix + *value + it->key().ToString(), rocksdb::Slice());
            ++pending;
        }
        if (pending >= build_batch) {
            if (auto r = write(batch); !r) return r;
            batch.Clear();
            pending = 0;
        }
    }
    if (!it->status().ok()) return storage_error(it->status());
    return write(batch);
}

Result<void> Table::drop_index(std::string_view path) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    auto it = state_.indexes.find(path);
    if (it == state_.indexes.end())
        return Error{Errc::not_found, "no index on '" + std::string(path) + "'"};
    auto prefix = index_prefix(it->second);
    rocksdb::WriteBatch batch;
    batch.Delete(meta_, table_meta_prefix(number_) + "index/" + std::string(path));
    batch.DeleteRange(families_.index, prefix, prefix_end(prefix));
    if (auto r = write_definition(batch); !r) return r;
    std::erase_if(index_defs_, [&](const IndexDef& d) { return d.number == it->second; });
    state_.indexes.erase(it);
    return {};
}

Result<void> Table::index_ids(std::uint16_t index, const std::string& from, const std::string& to,
                              const rocksdb::Snapshot* snapshot,
                              const std::function<bool(RecordId)>& visit) const {
    auto prefix = index_prefix(index);
    auto lower = prefix + from;
    auto upper = to.empty() ? prefix_end(prefix) : prefix + to;
    rocksdb::Slice upper_slice(upper);
    auto ro = reading(snapshot);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(ro, families_.index));
    for (it->Seek(lower); it->Valid(); it->Next()) {
        auto key = it->key().ToStringView();
        if (key.size() < prefix.size() + 8) continue;
        if (!visit(decode_u64(key.substr(key.size() - 8)))) break;
    }
    if (!it->status().ok()) return storage_error(it->status());
    return {};
}

}  // namespace hawser::zdb
