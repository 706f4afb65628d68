// Accounts: one ZDB record per user ({name, key, hash, created_ms}) in "<prefix>.accounts", found
// by name through an index on `key` (the name in lower case: names compare without case). The
// record id is the user id. Blocking storage calls: use from the worker pool.
// Thread safety: any thread; two registrations of one name cannot both succeed, on one node or
// on two sharing a store (Database::insert_unique).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hawser/error.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::cloud::detail {

struct Account {
    std::uint64_t id = 0;
    std::string name;           // as registered
    std::string password_hash;  // Argon2id string
};

class Accounts {
  public:
    static Result<std::unique_ptr<Accounts>> open(zdb::Store& store, const std::string& name);

    // already_exists when the name (without case) is taken.
    Result<std::uint64_t> create(std::string_view name, std::string password_hash);
    // nullopt when there is no such account.
    Result<std::optional<Account>> find(std::string_view name) const;
    Result<std::optional<Account>> get(std::uint64_t id) const;
    Result<void> set_password(std::uint64_t id, std::string password_hash);
    Result<void> remove(std::uint64_t id);

    static std::string key_of(std::string_view name);  // lower case

  private:
    explicit Accounts(std::shared_ptr<zdb::Database> db) : db_(std::move(db)) {}
    static std::optional<Account> from_record(std::uint64_t id, const Map& record);

    std::shared_ptr<zdb::Database> db_;
};

// The ZDB database `name`, created when missing, with an index on each of `fields`.
Result<std::shared_ptr<zdb::Database>> open_indexed(zdb::Store& store, const std::string& name,
                                                    std::initializer_list<std::string_view> fields);
// The records whose `field` equals `value`, through its index, in id order (0: no limit).
Result<std::vector<std::pair<std::uint64_t, Map>>> find_records(
    const std::shared_ptr<zdb::Database>& db, const std::string& field, Value value,
    std::uint64_t max_results);
// The record `id`; nullopt when there is none.
Result<std::optional<Map>> get_record(const zdb::Database& db, std::uint64_t id);

// A record's field `name` as a T; nullopt when missing or of another type. Integers convert
// between signed and unsigned (MessagePack keeps no such difference for positive numbers).
template <class T>
std::optional<T> field(const Map& record, std::string_view name) {
    auto it = record.find(name);
    if (it == record.end()) return std::nullopt;
    if constexpr (std::is_integral_v<T>) {
        if (it->second.is<std::int64_t>()) return T(it->second.as<std::int64_t>());
        if (it->second.is<std::uint64_t>()) return T(it->second.as<std::uint64_t>());
        return std::nullopt;
    } else {
        if (!it->second.is<T>()) return std::nullopt;
        return it->second.as<T>();
    }
}

}  // namespace hawser::cloud::detail
