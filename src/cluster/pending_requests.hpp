// PendingRequests: this node's requests to connections on other nodes that wait for an answer,
// by id, each with a deadline. Bounded: past `max` a new one is refused.
// Ownership: a value owned by the Cluster. Thread affinity: none; the Cluster guards it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/remote_messages.hpp"

namespace hawser::detail {

class PendingRequests {
  public:
    using Clock = std::chrono::steady_clock;
    using Done = std::function<void(RemoteAnswer)>;

    explicit PendingRequests(std::size_t max) : max_(max) {}

    // The new request's id, or nullopt (`done` left with the caller) when `max` are waiting.
    std::optional<std::uint64_t> add(Clock::time_point deadline, std::string_view node,
                                     Done& done) {
        if (waiting_.size() >= max_) return std::nullopt;
        auto id = next_id_++;
        auto at = deadlines_.emplace(deadline, id);
        auto order = added_.fetch_add(1, std::memory_order_relaxed);
        waiting_.emplace(id, Entry{std::move(done), at, std::string(node), order});
        return id;
    }
    // The request's completion, or an empty function if it already completed or expired.
    Done take(std::uint64_t id) {
        auto it = waiting_.find(id);
        if (it == waiting_.end()) return {};
        auto done = std::move(it->second.done);
        deadlines_.erase(it->second.at);
        waiting_.erase(it);
        return done;
    }
    // Those whose deadline has passed, removed.
    std::vector<Done> expire(Clock::time_point now) {
        std::vector<Done> out;
        while (!deadlines_.empty() && deadlines_.begin()->first <= now)
            out.push_back(take(deadlines_.begin()->second));
        return out;
    }
    std::vector<Done> take_all() { return expire(Clock::time_point::max()); }
    // How many were ever added. Any thread, without the Cluster's guard: a node's leaving is
    // marked with it where membership is kept.
    std::uint64_t added() const noexcept { return added_.load(std::memory_order_relaxed); }
    // Those sent to `node` among the first `added_before` ever added, removed: it left or went
    // silent, and will not answer them. Later ones went to a run of that name that came back.
    std::vector<Done> take_node(std::string_view node, std::uint64_t added_before) {
        std::vector<std::uint64_t> ids;
        for (const auto& [id, e] : waiting_)
            if (e.node == node && e.order < added_before) ids.push_back(id);
        std::vector<Done> out;
        for (auto id : ids) out.push_back(take(id));
        return out;
    }
    std::optional<Clock::time_point> next_deadline() const {
        if (deadlines_.empty()) return std::nullopt;
        return deadlines_.begin()->first;
    }
    std::size_t size() const noexcept { return waiting_.size(); }

  private:
    struct Entry {
        Done done;
        std::multimap<Clock::time_point, std::uint64_t>::iterator at;
        std::string node;     // where it went
        std::uint64_t order;  // how many were added before it
    };
    std::size_t max_;
    // Random: a node restarted under the same name does not take a late answer meant for its
    // last run as the answer to a new request.
    std::uint64_t next_id_ = std::random_device{}() | std::uint64_t(std::random_device{}()) << 32;
    std::atomic<std::uint64_t> added_{0};  // written under the guard, read without
    std::multimap<Clock::time_point, std::uint64_t> deadlines_;
    std::unordered_map<std::uint64_t, Entry> waiting_;
};

}  // namespace hawser::detail
