#include "cloud/presence.hpp"

#include <algorithm>
#include <chrono>

#include "cloud/accounts.hpp"
#include "cloud/signed_in.hpp"
#include "cloud/weak_command.hpp"

namespace hawser::cloud::detail {

namespace {

constexpr std::size_t max_names = 100;  // in one follow or unfollow
// News a follower holds while its follow is under way (about 2 s at most); past it the follow
// fails overloaded rather than hold more.
constexpr std::size_t max_held = 4096;

Result<std::vector<std::string>> read_names(DataFrame& arg) {
    auto names = arg.read_value();
    if (!names || !names->is<Array>() || names->as<Array>().size() > max_names)
        return Error{Errc::invalid_argument,
                     "expected an array of at most " + std::to_string(max_names) + " usernames"};
    std::vector<std::string> out;
    for (auto& v : names->as<Array>()) {
        if (!v.is<std::string>()) return Error{Errc::invalid_argument, "usernames are strings"};
        out.push_back(v.as<std::string>());
    }
    return out;
}

}  // namespace

Presence::Presence(std::shared_ptr<Jobs> jobs, const CloudOptions& options, Directory directory)
    : jobs_(std::move(jobs)),
      options_(options),
      directory_(std::move(directory)),
      follows_per_user_(options.messages_per_minute, std::chrono::minutes(1), options.max_tracked) {
}

void Presence::add_commands(Commands& commands) {
    std::weak_ptr<Presence> weak = weak_from_this();
    add_weak_command(commands, weak, Cloud::follow_command, &Presence::do_follow);
    add_weak_command(commands, weak, Cloud::unfollow_command, &Presence::do_unfollow);
}

void Presence::join(std::shared_ptr<CloudCluster> cluster, std::string node) {
    cluster_ = std::move(cluster);
    node_ = std::move(node);
}

std::size_t Presence::followers() const {
    std::lock_guard lock(mu_);
    return followers_.size();
}

// --- the commands ---

void Presence::do_follow(const Request& req, DataFrame arg, Reply reply) {
    auto names = read_names(arg);
    if (!names) return reply.fail(names.error().code, names.error().message);
    const auto& conn = req.connection();
    auto me = conn.service_context<SignedIn>().user;
    // Each name is a look-up in the store and each follow a question to every node: it counts
    // as cloud.who does.
    if (!follows_per_user_.try_count(std::to_string(me), AttemptLimiter::Clock::now()))
        return reply.fail(Errc::rate_limited, "too many requests; wait a minute");
    {
        std::lock_guard lock(mu_);
        if (auto f = followers_.find(conn.id()); f != followers_.end() && f->second.following)
            return reply.fail(Errc::too_many_pending, "a follow is already under way");
    }
    jobs_->post_for(reply, [self = shared_from_this(), names = std::move(*names), conn, me, reply] {
        Resolved resolved;
        for (auto& name : names) {
            auto user = self->directory_.find_user(name);
            if (!user) return reply.fail(user.error().code, user.error().message);
            resolved.emplace_back(name, std::move(*user));
        }
        self->jobs_->with_connection(
            conn.id(), [self, me, resolved = std::move(resolved), reply](const Connection& c) {
                self->start_follow(c, me, resolved, reply);
            });
    });
}

void Presence::start_follow(const Connection& c, std::uint64_t me, Resolved resolved, Reply reply) {
    auto& signed_in = c.service_context<SignedIn>();
    if (signed_in.user != me || !signed_in.active())
        return reply.fail(Errc::unauthenticated, "signed out while following");
    std::vector<std::uint64_t> users;
    std::uint64_t epoch;
    {
        std::lock_guard lock(mu_);
        auto& f = followers_[c.id()];
        if (f.epoch == 0) f.epoch = next_epoch_++;
        if (f.following) return reply.fail(Errc::too_many_pending, "a follow is already under way");
        std::unordered_set<std::uint64_t> fresh;
        for (auto& [_, user] : resolved)
            if (user && !f.follows.contains(user->first)) fresh.insert(user->first);
        if (f.follows.size() + fresh.size() > options_.max_follows) {
            if (f.follows.empty()) followers_.erase(c.id());
            return reply.fail(
                Errc::limit_exceeded,
                "a connection follows at most " + std::to_string(options_.max_follows) + " users");
        }
        for (auto& [_, user] : resolved) {
            if (!user) continue;
            if (fresh.contains(user->first)) watchers_[user->first].push_back(c.id());
            f.follows[user->first] = user->second;
            if (f.pending.insert(user->first).second) users.push_back(user->first);
        }
        f.following = true;
        epoch = f.epoch;
    }
    auto here = [this, users] {
        std::vector<std::pair<std::string, Entry>> out;
        for (auto& e : directory_.here(&users)) out.emplace_back(node_, e);
        return out;
    };
    if (!cluster_ || users.empty()) return finish_follow(c, epoch, resolved, here(), reply);
    // Asked from this IO thread, answered on it: the news posted meanwhile is held.
    cluster_->presences(users, [self = shared_from_this(), c, epoch, resolved, reply,
                                here](Result<CloudCluster::NodePresences> r) {
        // Without NATS, this node's answer stands (as cloud.who's).
        self->finish_follow(c, epoch, resolved, r ? *r : here(), reply);
    });
}

void Presence::finish_follow(const Connection& c, std::uint64_t epoch, const Resolved& resolved,
                             const std::vector<std::pair<std::string, Entry>>& snapshot,
                             const Reply& reply) {
    Map out;
    {
        std::lock_guard lock(mu_);
        auto it = followers_.find(c.id());
        if (it == followers_.end() || it->second.epoch != epoch)
            return reply.fail(Errc::unauthenticated, "signed out while following");
        auto& f = it->second;
        auto pending = std::move(f.pending);
        auto held = std::move(f.held);
        bool overflow = f.held_overflow;
        f.pending.clear();
        f.held.clear();
        f.held_overflow = false;
        f.following = false;
        auto mine = [&](std::uint64_t user) { return pending.contains(user); };
        // What the follower knew of these users is replaced by the answer, then by what came
        // since, in order: the answer may be older than some of it, never newer than the rest.
        std::erase_if(f.known, [&](const auto& k) { return mine(k.second); });
        if (overflow) {
            for (auto user : pending) {
                f.follows.erase(user);
                unwatch_locked(c.id(), user);
            }
            return reply.fail(Errc::overloaded,
                              "their presences changed too fast to follow; try again");
        }
        for (auto& [node, e] : snapshot)
            if (mine(e.user) && f.follows.contains(e.user)) f.known[{node, e.connection}] = e.user;
        for (auto& news : held) apply(f, *news, mine, nullptr);
        for (auto& [asked, user] : resolved) {
            if (!user || !f.follows.contains(user->first)) {
                out.insert_or_assign(asked, Value());
                continue;
            }
            Array presences;
            for (auto& [key, whose] : f.known)
                if (whose == user->first) presences.emplace_back(presence_name(key));
            out.insert_or_assign(asked, Value(std::move(presences)));
        }
    }
    DataFrame frame;
    frame << Value(std::move(out));
    reply.reply(std::move(frame));
}

void Presence::do_unfollow(const Request& req, DataFrame arg, Reply reply) {
    std::optional<std::vector<std::string>> names;  // none: every one
    if (!arg.at_end()) {
        auto read = read_names(arg);
        if (!read) return reply.fail(read.error().code, read.error().message);
        names = std::move(*read);
    }
    std::unordered_set<std::string> keys;
    if (names)
        for (auto& n : *names) keys.insert(Accounts::key_of(n));
    std::uint64_t removed = 0;
    {
        std::lock_guard lock(mu_);
        auto it = followers_.find(req.connection().id());
        if (it != followers_.end()) {
            auto& f = it->second;
            for (auto user = f.follows.begin(); user != f.follows.end();) {
                if (names && !keys.contains(Accounts::key_of(user->second))) {
                    ++user;
                    continue;
                }
                auto id = user->first;
                std::erase_if(f.known, [id](const auto& k) { return k.second == id; });
                f.pending.erase(id);
                unwatch_locked(it->first, id);
                user = f.follows.erase(user);
                ++removed;
            }
            if (f.follows.empty() && !f.following) followers_.erase(it);
        }
    }
    DataFrame out;
    out << removed;
    reply.reply(std::move(out));
}

void Presence::forget(ConnectionId follower) {
    std::lock_guard lock(mu_);
    auto it = followers_.find(follower);
    if (it == followers_.end()) return;
    for (auto& [user, _] : it->second.follows) unwatch_locked(follower, user);
    followers_.erase(it);
}

void Presence::unwatch_locked(ConnectionId follower, std::uint64_t user) {
    auto w = watchers_.find(user);
    if (w == watchers_.end()) return;
    std::erase(w->second, follower);
    if (w->second.empty()) watchers_.erase(w);
}

// --- news ---

void Presence::changed(ConnectionId connection, std::uint64_t user, bool online) {
    deliver(std::make_shared<const News>(News{node_, {{user, connection, online}}, false}));
    if (!cluster_) return;
    bool post;
    {
        std::lock_guard lock(outgoing_mu_);
        outgoing_.push_back({user, connection, online});
        post = !flush_posted_;
        flush_posted_ = true;
    }
    // Sent on the next turn of this loop: changes that come together leave together.
    if (post)
        jobs_->host().post_user(connection & 0xff, "cloud presence", [weak = weak_from_this()] {
            if (auto self = weak.lock()) self->flush_changes();
        });
}

void Presence::flush_changes() {
    std::lock_guard publishing(publish_mu_);
    std::vector<Entry> batch;
    {
        std::lock_guard lock(outgoing_mu_);
        batch.swap(outgoing_);
        flush_posted_ = false;
    }
    if (!batch.empty()) cluster_->presence_changes(batch);
}

void Presence::send_state(bool ask_others) {
    if (!cluster_) return;
    std::lock_guard publishing(publish_mu_);
    std::vector<Entry> batch;
    {
        std::lock_guard lock(outgoing_mu_);
        batch.swap(outgoing_);
        flush_posted_ = false;
    }
    if (!batch.empty()) cluster_->presence_changes(batch);
    // Read after the changes went: it holds them all, and later ones follow it.
    cluster_->presence_state(directory_.here(nullptr), ask_others);
}

void Presence::changed_elsewhere(const std::string& node, std::vector<Entry> entries, bool whole) {
    deliver(std::make_shared<const News>(News{node, std::move(entries), whole}));
}

void Presence::node_gone(const std::string& node) {
    deliver(std::make_shared<const News>(News{node, {}, true}));
}

void Presence::deliver(std::shared_ptr<const News> news) {
    std::vector<ConnectionId> to;
    {
        std::lock_guard lock(mu_);
        if (news->whole) {  // may concern anyone who knows one of that node's presences
            for (auto& [id, _] : followers_) to.push_back(id);
        } else {
            for (auto& e : news->entries)
                if (auto w = watchers_.find(e.user); w != watchers_.end())
                    to.insert(to.end(), w->second.begin(), w->second.end());
            std::sort(to.begin(), to.end());
            to.erase(std::unique(to.begin(), to.end()), to.end());
        }
    }
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
            apply(
                f, *news, [](std::uint64_t) { return true; }, &told);
        } else {
            // A follow under way: news of its users waits for the answer.
            apply(
                f, *news, [&](std::uint64_t user) { return !f.pending.contains(user); }, &told);
            bool concerns = news->whole;
            for (auto& e : news->entries) concerns = concerns || f.pending.contains(e.user);
            if (concerns) {
                if (f.held.size() < max_held)
                    f.held.push_back(news);
                else
                    f.held_overflow = true;
            }
        }
    }
    tell(c, told);
}

