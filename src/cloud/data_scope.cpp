#include "cloud/data_scope.hpp"

#include "cloud/accounts.hpp"
#include "hawser/cloud/cloud.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::cloud::detail {

namespace {

Error malformed(std::string_view target) {
    return Error{Errc::invalid_argument,
                 "a target is COLLECTION, COLLECTION@USER, COLLECTION@* or /DATABASE, names of "
                 "1-64 letters, digits, '_', '.' and '-': not '" +
                     std::string(target.substr(0, 80)) + "'"};
}

}  // namespace

Result<DataScope> scope_for(std::string_view target, const Caller& caller,
                            std::string_view cloud_prefix) {
    DataScope scope;
    if (caller.key.empty()) return Error{Errc::unauthenticated, "log in first"};
    if (target.starts_with('/')) {
        auto name = target.substr(1);
        if (!zdb::Store::valid_name(name)) return malformed(target);
        if (!caller.admin) return Error{Errc::not_allowed, "only admins reach a database"};
        if (name.starts_with(std::string(cloud_prefix) + "."))
            return Error{Errc::not_allowed, "the cloud's own databases are not reachable"};
        scope.database = std::string(name);
        scope.writable = true;
        return scope;
    }
    auto at = target.find('@');
    auto collection = target.substr(0, at);
    if (!zdb::Store::valid_name(collection)) return malformed(target);  // ZDB's rule too
    std::string owner = caller.key;
    if (at != std::string_view::npos) {
        auto who = target.substr(at + 1);
        if (who == "*")
            owner.clear();
        else if (Cloud::valid_username(who))
            owner = Accounts::key_of(who);
        else
            return malformed(target);
    }
    bool own = owner == caller.key;
    scope.owner = owner;
    scope.writable = own || caller.admin;
    scope.fixed.emplace(collection_field, Value(std::string(collection)));
    if (!owner.empty()) scope.fixed.emplace(owner_field, Value(owner));
    if (!scope.writable) scope.fixed.emplace(public_field, Value(true));  // others read public
    return scope;
}

bool in_scope(const DataScope& scope, const Map& record) {
    for (const auto& [name, value] : scope.fixed) {
        auto it = record.find(name);
        if (it == record.end() || !(it->second == value)) return false;
    }
    return true;
}

Result<void> check_client_fields(const Map& fields) {
    for (const auto& [name, value] : fields) {
        if (name == public_field) {
            if (!value.is<bool>() && !value.is<std::nullptr_t>())
                return Error{Errc::invalid_argument, "_public is true or false"};
        } else if (name.starts_with('_')) {
            return Error{Errc::invalid_argument,
                         "fields starting with '_' are reserved (all but _public): '" +
                             name.substr(0, 80) + "'"};
        }
    }
    return {};
}

}  // namespace hawser::cloud::detail
