#include "cloud/sessions.hpp"

#include "cloud/accounts.hpp"

namespace hawser::cloud::detail {

Result<std::unique_ptr<Sessions>> Sessions::open(zdb::Store& store, const std::string& name) {
    auto db = open_indexed(store, name, {"user"});
    if (!db) return db.error();
    return std::unique_ptr<Sessions>(new Sessions(std::move(*db)));
}

std::optional<SessionRecord> Sessions::from_record(std::uint64_t id, const Map& record) {
    auto user = field<std::uint64_t>(record, "user");
    auto created = field<std::int64_t>(record, "created_ms");
    auto expires = field<std::int64_t>(record, "expires_ms");
    auto address = field<std::string>(record, "address");
    if (!user || !created || !expires || !address) return std::nullopt;
    return SessionRecord{id, *user, *created, *expires, *address};
}

Result<SessionRecord> Sessions::create(std::uint64_t user, std::string address, std::int64_t now_ms,
                                       std::int64_t lifetime_ms) {
    SessionRecord s{0, user, now_ms, now_ms + lifetime_ms, std::move(address)};
    auto id = db_->insert(Map{{"user", Value(user)},
                              {"created_ms", Value(s.created_ms)},
                              {"expires_ms", Value(s.expires_ms)},
                              {"address", Value(s.address)}});
    if (!id) return id.error();
    s.id = *id;
    return s;
}

Result<std::optional<SessionRecord>> Sessions::get(std::uint64_t id) const {
    auto record = get_record(*db_, id);
    if (!record) return record.error();
    if (!*record) return std::optional<SessionRecord>{};
    return from_record(id, **record);
}

Result<std::vector<SessionRecord>> Sessions::of_user(std::uint64_t user) const {
    auto found = find_records(db_, "user", Value(user), 0);
    if (!found) return found.error();
    std::vector<SessionRecord> out;
    for (auto& [id, record] : *found)
        if (auto s = from_record(id, record)) out.push_back(std::move(*s));
    return out;
}

Result<std::uint64_t> Sessions::remove_expired(std::int64_t now_ms) {
    std::vector<std::uint64_t> expired;
    auto scanned = db_->scan([&](zdb::RecordId id, const Map& record) {
        auto s = from_record(id, record);
        if (s && s->expires_ms <= now_ms) expired.push_back(id);
        return true;
    });
    if (!scanned) return scanned.error();
    for (auto id : expired)
        if (auto r = db_->remove(id); !r && r.error().code != Errc::not_found) return r.error();
    return std::uint64_t(expired.size());
}

Result<void> Sessions::remove(std::uint64_t id) {
    auto r = db_->remove(id);
    if (!r && r.error().code == Errc::not_found) return {};
    return r;
}

}  // namespace hawser::cloud::detail