template <class Mine>
void Presence::apply(Follower& f, const News& news, Mine mine, std::vector<Told>* told) {
    auto relevant = [&](std::uint64_t user) { return f.follows.contains(user) && mine(user); };
    auto say = [&](const Key& key, std::uint64_t user, bool online) {
        if (told) told->push_back({f.follows[user], presence_name(key), online});
    };
    if (news.whole) {
        std::map<Key, std::uint64_t> now;
        for (auto& e : news.entries)
            if (relevant(e.user)) now[{news.node, e.connection}] = e.user;
        for (auto k = f.known.begin(); k != f.known.end();) {
            if (k->first.first == news.node && relevant(k->second) && !now.contains(k->first)) {
                say(k->first, k->second, false);
                k = f.known.erase(k);
            } else {
                ++k;
            }
        }
        for (auto& [key, user] : now)
            if (f.known.emplace(key, user).second) say(key, user, true);
        return;
    }
    for (auto& e : news.entries) {
        if (!relevant(e.user)) continue;
        Key key{news.node, e.connection};
        if (e.online && f.known.emplace(key, e.user).second) say(key, e.user, true);
        if (!e.online && f.known.erase(key)) say(key, e.user, false);
    }
}

std::string Presence::presence_name(const Key& key) {
    auto id = std::to_string(key.second);
    return key.first.empty() ? id : id + "@" + key.first;
}

void Presence::tell(const Connection& c, const std::vector<Told>& told) {
    // Not skipped when the follower is congested: a missed change would leave its view wrong
    // for good. Its send queue's hard limit bounds what waits, and closes it past that.
    for (auto& t : told) {
        DataFrame df;
        df << t.name << t.online << t.presence;
        (void)c.send(Cloud::presence_push, df);
    }
}

}  // namespace hawser::cloud::detail
