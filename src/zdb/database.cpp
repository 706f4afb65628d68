#include "zdb/database_impl.hpp"

namespace hawser::zdb {

Result<std::shared_ptr<Table>> DatabaseImpl::table() const {
    std::lock_guard lock(mu_);
    if (!table_) return Error{Errc::not_found, "database '" + name_ + "' was dropped"};
    return table_;
}

void DatabaseImpl::bind(std::shared_ptr<Table> table) {
    std::lock_guard lock(mu_);
    durability_ = table->durability();
    table_ = std::move(table);
}

void DatabaseImpl::unbind() {
    std::lock_guard lock(mu_);
    table_.reset();
}

Durability DatabaseImpl::durability() const {
    std::lock_guard lock(mu_);
    return durability_;
}

template <class Op>
auto DatabaseImpl::with_table(Op&& op) const -> decltype(op(std::declval<Table&>())) {
    auto table = this->table();
    if (!table) return table.error();
    auto result = op(**table);
    if (!result && result.error().code == Errc::not_found &&
        result.error().message.rfind("no record", 0) == 0)
        return Error{Errc::not_found, result.error().message + " in '" + name_ + "'"};
    return result;
}

Result<RecordId> DatabaseImpl::insert(const Map& document) {
    auto ids = insert_batch({document});
    if (!ids) return ids.error();
    return ids->front();
}

Result<RecordId> DatabaseImpl::insert_unique(const Map& document, const std::string& field) {
    return with_table([&](Table& t) { return t.insert_unique(document, field); });
}

Result<std::vector<RecordId>> DatabaseImpl::insert_batch(const std::vector<Map>& documents) {
    return with_table([&](Table& t) { return t.insert(documents); });
}

Result<Map> DatabaseImpl::get(RecordId id) const {
    return with_table([&](Table& t) -> Result<Map> {
        auto bytes = t.get_encoded(id);
        if (!bytes) return bytes.error();
        if (!*bytes) return Error{Errc::not_found, "no record " + std::to_string(id)};
        return decode_document(**bytes);
    });
}

Result<bool> DatabaseImpl::exists(RecordId id) const {
    return with_table([&](Table& t) -> Result<bool> {
        auto bytes = t.get_encoded(id);
        if (!bytes) return bytes.error();
        return bytes->has_value();
    });
}

Result<void> DatabaseImpl::replace(RecordId id, const Map& document) {
    return with_table([&](Table& t) { return t.replace(id, document); });
}

Result<void> DatabaseImpl::patch(RecordId id, const Map& fields) {
    return with_table([&](Table& t) { return t.patch(id, fields); });
}

Result<void> DatabaseImpl::remove(RecordId id) {
    return with_table([&](Table& t) { return t.remove(id); });
}

std::uint64_t DatabaseImpl::count() const {
    auto t = table();
    return t ? (*t)->count() : 0;
}

Result<void> DatabaseImpl::scan(const std::function<bool(RecordId, const Map&)>& visit,
                                ScanOptions options) const {
    return with_table([&](Table& t) -> Result<void> {
        Error corrupt;
        auto r = t.scan_encoded(options, [&](RecordId id, std::string_view bytes) {
            auto doc = decode_document(bytes);
            if (!doc) {
                corrupt = Error{Errc::storage_error, "record " + std::to_string(id) +
                                                         " is corrupt: " + doc.error().message};
                return false;
            }
            return visit(id, *doc);
        });
        if (!corrupt.message.empty()) return corrupt;
        return r;
    });
}

Result<void> DatabaseImpl::put_attachment(RecordId id, std::string_view name,
                                          std::span<const std::uint8_t> data) {
    if (name.empty() || name.size() > 255)
        return Error{Errc::invalid_argument, "attachment names are 1-255 bytes"};
    return with_table([&](Table& t) { return t.put_attachment(id, name, data); });
}

Result<Bytes> DatabaseImpl::get_attachment(RecordId id, std::string_view name) const {
    return with_table([&](Table& t) -> Result<Bytes> {
        auto data = t.get_attachment(id, name);
        if (!data) return data.error();
        if (!*data)
            return Error{Errc::not_found, "no attachment '" + std::string(name) + "' on record " +
                                              std::to_string(id)};
        return std::move(**data);
    });
}

Result<void> DatabaseImpl::remove_attachment(RecordId id, std::string_view name) {
    return with_table([&](Table& t) { return t.remove_attachment(id, name); });
}

Result<std::vector<std::string>> DatabaseImpl::attachments(RecordId id) const {
    return with_table([&](Table& t) { return t.attachments(id); });
}

Result<void> DatabaseImpl::create_index(const std::string& field) {
    return with_table([&](Table& t) { return t.create_index(field); });
}

Result<void> DatabaseImpl::drop_index(std::string_view field) {
    return with_table([&](Table& t) { return t.drop_index(field); });
}

DatabaseStats DatabaseImpl::stats() const {
    DatabaseStats s;
    auto table = this->table();
    if (!table) return s;
    auto& t = **table;
    auto state = t.state();
    s.records = state.count;
    s.next_id = state.next_id;
    for (const auto& [path, n] : state.indexes) s.indexes.push_back(path);
    const auto& f = t.families();
    t.db().GetIntProperty(f.docs, "rocksdb.estimate-live-data-size", &s.document_bytes);
    t.db().GetIntProperty(f.index, "rocksdb.estimate-live-data-size", &s.index_bytes);
    t.db().GetIntProperty(f.blobs, "rocksdb.total-blob-file-size", &s.blob_bytes);
    return s;
}

}  // namespace hawser::zdb
