// CallTable: this side's calls in flight on one connection — the completion of each and its
// deadline in the loop's deadline set. A connection creates it on its first outgoing call (most
// server-side connections never call their client), so an idle connection pays a pointer.
// Ownership: owned by its connection. Thread affinity: the connection's loop. Its destructor
// takes every deadline out of the loop, so the loop never keeps a pointer to a dead connection.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "hawser/error.hpp"
#include "rpc/loop.hpp"

namespace hawser::detail {

// Completion of an outgoing call with the raw reply payload.
using RawCallback = std::function<void(Result<std::string>)>;

class CallTable {
  public:
    explicit CallTable(Loop& loop) : loop_(loop) {}
    ~CallTable() {
        for (auto& [id, call] : calls_) loop_.remove_deadline(call.deadline);
    }
    CallTable(const CallTable&) = delete;
    CallTable& operator=(const CallTable&) = delete;

    std::size_t size() const noexcept { return calls_.size(); }
    bool contains(std::uint64_t id) const { return calls_.count(id) != 0; }

    // `owner` is told of the deadline through Conn::expire_call.
    void add(std::uint64_t id, RawCallback done, Clock::time_point deadline, Conn* owner) {
        auto it = loop_.add_deadline(deadline, owner, id);
        calls_.emplace(id, Pending{std::move(done), it});
    }
    // The completion of call `id`, taken out of the table with its deadline.
    std::optional<RawCallback> take(std::uint64_t id) {
        auto it = calls_.find(id);
        if (it == calls_.end()) return std::nullopt;
        loop_.remove_deadline(it->second.deadline);
        return take(it);
    }
    // The same, after the loop already dropped the deadline (it fired).
    std::optional<RawCallback> take_expired(std::uint64_t id) {
        auto it = calls_.find(id);
        if (it == calls_.end()) return std::nullopt;
        return take(it);
    }
    // Every completion, the table left empty.
    std::vector<RawCallback> take_all() {
        std::vector<RawCallback> out;
        for (auto& [id, call] : calls_) {
            loop_.remove_deadline(call.deadline);
            out.push_back(std::move(call.done));
        }
        calls_.clear();
        return out;
    }

  private:
    struct Pending {
        RawCallback done;
        Loop::Deadlines::iterator deadline;
    };
    RawCallback take(std::unordered_map<std::uint64_t, Pending>::iterator it) {
        auto done = std::move(it->second.done);
        calls_.erase(it);
        return done;
    }

    Loop& loop_;
    std::unordered_map<std::uint64_t, Pending> calls_;
};

}  // namespace hawser::detail
