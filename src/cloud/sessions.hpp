// Sessions: one ZDB record per login ({user, created_ms, expires_ms, address}) in
// "<prefix>.sessions", indexed by user. The record id is the session id a token names; deleting
// the record revokes every token naming it. Blocking storage calls: use from the worker pool.
// Thread safety: any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hawser/error.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::cloud::detail {

struct SessionRecord {
    std::uint64_t id = 0;
    std::uint64_t user = 0;
    std::int64_t created_ms = 0, expires_ms = 0;  // Unix time
    std::string address;
};

class Sessions {
  public:
    static Result<std::unique_ptr<Sessions>> open(zdb::Store& store, const std::string& name);

    Result<SessionRecord> create(std::uint64_t user, std::string address, std::int64_t now_ms,
                                 std::int64_t lifetime_ms);
    // nullopt when there is no such session (revoked, or never made).
    Result<std::optional<SessionRecord>> get(std::uint64_t id) const;
    // The user's sessions, oldest first (expired ones included until pruned).
    Result<std::vector<SessionRecord>> of_user(std::uint64_t user) const;
    Result<void> remove(std::uint64_t id);
    // Deletes every session expired by `now_ms` (a user who never logs in again leaves them);
    // how many.
    Result<std::uint64_t> remove_expired(std::int64_t now_ms);

  private:
    explicit Sessions(std::shared_ptr<zdb::Database> db) : db_(std::move(db)) {}
    static std::optional<SessionRecord> from_record(std::uint64_t id, const Map& record);

    std::shared_ptr<zdb::Database> db_;
};

}  // namespace hawser::cloud::detail
