#include "cloud/mailbox.hpp"

#include "cloud/accounts.hpp"

namespace hawser::cloud::detail {

namespace {

std::optional<Message> message_from_record(std::uint64_t id, Map record) {
    auto to = field<std::uint64_t>(record, "to");
    auto from = field<std::uint64_t>(record, "from");
    auto name = field<std::string>(record, "from_name");
    auto sent = field<std::int64_t>(record, "sent_ms");
    auto expires = field<std::int64_t>(record, "expires_ms");
    auto body = record.find("body");
    if (!to || !from || !name || !sent || !expires || body == record.end()) return std::nullopt;
    return Message{id, *to, *from, std::move(*name), std::move(body->second), *sent, *expires};
}

}  // namespace

Map Message::to_map() const {
    return Map{
        {"id", Value(id)}, {"from", Value(from_name)}, {"body", body}, {"sent_ms", Value(sent_ms)}};
}

Result<std::unique_ptr<Mailbox>> Mailbox::open(zdb::Store& store, const std::string& name) {
    auto db = open_indexed(store, name, {"to"});
    if (!db) return db.error();
    return std::unique_ptr<Mailbox>(new Mailbox(std::move(*db)));
}

Result<std::vector<Message>> Mailbox::live(std::uint64_t to, std::int64_t now_ms) {
    auto found = find_records(db_, "to", Value(to), 0);
    if (!found) return found.error();
    std::vector<Message> out;
    out.reserve(found->size());
    for (auto& [id, record] : *found) {
        auto m = message_from_record(id, std::move(record));
        if (m && m->expires_ms > now_ms)
            out.push_back(std::move(*m));
        else
            (void)db_->remove(id);  // expired, or not a message
    }
    return out;
}

Result<std::uint64_t> Mailbox::append(Message m, std::size_t max_per_user, std::int64_t now_ms,
                                      const std::function<Result<bool>()>& recipient_exists) {
    std::lock_guard lock(lock_of(m.to));
    auto exists = recipient_exists();
    if (!exists) return exists.error();
    if (!*exists) return Error{Errc::not_found, "no such user"};
    auto full = [&] {
        return Error{Errc::limit_exceeded, "the recipient's mailbox is full (" +
                                               std::to_string(max_per_user) +
                                               " messages not yet acknowledged)"};
    };
    auto clock = std::chrono::steady_clock::now();
    std::optional<std::size_t> counted;
    {
        std::lock_guard counts(counts_mu_);
        if (auto it = counts_.find(m.to); it != counts_.end()) counted = it->second;
        if (auto it = full_.find(m.to); it != full_.end()) {
            if (clock - it->second < full_recount) return full();  // read in full just now
            full_.erase(it);
        }
    }
    if (!counted || *counted >= max_per_user) {
        auto queued = live(m.to, now_ms);  // the true count, expired ones deleted
        if (!queued) return queued.error();
        if (queued->size() >= max_per_user) {
            std::lock_guard counts(counts_mu_);
            if (full_.size() >= max_counted) full_.clear();
            full_.insert_or_assign(m.to, std::chrono::steady_clock::now());  // after the read
            return full();
        }
        std::lock_guard counts(counts_mu_);
        if (counts_.size() >= max_counted) counts_.clear();
        counts_.insert_or_assign(m.to, queued->size() + 1);
    } else {
        // Raised before the insert (a failed one only makes the count high); gone when
        // another recipient's recount cleared the table: the next append counts again.
        std::lock_guard counts(counts_mu_);
        if (auto it = counts_.find(m.to); it != counts_.end()) ++it->second;
    }
    auto id = db_->insert(Map{{"to", Value(m.to)},
                              {"from", Value(m.from)},
                              {"from_name", Value(std::move(m.from_name))},
                              {"body", std::move(m.body)},
                              {"sent_ms", Value(m.sent_ms)},
                              {"expires_ms", Value(m.expires_ms)}});
    if (!id) return id;
    // A second look: on a cluster the account may have been deleted on another node, its
    // mailbox emptied, between the first look and the insert (the lock above is this node's).
    exists = recipient_exists();
    if (exists && !*exists) {
        (void)db_->remove(*id);
        return Error{Errc::not_found, "no such user"};
    }
    return id;
}

// The oldest messages first, fetching twice as many each time the page is not yet full: a
// mailbox read after its older messages were acknowledged costs the page, not the mailbox.
Result<std::vector<Message>> Mailbox::read(std::uint64_t to, std::uint64_t after, std::size_t max,
                                           std::int64_t now_ms, bool& more) {
    for (std::uint64_t fetch = max + 1;; fetch *= 2) {
        auto found = find_records(db_, "to", Value(to), fetch);
        if (!found) return found.error();
        std::vector<Message> page;
        more = false;
        for (auto& [id, record] : *found) {
            auto m = message_from_record(id, std::move(record));
            if (!m || m->expires_ms <= now_ms) {
                (void)db_->remove(id);  // expired, or not a message
                continue;
            }
            if (m->id <= after) continue;
            if (page.size() == max) {
                more = true;
                break;
            }
            page.push_back(std::move(*m));
        }
        if (more || found->size() < fetch) return page;
    }
}

Result<std::uint64_t> Mailbox::acknowledge(std::uint64_t to, std::uint64_t up_to) {
    // Room, likely: the next send counts again. Forgotten at the end too: a send that counted
    // while these went may have marked it full again.
    struct Forget {
        Mailbox& box;
        std::uint64_t to;
        void now() {
            std::lock_guard counts(box.counts_mu_);
            box.full_.erase(to);
        }
        ~Forget() { now(); }
    } forget{*this, to};
    forget.now();
    constexpr std::uint64_t batch = 256;
    std::uint64_t removed = 0;
    for (;;) {  // the oldest first, in id order, until one is past up_to
        auto found = find_records(db_, "to", Value(to), batch);
        if (!found) return found.error();
        for (auto& [id, record] : *found) {
            if (id > up_to) return removed;
            auto r = db_->remove(id);
            if (r)
                ++removed;
            else if (r.error().code != Errc::not_found)  // not_found: deleted meanwhile
                return r.error();
        }
        if (found->size() < batch) return removed;
    }
}

Result<void> Mailbox::remove_all(std::uint64_t to) {
    std::lock_guard lock(lock_of(to));
    auto removed = acknowledge(to, ~std::uint64_t(0));
    if (!removed) return removed.error();
    return {};
}

}  // namespace hawser::cloud::detail
