// DataScope: what a data command names and what its caller may do there (docs/cloud.md,
// "Data"). A target is one of the caller's collections ("scores"), another user's
// ("scores@alice"), every user's ("scores@*"), or, for admins, a whole ZDB database
// ("/players"). Collections are records of the shared database "<prefix>.data" that carry
// their owner and collection in reserved fields; a scope is those fields, which every read
// filters on and every insert sets. Pure: any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"

namespace hawser::cloud::detail {

// The reserved fields of a collection's records. A client writes only `_public` (a bool:
// everyone may read the record); the others are set by the server.
inline constexpr std::string_view owner_field = "_owner";  // the owner's name, lower case
inline constexpr std::string_view collection_field = "_collection";
inline constexpr std::string_view public_field = "_public";

struct Caller {
    std::string key;  // the caller's name in lower case
    bool admin = false;
};

struct DataScope {
    // A whole database (admins): its name; empty for a collection in the data database.
    std::string database;
    Map fixed;              // the fields every record of the scope holds
    std::string owner;      // a collection's one owner (its key); empty for every user's
    bool writable = false;  // insert (with one owner), patch, remove
    // With a writable scope, the caller's account: its rights are that account's, so a job
    // checks the account still exists. A deleted account's connection may outlive it on a node
    // that was not told, and its name may be someone else's by then. 0 when not set.
    std::uint64_t acting_account = 0;

    bool collection() const noexcept { return database.empty(); }
};

// Parses `target` and checks the caller's rights: not_allowed for another user's records
// (unless public and only read) or a database; invalid_argument for a malformed target.
// `cloud_prefix` names the cloud's own databases, which nobody reaches this way.
Result<DataScope> scope_for(std::string_view target, const Caller& caller,
                            std::string_view cloud_prefix);

// Whether a collection's record belongs to the scope (holds every fixed field).
bool in_scope(const DataScope& scope, const Map& record);

// A client's fields for a collection's record: no reserved name but `_public`, and that a bool.
Result<void> check_client_fields(const Map& fields);

}  // namespace hawser::cloud::detail
