// OnlineRegistry: this node's logged-in connections by user, and the session each uses. A login
// or resume enters its connection *before* it checks the store, and every revocation changes
// the store *before* it looks here for connections to close: so either the check sees the
// revocation, or the revocation sees the connection, and no connection stays logged in on a
// session ended while it was being resumed. Entries leave when their connection closes.
// Thread safety: every method locks; IO threads and the worker pool use it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "hawser/connection.hpp"

namespace hawser::cloud::detail {

class OnlineRegistry {
  public:
    struct Online {
        ConnectionId connection;
        std::uint64_t session;   // 0 while a login is still making it
        bool confirmed = false;  // the login or resume succeeded (confirm)
    };

    // `id` is now `user`'s, on `session`; whatever it was before is forgotten.
    void enter(ConnectionId id, std::uint64_t user, std::uint64_t session) {
        std::lock_guard lock(mu_);
        forget_locked(id);
        by_user_[user].push_back({id, session, false});
        user_of_[id] = user;
    }
    void set_session(ConnectionId id, std::uint64_t user, std::uint64_t session) {
        std::lock_guard lock(mu_);
        if (auto it = by_user_.find(user); it != by_user_.end())
            for (auto& o : it->second)
                if (o.connection == id) o.session = session;
    }
    // The connection is signed in: it may be told the user's messages and counts as online.
    void confirm(ConnectionId id) {
        std::lock_guard lock(mu_);
        auto user = user_of_.find(id);
        if (user == user_of_.end()) return;
        for (auto& o : by_user_[user->second])
            if (o.connection == id) o.confirmed = true;
    }
    void forget(ConnectionId id) {
        std::lock_guard lock(mu_);
        forget_locked(id);
    }
    // The user's connections that `which(const Online&)` picks.
    template <class Which>
    std::vector<ConnectionId> connections_of(std::uint64_t user, Which which) const {
        std::lock_guard lock(mu_);
        std::vector<ConnectionId> out;
        if (auto it = by_user_.find(user); it != by_user_.end())
            for (auto& o : it->second)
                if (which(o)) out.push_back(o.connection);
        return out;
    }
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return user_of_.size();
    }

  private:
    void forget_locked(ConnectionId id) {
        auto it = user_of_.find(id);
        if (it == user_of_.end()) return;
        auto user = by_user_.find(it->second);
        user_of_.erase(it);
        if (user == by_user_.end()) return;
        std::erase_if(user->second, [id](const Online& o) { return o.connection == id; });
        if (user->second.empty()) by_user_.erase(user);
    }

    mutable std::mutex mu_;
    std::unordered_map<std::uint64_t, std::vector<Online>> by_user_;
    std::unordered_map<ConnectionId, std::uint64_t> user_of_;
};

}  // namespace hawser::cloud::detail
