// OnlineRegistry: this node's logged-in connections by user, and the session each uses. A login
// or resume enters its connection *before* it checks the store, and every revocation changes
// the store *before* it looks here for connections to close: so either the check sees the
// revocation, or the revocation sees the connection, and no connection stays logged in on a
// session ended while it was being resumed. Entries leave when their connection closes.
// Thread safety: every method locks; IO threads and the worker pool use it. The observer runs
// after the lock is let go, on the thread that made the change: a connection's own changes
// that count (its confirm, and the forgetting of it once confirmed) all happen on its IO
// thread, so the observer sees them in order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
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

    // Told when a connection starts or stops counting as online. Set before the server starts.
    using Observer = std::function<void(ConnectionId, std::uint64_t user, bool online)>;
    void observe(Observer observer) { observer_ = std::move(observer); }

    // `id` is now `user`'s, on `session`; whatever it was before is forgotten.
    void enter(ConnectionId id, std::uint64_t user, std::uint64_t session) {
        std::unique_lock lock(mu_);
        auto was = forget_locked(id);
        by_user_[user].push_back({id, session, false});
        user_of_[id] = user;
        lock.unlock();
        if (was) tell(id, *was, false);
    }
    void set_session(ConnectionId id, std::uint64_t user, std::uint64_t session) {
        std::lock_guard lock(mu_);
        if (auto it = by_user_.find(user); it != by_user_.end())
            for (auto& o : it->second)
                if (o.connection == id) o.session = session;
    }
    // The connection is signed in: it may be told the user's messages and counts as online.
    void confirm(ConnectionId id) {
        std::unique_lock lock(mu_);
        auto user = user_of_.find(id);
        if (user == user_of_.end()) return;
        bool changed = false;
        for (auto& o : by_user_[user->second])
            if (o.connection == id && !o.confirmed) changed = o.confirmed = true;
        if (changed) ++confirmed_;
        auto whose = user->second;
        lock.unlock();
        if (changed) tell(id, whose, true);
    }
    void forget(ConnectionId id) {
        std::unique_lock lock(mu_);
        auto was = forget_locked(id);
        lock.unlock();
        if (was) tell(id, *was, false);
    }
    // Every confirmed connection, with its user.
    std::vector<std::pair<std::uint64_t, ConnectionId>> confirmed() const {
        std::lock_guard lock(mu_);
        std::vector<std::pair<std::uint64_t, ConnectionId>> out;
        for (auto& [user, list] : by_user_)
            for (auto& o : list)
                if (o.confirmed) out.emplace_back(user, o.connection);
        return out;
    }
    // The user's signed-in connections (not a login or resume still being checked).
    std::vector<ConnectionId> signed_in_of(std::uint64_t user) const {
        return connections_of(user, [](const Online& o) { return o.confirmed; });
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
    // Connections signed in: not those whose login or resume is still being checked.
    std::size_t signed_in() const {
        std::lock_guard lock(mu_);
        return confirmed_;
    }

  private:
    // The user of a confirmed entry it removed.
    std::optional<std::uint64_t> forget_locked(ConnectionId id) {
        auto it = user_of_.find(id);
        if (it == user_of_.end()) return std::nullopt;
        auto user = by_user_.find(it->second);
        user_of_.erase(it);
        if (user == by_user_.end()) return std::nullopt;
        bool confirmed = false;
        std::erase_if(user->second, [&](const Online& o) {
            if (o.connection != id) return false;
            confirmed = confirmed || o.confirmed;
            return true;
        });
        auto whose = user->first;
        if (user->second.empty()) by_user_.erase(user);
        if (!confirmed) return std::nullopt;
        --confirmed_;
        return whose;
    }
    void tell(ConnectionId id, std::uint64_t user, bool online) const {
        if (observer_) observer_(id, user, online);
    }

    mutable std::mutex mu_;
    std::unordered_map<std::uint64_t, std::vector<Online>> by_user_;
    std::unordered_map<ConnectionId, std::uint64_t> user_of_;
    std::size_t confirmed_ = 0;  // entries confirmed
    Observer observer_;          // set before start, read-only after
};

}  // namespace hawser::cloud::detail
