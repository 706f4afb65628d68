// Mailbox: the messages users send each other, kept until their recipient acknowledges them:
// one ZDB record per message in "<prefix>.messages" ({to, from, from_name, body, sent_ms,
// expires_ms}, indexed by `to`), whose record id is the message id, increasing in the order
// messages were stored. Bounded per recipient; an expired message is as good as gone and is
// deleted when its mailbox is next read, or written when full. A send does not read the
// mailbox: it keeps a count per recipient that never falls below the truth (deletions do not
// lower it), and counts again only when that count says full.
// Blocking storage calls: use from the worker pool. Thread safety: any thread; appends to one
// store are serialized so the bound holds.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::cloud::detail {

struct Message {
    std::uint64_t id = 0, to = 0, from = 0;
    std::string from_name;
    Value body;
    std::int64_t sent_ms = 0, expires_ms = 0;

    Map to_map() const;  // what the commands hand out: {id, from, body, sent_ms}
};

class Mailbox {
  public:
    static Result<std::unique_ptr<Mailbox>> open(zdb::Store& store, const std::string& name);

    // Stores `m` (its id set) unless `m.to` holds `max_per_user` unexpired messages already
    // (limit_exceeded) or `recipient_exists` says no (not_found). That is asked under the
    // recipient's lock, which remove_all takes too: no message lands in a deleted mailbox.
    Result<std::uint64_t> append(Message m, std::size_t max_per_user, std::int64_t now_ms,
                                 const std::function<Result<bool>()>& recipient_exists);
    // `to`'s unexpired messages after id `after`, oldest first, at most `max`; `more` says
    // whether others follow.
    Result<std::vector<Message>> read(std::uint64_t to, std::uint64_t after, std::size_t max,
                                      std::int64_t now_ms, bool& more);
    // Deletes `to`'s messages up to id `up_to`; how many (those deleted meanwhile by another
    // acknowledgement or as expired are not counted).
    Result<std::uint64_t> acknowledge(std::uint64_t to, std::uint64_t up_to);
    Result<void> remove_all(std::uint64_t to);

  private:
    explicit Mailbox(std::shared_ptr<zdb::Database> db) : db_(std::move(db)) {}
    // Every message of `to`, oldest first; the expired ones deleted on the way.
    Result<std::vector<Message>> live(std::uint64_t to, std::int64_t now_ms);

    std::mutex& lock_of(std::uint64_t to) { return recipient_mu_[to % recipient_mu_.size()]; }

    std::shared_ptr<zdb::Database> db_;
    // Appends to one recipient, and deleting a mailbox, one at a time; others run meanwhile.
    std::array<std::mutex, 64> recipient_mu_;
    std::mutex counts_mu_;
    // Messages per recipient, at least as many as there are; forgotten (and counted again
    // when needed) past max_counted recipients.
    std::unordered_map<std::uint64_t, std::size_t> counts_;
    // Mailboxes found full, and when: a send to one is refused without reading it all again
    // for a second (an acknowledgement here forgets the mark; one on another node waits it
    // out). Bounded as counts_ is.
    std::unordered_map<std::uint64_t, std::chrono::steady_clock::time_point> full_;
    static constexpr std::size_t max_counted = 100000;
    static constexpr std::chrono::seconds full_recount{1};
};

}  // namespace hawser::cloud::detail
