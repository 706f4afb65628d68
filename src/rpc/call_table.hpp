// CallTable: this side's calls in flight on one connection — the completion of each and its
// deadline. A connection creates it on its first outgoing call (most server-side connections
// never call their client), so an idle connection pays a pointer.
// Deadlines: the calls are kept in deadline order in an intrusive list (calls with one timeout
// arrive in that order, so adding is a step at the tail; see add()), and the table holds one entry
// in the loop's deadline set, at or before its earliest call's deadline. It is lazy: a call
// answered in time moves nothing; when the entry comes due the table expires what is due and sets
// the entry for the earliest call left. A call costs no node in the loop's tree, only a rare
// spurious wake-up per connection.
// Ownership: owned by its connection. Thread affinity: the connection's loop. Its destructor
// takes its entry out of the loop, so the loop never keeps a pointer to a dead connection.
#pragma once

#include <cassert>
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
    // `owner` is told of due deadlines through Conn::expire_calls.
    CallTable(Loop& loop, Conn& owner) : loop_(loop), owner_(owner) {}
    ~CallTable() {
        if (timer_) loop_.remove_deadline(*timer_);
    }
    CallTable(const CallTable&) = delete;
    CallTable& operator=(const CallTable&) = delete;

    std::size_t size() const noexcept { return calls_.size(); }
    bool contains(std::uint64_t id) const { return calls_.count(id) != 0; }

    void add(std::uint64_t id, RawCallback done, Clock::time_point deadline) {
        auto [it, added] = calls_.try_emplace(id, Pending{std::move(done), deadline, id});
        assert(added);  // ids are never reused on a connection
        auto& call = it->second;
        // Its place in deadline order, after the last call due no later, sought from both ends
        // at once: one step at the tail when the calls share a timeout; with mixed ones, as
        // many as the fewer of the calls in flight due before it and those due after.
        Pending* before = nullptr;
        for (Pending *tail = last_, *head = first_;; tail = tail->earlier, head = head->later) {
            if (!tail || tail->deadline <= deadline) {
                before = tail;
                break;
            }
            if (!head || head->deadline > deadline) {
                before = head ? head->earlier : last_;
                break;
            }
        }
        call.earlier = before;
        call.later = before ? before->later : first_;
        (call.later ? call.later->earlier : last_) = &call;
        (before ? before->later : first_) = &call;
        if (!timer_ || deadline < timer_at_) set_timer(deadline);
    }
    // The completion of call `id`, taken out of the table.
    std::optional<RawCallback> take(std::uint64_t id) {
        auto it = calls_.find(id);
        if (it == calls_.end()) return std::nullopt;
        unlink(it->second);
        auto done = std::move(it->second.done);
        calls_.erase(it);
        return done;
    }
    // The loop's entry for this table came due (the loop dropped it): the completions of every
    // call past its deadline at `now`, earliest first.
    std::vector<RawCallback> take_due(Clock::time_point now) {
        timer_.reset();
        std::vector<RawCallback> out;
        while (first_ && first_->deadline <= now) out.push_back(std::move(*take(first_->id)));
        if (first_) set_timer(first_->deadline);
        return out;
    }
    // Every completion, the table left empty.
    std::vector<RawCallback> take_all() {
        std::vector<RawCallback> out;
        for (auto& [id, call] : calls_) out.push_back(std::move(call.done));
        calls_.clear();
        first_ = last_ = nullptr;
        if (timer_) loop_.remove_deadline(*timer_);
        timer_.reset();
        return out;
    }

  private:
    struct Pending {
        RawCallback done;
        Clock::time_point deadline;
        std::uint64_t id;
        Pending* earlier = nullptr;  // the deadline list; nodes of calls_ do not move
        Pending* later = nullptr;
    };
    void unlink(Pending& call) noexcept {
        (call.earlier ? call.earlier->later : first_) = call.later;
        (call.later ? call.later->earlier : last_) = call.earlier;
    }
    void set_timer(Clock::time_point at) {
        if (timer_) loop_.remove_deadline(*timer_);
        timer_ = loop_.add_deadline(at, &owner_);
        timer_at_ = at;
    }

    Loop& loop_;
    Conn& owner_;
    std::unordered_map<std::uint64_t, Pending> calls_;
    Pending* first_ = nullptr;  // earliest deadline
    Pending* last_ = nullptr;
    std::optional<Loop::Deadlines::iterator> timer_;  // this table's entry in the loop
    Clock::time_point timer_at_{};
};

}  // namespace hawser::detail
