#include "cloud/accounts.hpp"

#include <algorithm>

#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"

namespace hawser::cloud::detail {

Result<std::shared_ptr<zdb::Database>> open_indexed(
    zdb::Store& store, const std::string& name, std::initializer_list<std::string_view> fields) {
    // Nodes sharing a store may start together: a database or an index another node made
    // meanwhile is as good as one made here.
    auto db = store.database(name);
    if (!db && db.error().code == Errc::not_found) {
        db = store.create(name, zdb::DatabaseOptions{.durability = zdb::Durability::sync});
        if (!db) db = store.database(name);
    }
    if (!db) return db.error();
    auto has = [&](std::string_view field) {
        auto indexes = (*db)->stats().indexes;
        return std::find(indexes.begin(), indexes.end(), field) != indexes.end();
    };
    for (auto field : fields)
        if (!has(field))
            if (auto r = (*db)->create_index(std::string(field)); !r && !has(field))
                return r.error();
    return *db;
}

Result<std::vector<std::pair<std::uint64_t, Map>>> find_records(
    const std::shared_ptr<zdb::Database>& db, const std::string& field, Value value,
    std::uint64_t max_results) {
    auto filter = zdb::compile_filter(Map{{field, std::move(value)}});
    if (!filter) return filter.error();
    zdb::QueryOptions options;
    options.parallelism = 1;
    options.max_results = max_results;
    options.ordered = true;
    std::vector<std::pair<std::uint64_t, Map>> found;
    auto query = zdb::run_query(db, *filter, options, [&](zdb::Fragment fragment) {
        for (auto& record : fragment.records) found.push_back(std::move(record));
    });
    if (!query) return query.error();
    if (auto end = (*query)->wait(); !end) return end.error();
    return found;
}

Result<std::optional<Map>> get_record(const zdb::Database& db, std::uint64_t id) {
    auto record = db.get(id);
    if (!record) {
        if (record.error().code == Errc::not_found) return std::optional<Map>{};
        return record.error();
    }
    return std::optional<Map>(std::move(*record));
}

Result<std::unique_ptr<Accounts>> Accounts::open(zdb::Store& store, const std::string& name) {
    auto db = open_indexed(store, name, {"key"});
    if (!db) return db.error();
    return std::unique_ptr<Accounts>(new Accounts(std::move(*db)));
}

std::string Accounts::key_of(std::string_view name) {
    std::string key(name);
    for (auto& c : key)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return key;
}

std::optional<Account> Accounts::from_record(std::uint64_t id, const Map& record) {
    auto name = record.find("name");
    auto hash = record.find("hash");
    if (name == record.end() || hash == record.end() || !name->second.is<std::string>() ||
        !hash->second.is<std::string>())
        return std::nullopt;
    return Account{id, name->second.as<std::string>(), hash->second.as<std::string>()};
}

Result<std::uint64_t> Accounts::create(std::string_view name, std::string password_hash) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    // One step of the store's writes, wherever the store is: two nodes registering one name
    // cannot both succeed.
    auto id = db_->insert_unique(Map{{"name", Value(std::string(name))},
                                     {"key", Value(key_of(name))},
                                     {"hash", Value(std::move(password_hash))},
                                     {"created_ms", Value(std::int64_t(now))}},
                                 "key");
    if (!id && id.error().code == Errc::already_exists)
        return Error{Errc::already_exists, "that username is taken"};
    return id;
}

Result<std::optional<Account>> Accounts::find(std::string_view name) const {
    auto found = find_records(db_, "key", Value(key_of(name)), 1);
    if (!found) return found.error();
    if (found->empty()) return std::optional<Account>{};
    return from_record(found->front().first, found->front().second);
}

Result<std::optional<Account>> Accounts::get(std::uint64_t id) const {
    auto record = get_record(*db_, id);
    if (!record) return record.error();
    if (!*record) return std::optional<Account>{};
    return from_record(id, **record);
}

Result<void> Accounts::set_password(std::uint64_t id, std::string password_hash) {
    return db_->patch(id, Map{{"hash", Value(std::move(password_hash))}});
}

Result<void> Accounts::remove(std::uint64_t id) {
    return db_->remove(id);
}

}  // namespace hawser::cloud::detail
