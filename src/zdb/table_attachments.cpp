// Table (see table.hpp): its attachments, blobs kept beside a record under its id.
#include "zdb/keys.hpp"
#include "zdb/table.hpp"

namespace hawser::zdb {

Result<void> Table::put_attachment(RecordId id, std::string_view name,
                                   std::span<const std::uint8_t> data) {
    std::lock_guard lock(write_mu_);  // the record cannot go away between the check and the put
    if (auto w = writable(); !w) return w.error();
    auto present = get_encoded(id);
    if (!present) return present.error();
    if (!*present) return no_record(id);
    rocksdb::WriteBatch batch;
    // RocksDB takes values below 4 GiB; past that Put fails and leaves the batch empty.
    auto put = batch.Put(families_.blobs, encode_u64(id) + std::string(name),
                         rocksdb::Slice(reinterpret_cast<const char*>(data.data()), data.size()));
    if (!put.ok())
        return Error{Errc::limit_exceeded,
                     "an attachment is at most 4 GiB - 1 byte: " + put.ToString()};
    return write(batch);
}

Result<std::optional<Bytes>> Table::get_attachment(RecordId id, std::string_view name) const {
    rocksdb::PinnableSlice value;
    auto s = db_.Get(rocksdb::ReadOptions(), families_.blobs, encode_u64(id) + std::string(name),
                     &value);
    if (s.IsNotFound()) return std::optional<Bytes>{};
    if (!s.ok()) return storage_error(s);
    auto p = reinterpret_cast<const std::uint8_t*>(value.data());
    return std::optional<Bytes>(Bytes(p, p + value.size()));
}

Result<void> Table::remove_attachment(RecordId id, std::string_view name) {
    std::lock_guard lock(write_mu_);
    if (auto w = writable(); !w) return w.error();
    rocksdb::WriteBatch batch;
    batch.Delete(families_.blobs, encode_u64(id) + std::string(name));
    return write(batch);
}

// Attachments flushed ahead of a record a crash lost belong to no record: they go, or the next
// record given that id would come with them.
Result<void> Table::delete_orphan_attachments(rocksdb::WriteBatch& batch) {
    std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(rocksdb::ReadOptions(), families_.blobs));
    for (it->SeekToFirst(); it->Valid();) {
        auto key = it->key().ToStringView();
        if (key.size() < 8) {  // not an attachment's key: nothing of ours
            it->Next();
            continue;
        }
        RecordId id = decode_u64(key.substr(0, 8));
        std::string value;
        auto found = db_.Get(rocksdb::ReadOptions(), families_.docs, encode_u64(id), &value);
        if (found.IsNotFound())
            batch.DeleteRange(families_.blobs, encode_u64(id), encode_u64(id + 1));
        else if (!found.ok())
            return storage_error(found);
        if (id == ~RecordId(0)) break;
        it->Seek(encode_u64(id + 1));  // this record's other attachments are decided
    }
    if (!it->status().ok()) return storage_error(it->status());
    return {};
}

Result<std::vector<std::string>> Table::attachments(RecordId id) const {
    std::vector<std::string> names;
    auto prefix = encode_u64(id);
    std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(rocksdb::ReadOptions(), families_.blobs));
    // Keys only: the values (blobs) are not read.
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
        names.emplace_back(it->key().data() + 8, it->key().size() - 8);
    if (!it->status().ok()) return storage_error(it->status());
    return names;
}

}  // namespace hawser::zdb
