// UserData: the records data commands read and write (docs/cloud.md, "Data"): users'
// collections in the shared ZDB database "<prefix>.data" (indexed by owner and collection),
// and for admins whole databases of the store. Every operation takes a DataScope and keeps to
// it: a record outside the scope is "not found", whether or not it exists. A user holds at most
// max_records_per_user records, counted per owner (inserts and removals of one owner take its
// lock) and counted again from the index when not known or when the count says full (nodes
// sharing a store do not see each other's counts: together they may pass the cap by what the
// others inserted since this node last counted).
// Blocking storage calls: use from the worker pool. Thread safety: any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cloud/data_scope.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::cloud::detail {

class UserData {
  public:
    static Result<std::unique_ptr<UserData>> open(zdb::Store& store, const std::string& name,
                                                  std::size_t max_records_per_user,
                                                  std::size_t max_document_bytes);

    // The database a scope lives in: not_found for a database that does not exist.
    Result<std::shared_ptr<zdb::Database>> database_of(const DataScope& scope) const;

    // A collection's record gets the scope's fields (its owner and collection). limit_exceeded
    // when the owner holds max_records_per_user; not_found when `owner_exists` says no, which is
    // asked under the owner's lock, which remove_all takes too: nothing lands for an account
    // that is gone.
    Result<zdb::RecordId> insert(const DataScope& scope, Map document,
                                 const std::function<Result<bool>()>& owner_exists);
    Result<Map> get(const DataScope& scope, zdb::RecordId id) const;
    // A collection's record, patched, must stay within max_document_bytes (limit_exceeded).
    Result<void> patch(const DataScope& scope, zdb::RecordId id, const Map& fields);
    Result<void> remove(const DataScope& scope, zdb::RecordId id);
    // The filter a query of the scope runs: the client's, and the scope's fields.
    static Result<zdb::Filter> filter_for(const DataScope& scope, const Map& filter);
    // Every record of an owner (an account that is gone).
    Result<void> remove_all(const std::string& owner);

  private:
    UserData(zdb::Store& store, std::shared_ptr<zdb::Database> db, std::size_t max_records,
             std::size_t max_document_bytes)
        : store_(store),
          db_(std::move(db)),
          max_records_(max_records),
          max_document_bytes_(max_document_bytes) {}
    // The ids of an owner's records, from the index.
    Result<std::vector<zdb::RecordId>> ids_of(const std::string& owner) const;
    // The record `id` of the scope, or not_found.
    Result<Map> get_in(const zdb::Database& db, const DataScope& scope, zdb::RecordId id) const;
    std::mutex& lock_of(const std::string& owner) {
        return owner_mu_[std::hash<std::string>{}(owner) % owner_mu_.size()];
    }

    zdb::Store& store_;
    std::shared_ptr<zdb::Database> db_;
    const std::size_t max_records_;
    const std::size_t max_document_bytes_;
    std::array<std::mutex, 64> owner_mu_;
    std::mutex counts_mu_;
    // Records per owner, exact while present; forgotten past max_counted owners.
    std::unordered_map<std::string, std::size_t> counts_;
    static constexpr std::size_t max_counted = 100000;
};

}  // namespace hawser::cloud::detail
