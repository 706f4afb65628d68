// Presence (presence.hpp): the news of presence changes: this node's changes and whole state
// sent to the others, theirs taken in, and each follower told on its own IO thread.
#include <algorithm>
#include <chrono>

#include "cloud/presence.hpp"

namespace hawser::cloud::detail {

namespace {

constexpr std::size_t max_gone = 1024;  // gone nodes remembered

}  // namespace

// --- this node's changes, and its whole state ---

void Presence::changed(ConnectionId connection, std::uint64_t user, bool online) {
    deliver(std::make_shared<const News>(News{node_, {{user, connection, online}}, false, {}}));
    send_later({{user, connection, online}});
}

void Presence::send_later(std::vector<Entry> entries) {
    if (!cluster_ || entries.empty()) return;
    bool post;
    {
        std::lock_guard lock(outgoing_mu_);
        outgoing_.insert(outgoing_.end(), std::make_move_iterator(entries.begin()),
                         std::make_move_iterator(entries.end()));
        post = !flush_posted_;
        flush_posted_ = true;
    }
    // Sent by the worker pool (never an IO thread waiting behind a whole state): changes that
    // come together leave together. A full pool: sent here.
    if (post && jobs_->post([weak = weak_from_this()] {
            if (auto self = weak.lock()) self->flush_changes();
        }) == Jobs::Posted::full)
        flush_changes();
}

void Presence::flush_changes() {
    JobTicket ticket(*jobs_);  // the cluster is there while the cloud is
    std::lock_guard publishing(publish_mu_);
    auto batch = take_outgoing();
    if (ticket && !batch.empty()) cluster_->presence_changes(batch);
}

std::vector<Presence::Entry> Presence::take_outgoing() {
    std::lock_guard lock(outgoing_mu_);
    flush_posted_ = false;
    return std::exchange(outgoing_, {});
}

void Presence::send_state(bool ask_others) {
    if (!cluster_) return;
    std::chrono::steady_clock::duration wait{};
    {
        std::lock_guard lock(outgoing_mu_);
        state_asks_ = state_asks_ || ask_others;
        if (state_posted_) return;
        state_posted_ = true;
        // At most one whole state a second: a small notice (or a flapping node) asks for one,
        // and it may be megabytes to every node. Asks meanwhile ride on the one that comes.
        auto since = std::chrono::steady_clock::now() - last_state_sent_;
        if (since < state_cooldown) wait = state_cooldown - since;
    }
    if (wait.count() > 0)
        return jobs_->host().runtime.loop(0).post_after(wait, [weak = weak_from_this()] {
            if (auto self = weak.lock()) self->post_state();
        });
    post_state();
}

void Presence::post_state() {
    auto posted = jobs_->post([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->send_state_now();
    });
    if (posted == Jobs::Posted::ok) return;
    if (posted == Jobs::Posted::full) {  // a node waits for it: an IO thread sends it
        jobs_->host().post_user(0, "cloud presence", [weak = weak_from_this()] {
            auto self = weak.lock();
            if (!self) return;
            JobTicket ticket(*self->jobs_);
            if (ticket) self->send_state_now();
        });
        return;
    }
    std::lock_guard lock(outgoing_mu_);
    state_posted_ = false;
}

void Presence::send_state_now() {
    std::lock_guard publishing(publish_mu_);
    bool asks;
    {
        std::lock_guard lock(outgoing_mu_);
        state_posted_ = false;
        asks = std::exchange(state_asks_, false);
        last_state_sent_ = std::chrono::steady_clock::now();
    }
    if (auto batch = take_outgoing(); !batch.empty()) cluster_->presence_changes(batch);
    // Read after the changes went: it holds them all, and later ones follow it.
    auto state = directory_.here(nullptr);
    auto members = members_here(nullptr);
    state.insert(state.end(), std::make_move_iterator(members.begin()),
                 std::make_move_iterator(members.end()));
    cluster_->presence_state(state, asks);
}

// --- other nodes' news ---

std::shared_ptr<const Presence::News> Presence::whole_state(std::string node,
                                                            std::vector<Entry> entries) {
    // A whole state lists what is online; an entry that says otherwise is dropped, not taken
    // as present.
    std::erase_if(entries, [](const Entry& e) { return !e.online; });
    auto news = std::make_shared<News>(News{std::move(node), std::move(entries), true, {}, {}});
    for (auto& e : news->entries) {
        if (e.room.empty())
            news->by_user[e.user].push_back(e.connection);
        else
            news->by_room[e.room].insert_or_assign(e.connection, &e);  // into news->entries
    }
    return news;
}

void Presence::changed_elsewhere(const std::string& node, std::vector<Entry> entries, bool whole) {
    auto news = whole ? whole_state(node, std::move(entries))
                      : std::make_shared<const News>(News{node, std::move(entries), false, {}});
    std::lock_guard lock(mu_);
    // The check and the posts under one lock: a node_gone cannot slip between them.
    if (auto gone = std::find(gone_.begin(), gone_.end(), node); gone != gone_.end()) {
        // A whole state from a node gone counts only if the node is back (it may have been
        // sent before it left, and come after). Asked under the lock: the registry drops a
        // node before its node_gone comes, so a node_gone that ran before this finds it unknown
        // here, and one still to come removes what this delivers.
        bool back = whole && cluster_ && cluster_->knows(node);
        if (!back) return;  // sent before it went; its next whole state says what holds
        gone_.erase(gone);
    }
    if (whole) {
        if (last_state_.size() >= max_gone) last_state_.clear();
        last_state_[node] = std::chrono::steady_clock::now();
    }
    deliver_locked(news);
}

void Presence::node_joined(const std::string& node) {
    if (!cluster_) return;
    {
        std::lock_guard lock(mu_);
        auto last = last_state_.find(node);
        if (last != last_state_.end() &&
            std::chrono::steady_clock::now() - last->second < std::chrono::seconds(10))
            return;  // it just sent it (a node that starts sends its state)
    }
    cluster_->request_state(node);
}

void Presence::node_gone(const std::string& node) {
    std::lock_guard lock(mu_);
    if (std::find(gone_.begin(), gone_.end(), node) == gone_.end()) {
        if (gone_.size() >= max_gone) gone_.erase(gone_.begin());
        gone_.push_back(node);
    }
    last_state_.erase(node);
    deliver_locked(whole_state(node, {}));
}

void Presence::deliver(std::shared_ptr<const News> news) {
    std::lock_guard lock(mu_);
    deliver_locked(news);
}

void Presence::deliver_locked(const std::shared_ptr<const News>& news) {
    // The watchers of each user and room the news names, each set taken once.
    std::unordered_set<std::uint64_t> users;
    std::unordered_set<std::string_view> rooms;
    for (auto& e : news->entries) {
        if (e.room.empty())
            users.insert(e.user);
        else
            rooms.insert(e.room);
    }
    std::unordered_set<ConnectionId> to;
    for (auto user : users)
        if (auto w = watchers_.find(user); w != watchers_.end())
            to.insert(w->second.begin(), w->second.end());
    for (auto room : rooms)
        if (auto w = room_watchers_.find(std::string(room)); w != room_watchers_.end())
            to.insert(w->second.begin(), w->second.end());
    if (news->whole) {
        // Also those who know a presence or a member there, or are asking.
        for (auto& [id, f] : followers_) {
            auto k = f.known.lower_bound({news->node, 0});
            if (f.following || (k != f.known.end() && k->first.first == news->node) ||
                knows_members_at(f, news->node))
                to.insert(id);
        }
    }
    // Posting only queues. Done under the lock, news is posted in the order it was taken.
    for (auto id : to)
        jobs_->with_connection(id, [weak = weak_from_this(), news](const Connection& c) {
            if (auto self = weak.lock()) self->on_news(c, news);
        });
}

void Presence::on_news(const Connection& c, const std::shared_ptr<const News>& news) {
    std::vector<Told> told;
    {
        std::lock_guard lock(mu_);
        auto it = followers_.find(c.id());
        if (it == followers_.end()) return;
        auto& f = it->second;
        if (!f.following) {
            apply(f, *news,
                  {[](std::uint64_t) { return true; }, [](const std::string&) { return true; }},
                  &told);
        } else {
            // A follow or join under way: news of its users or rooms waits for the answers.
            apply(f, *news,
                  {[&](std::uint64_t user) { return !f.pending.contains(user); },
                   [&](const std::string& room) { return !f.pending_rooms.contains(room); }},
                  &told);
            bool concerns = news->whole;
            for (auto& e : news->entries)
                concerns = concerns || (e.room.empty() ? f.pending.contains(e.user)
                                                       : f.pending_rooms.contains(e.room));
            if (concerns && f.held.size() < max_held) {
                f.held.push_back(news);
            } else if (concerns && !f.held_overflow) {
                // Too much to hold: the follow or join will fail. The users followed (and
                // rooms joined) before it catch up now and are no longer held; only the new
                // ones' news is dropped.
                f.held_overflow = true;
                std::unordered_set<std::uint64_t> before;
                for (auto user : f.pending)
                    if (!f.fresh.contains(user)) before.insert(user);
                std::set<std::string> rooms_before;
                for (auto& room : f.pending_rooms)
                    if (!f.fresh_rooms.contains(room)) rooms_before.insert(room);
                f.pending = f.fresh;
                f.pending_rooms = f.fresh_rooms;
                Scope old{[&](std::uint64_t user) { return before.contains(user); },
                          [&](const std::string& room) { return rooms_before.contains(room); }};
                for (auto& held : f.held) apply(f, *held, old, &told);
                apply(f, *news, old, &told);
                f.held.clear();
            }
        }
    }
    tell(c, told);
}

}  // namespace hawser::cloud::detail
