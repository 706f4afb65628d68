#include "cloud/user_data.hpp"

#include "cloud/accounts.hpp"
#include "hawser/zdb/declarative_filter.hpp"

namespace hawser::cloud::detail {

namespace {

Error not_here(zdb::RecordId id) {
    return Error{Errc::not_found, "no record " + std::to_string(id) + " here"};
}

}  // namespace

Result<std::unique_ptr<UserData>> UserData::open(zdb::Store& store, const std::string& name,
                                                 std::size_t max_records_per_user,
                                                 std::size_t max_document_bytes) {
    auto db = open_indexed(store, name, {owner_field, collection_field});
    if (!db) return db.error();
    return std::unique_ptr<UserData>(
        new UserData(store, std::move(*db), max_records_per_user, max_document_bytes));
}

Result<std::shared_ptr<zdb::Database>> UserData::database_of(const DataScope& scope) const {
    if (scope.collection()) return db_;
    return store_.database(scope.database);
}

Result<std::vector<zdb::RecordId>> UserData::ids_of(const std::string& owner) const {
    auto filter = zdb::compile_filter(Map{{std::string(owner_field), Value(owner)}});
    if (!filter) return filter.error();
    zdb::QueryOptions options;
    options.parallelism = 1;
    options.decode = false;
    std::vector<zdb::RecordId> ids;
    auto query = zdb::run_query(db_, *filter, options, [&](zdb::Fragment f) {
        for (std::size_t i = 0; i < f.encoded.size(); ++i) ids.push_back(f.encoded.id(i));
    });
    if (!query) return query.error();
    if (auto end = (*query)->wait(); !end) return end.error();
    return ids;
}

Result<zdb::RecordId> UserData::insert(const DataScope& scope, Map document,
                                       const std::function<Result<bool>()>& owner_exists) {
    auto db = database_of(scope);
    if (!db) return db.error();
    if (!scope.collection()) return (*db)->insert(document);
    for (const auto& [name, value] : scope.fixed) document.insert_or_assign(name, value);
    DataFrame sized;
    sized << document;
    if (sized.bytes().size() > max_document_bytes_)
        return Error{Errc::limit_exceeded,
                     "a record is at most " + std::to_string(max_document_bytes_) + " bytes"};
    std::lock_guard lock(lock_of(scope.owner));
    auto exists = owner_exists();
    if (!exists) return exists.error();
    if (!*exists) return Error{Errc::not_found, "no such user: '" + scope.owner + "'"};
    std::optional<std::size_t> held;
    {
        std::lock_guard counts(counts_mu_);
        if (auto it = counts_.find(scope.owner); it != counts_.end()) held = it->second;
    }
    // A count that says full is counted again: on a store shared by several nodes, another
    // node's removals do not reach this count.
    if (!held || *held >= max_records_) {
        auto ids = ids_of(scope.owner);
        if (!ids) return ids.error();
        held = ids->size();
    }
    if (*held >= max_records_)
        return Error{Errc::limit_exceeded,
                     "a user holds at most " + std::to_string(max_records_) + " records"};
    auto id = db_->insert(document);
    std::lock_guard counts(counts_mu_);
    if (counts_.size() >= max_counted) counts_.clear();
    counts_.insert_or_assign(scope.owner, *held + (id ? 1 : 0));
    return id;
}

Result<Map> UserData::get_in(const zdb::Database& db, const DataScope& scope,
                             zdb::RecordId id) const {
    auto record = db.get(id);
    if (!record && record.error().code == Errc::not_found) return not_here(id);
    if (!record) return record.error();
    if (!in_scope(scope, *record)) return not_here(id);
    return record;
}

Result<Map> UserData::get(const DataScope& scope, zdb::RecordId id) const {
    auto db = database_of(scope);
    if (!db) return db.error();
    return get_in(**db, scope, id);
}

Result<void> UserData::patch(const DataScope& scope, zdb::RecordId id, const Map& fields) {
    auto db = database_of(scope);
    if (!db) return db.error();
    if (!scope.collection()) {
        auto r = (*db)->patch(id, fields);
        if (!r && r.error().code == Errc::not_found) return not_here(id);
        return r;
    }
    // The owner and collection never change, so a record checked is the scope's until removed,
    // and its id is never given again. Under the owner's lock, the record as patched is checked
    // whole against max_document_bytes: patches one at a time cannot grow it past that.
    auto before = get_in(**db, scope, id);
    if (!before) return before.error();
    std::lock_guard lock(lock_of(field<std::string>(*before, owner_field).value_or("")));
    auto record = get_in(**db, scope, id);
    if (!record) return record.error();
    for (const auto& [name, value] : fields) {
        if (value.is<std::nullptr_t>())
            record->erase(name);
        else
            record->insert_or_assign(name, value);
    }
    DataFrame sized;
    sized << *record;
    if (sized.bytes().size() > max_document_bytes_)
        return Error{
            Errc::limit_exceeded,
            "a record is at most " + std::to_string(max_document_bytes_) + " bytes, patched"};
    auto r = (*db)->patch(id, fields);
    if (!r && r.error().code == Errc::not_found) return not_here(id);
    return r;
}

Result<void> UserData::remove(const DataScope& scope, zdb::RecordId id) {
    auto db = database_of(scope);
    if (!db) return db.error();
    if (!scope.collection()) return (*db)->remove(id);
    auto record = get_in(**db, scope, id);
    if (!record) return record.error();
    auto owner = field<std::string>(*record, owner_field).value_or("");
    std::lock_guard lock(lock_of(owner));
    auto r = db_->remove(id);
    if (!r && r.error().code == Errc::not_found) return not_here(id);  // removed meanwhile
    if (!r) return r;
    std::lock_guard counts(counts_mu_);
    if (auto it = counts_.find(owner); it != counts_.end() && it->second > 0) --it->second;
    return r;
}

Result<zdb::Filter> UserData::filter_for(const DataScope& scope, const Map& filter) {
    if (scope.fixed.empty()) return zdb::compile_filter(filter);
    // The owner first: the query reads its candidates from the first index that narrows
    // enough, and one user's records are fewer than a collection's.
    Array all;
    if (auto owner = scope.fixed.find(owner_field); owner != scope.fixed.end())
        all.emplace_back(Map{{owner->first, owner->second}});
    for (const auto& [name, value] : scope.fixed)
        if (name != owner_field) all.emplace_back(Map{{name, value}});
    if (!filter.empty()) all.emplace_back(filter);
    return zdb::compile_filter(Map{{"$and", Value(std::move(all))}});
}

Result<void> UserData::remove_all(const std::string& owner) {
    std::lock_guard lock(lock_of(owner));
    auto ids = ids_of(owner);
    if (!ids) return ids.error();
    for (auto id : *ids)
        if (auto r = db_->remove(id); !r && r.error().code != Errc::not_found) return r;
    std::lock_guard counts(counts_mu_);
    counts_.erase(owner);
    return {};
}

}  // namespace hawser::cloud::detail
