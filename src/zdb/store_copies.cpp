// ZDB's store (store_impl.hpp): copying a database under a new name while it is used,
// replacing one with another in one meta write, and checkpoints of the whole store.
#include <rocksdb/utilities/checkpoint.h>

#include "zdb/store_impl.hpp"

namespace hawser::zdb {

namespace {

constexpr std::size_t copy_batch_bytes = 4u << 20;

}  // namespace

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
    // Ids the target gave out stay given out: its new contents count on from the higher of
    // the two counters (a query's output starts from its source's counter, taken earlier). The
    // target takes no write once its counter is read.
    (*old_table)->mark_dropped();
    if (auto r = (*new_table)->reserve_ids((*old_table)->state().next_id); !r) {
        (*old_table)->mark_dropped(false);
        return r;
    }
    rocksdb::WriteBatch batch;
    batch.Put(meta_, "name/" + std::string(target), encode_u64((*new_table)->number()));
    batch.Delete(meta_, "name/" + std::string(source));
    if (auto r = unname(**old_table, batch); !r) return r;
    (*t)->bind(*new_table);
    (*s)->unbind();
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

}  // namespace hawser::zdb
