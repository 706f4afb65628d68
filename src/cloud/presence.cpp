// Presence (presence.hpp): the follow and unfollow commands, and how news changes a follower's
// view. How news arrives and is sent is in presence_news.cpp.
#include "cloud/presence.hpp"

#include <algorithm>
#include <chrono>

#include "cloud/accounts.hpp"
#include "cloud/signed_in.hpp"
#include "cloud/weak_command.hpp"

namespace hawser::cloud::detail {

namespace {

constexpr std::size_t max_names = 100;  // in one follow or unfollow
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
    add_weak_command(commands, weak, Cloud::join_command, &Presence::do_join);
    add_weak_command(commands, weak, Cloud::leave_command, &Presence::do_leave);
}

void Presence::join(std::shared_ptr<CloudCluster> cluster, std::string node) {
    cluster_ = std::move(cluster);
    node_ = std::move(node);
}

std::size_t Presence::followers() const {
    std::lock_guard lock(mu_);
    return followers_.size();
}

std::size_t Presence::room_views() const {
    std::lock_guard lock(mu_);
    return room_views_;
}

// --- the commands ---

void Presence::do_follow(const Request& req, DataFrame arg, Reply reply) {
    auto names = read_names(arg);
    if (!names) return reply.fail(names.error().code, names.error().message);
    const auto& conn = req.connection();
    auto me = conn.service_context<SignedIn>().user;
    auto session = conn.service_context<SignedIn>().session;
    // Each name is a look-up in the store and each follow a question to every node.
    if (!follows_per_user_.try_count(std::to_string(me), AttemptLimiter::Clock::now()))
        return reply.fail(Errc::rate_limited, "too many follows; wait a minute");
    bool busy;
    {
        std::lock_guard lock(mu_);
        auto f = followers_.find(conn.id());
        busy = f != followers_.end() && f->second.following;
    }
    // Replies go out with no lock held: a reply that overfills the send queue closes the
    // connection at once, and its close comes back here.
    if (busy) return reply.fail(Errc::too_many_pending, "a follow or join is already under way");
    jobs_->post_for(reply, [self = shared_from_this(), names = std::move(*names), conn, me, session,
                            reply] {
        Resolved resolved;
        for (auto& name : names) {
            auto user = self->directory_.find_user(name);
            if (!user) return reply.fail(user.error().code, user.error().message);
            resolved.emplace_back(name, std::move(*user));
        }
        self->jobs_->with_connection(conn.id(), [self, me, session, resolved = std::move(resolved),
                                                 reply](const Connection& c) {
            self->start_follow(c, me, session, resolved, reply);
        });
    });
}

void Presence::start_follow(const Connection& c, std::uint64_t me, std::uint64_t session,
                            Resolved resolved, Reply reply) {
    JobTicket ticket(*jobs_);
    if (!ticket) return reply.fail(Errc::shutting_down, "the cloud service stopped");
    auto& signed_in = c.service_context<SignedIn>();
    if (signed_in.user != me || signed_in.session != session || !signed_in.active())
        return reply.fail(Errc::unauthenticated, "signed out while following");
    std::vector<std::uint64_t> users;
    std::uint64_t epoch = 0;
    std::optional<Error> refused;
    {
        std::lock_guard lock(mu_);
        auto& f = followers_[c.id()];
        if (f.epoch == 0) f.epoch = next_epoch_++;
        std::unordered_set<std::uint64_t> fresh;
        for (auto& [_, user] : resolved)
            if (user && !f.follows.contains(user->first)) fresh.insert(user->first);
        if (f.following) {
            refused = Error{Errc::too_many_pending, "a follow or join is already under way"};
        } else if (f.follows.size() + fresh.size() > options_.max_follows) {
            refused =
                Error{Errc::limit_exceeded, "a connection follows at most " +
                                                std::to_string(options_.max_follows) + " users"};
            if (f.idle()) followers_.erase(c.id());
        } else {
            for (auto& [_, user] : resolved) {
                if (!user) continue;
                if (fresh.contains(user->first)) watchers_[user->first].insert(c.id());
                f.follows[user->first] = user->second;
                if (f.pending.insert(user->first).second) users.push_back(user->first);
            }
            f.fresh = std::move(fresh);
            f.following = true;
            epoch = f.epoch;
        }
    }
    if (refused) return reply.fail(refused->code, refused->message);
    if (!cluster_ || users.empty())
        return finish_follow(c, epoch, resolved, CloudCluster::NodePresences{}, reply);
    // Asked from this IO thread, answered on it: the news posted meanwhile is held.
    cluster_->presences(users, [self = shared_from_this(), c, epoch, resolved,
                                reply](Result<CloudCluster::NodePresences> r) {
        self->finish_follow(c, epoch, resolved, std::move(r), reply);
    });
}

void Presence::finish_follow(const Connection& c, std::uint64_t epoch, const Resolved& resolved,
                             Result<CloudCluster::NodePresences> answers, const Reply& reply) {
    auto failed = unanswered(answers);
    Map out;
    std::vector<Told> told;
    {
        std::lock_guard lock(mu_);
        auto it = followers_.find(c.id());
        if (it == followers_.end() || it->second.epoch != epoch) {
            failed = Error{Errc::unauthenticated, "signed out while following"};
        } else {
            auto& f = it->second;
            auto pending = std::move(f.pending);
            auto fresh = std::move(f.fresh);
            f.pending.clear();
            f.fresh.clear();
            auto [held, overflowed] = end_pending(f);
            if (overflowed)
                failed = Error{Errc::overloaded,
                               "their presences changed too fast to follow; try again"};
            if (failed) {
                // The users this follow added are not followed; those followed before it
                // catch up on the news held for them, told as pushes.
                for (auto user : fresh) {
                    f.follows.erase(user);
                    unwatch_locked(c.id(), user);
                }
                Scope before{[&](std::uint64_t user) { return pending.contains(user); },
                             [](const std::string&) { return false; }};
                for (auto& news : held) apply(f, *news, before, &told);
            } else {
                auto mine = [&](std::uint64_t user) { return pending.contains(user); };
                // What the follower knew of these users is replaced by the answers (this
                // node's read now), then by what came since, in order: the answers may be
                // older than some of it, never newer than the rest.
                std::erase_if(f.known, [&](const auto& k) { return mine(k.second); });
                auto take = [&](const std::string& node, const Entry& e) {
                    if (!mine(e.user) || !f.follows.contains(e.user)) return;
                    Key key{node, e.connection};
                    // Known as another user's, not asked about: that one left it.
                    if (auto k = f.known.find(key); k != f.known.end() && k->second != e.user) {
                        told.push_back({f.follows[k->second], presence_name(key), false});
                        f.known.erase(k);
                    }
                    f.known[key] = e.user;
                };
                for (auto& [node, e] : *answers)
                    if (node != node_) take(node, e);
                std::vector<std::uint64_t> users(pending.begin(), pending.end());
                for (auto& e : directory_.here(&users)) take(node_, e);
                Scope held_for{mine, [](const std::string&) { return false; }};
                for (auto& news : held) apply(f, *news, held_for, nullptr);
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
            if (f.idle()) followers_.erase(it);
        }
    }
    tell(c, told);
    if (failed) return reply.fail(failed->code, failed->message);
    DataFrame frame;
    frame << Value(std::move(out));
    reply.reply(std::move(frame));
}

std::pair<std::vector<std::shared_ptr<const Presence::News>>, bool> Presence::end_pending(
    Follower& f) {
    auto held = std::move(f.held);
    f.held.clear();
    bool overflowed = std::exchange(f.held_overflow, false);
    f.following = false;
    return {std::move(held), overflowed};
}

std::optional<Error> Presence::unanswered(Result<CloudCluster::NodePresences>& answers) {
    if (answers) return std::nullopt;
    // Without NATS this node's answer stands, as cloud.who's.
    if (answers.error().code == Errc::cluster_unavailable) {
        answers = CloudCluster::NodePresences{};
        return std::nullopt;
    }
    return answers.error();
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
            std::unordered_set<std::uint64_t> gone;
            for (auto user = f.follows.begin(); user != f.follows.end();) {
                if (names && !keys.contains(Accounts::key_of(user->second))) {
                    ++user;
                    continue;
                }
                gone.insert(user->first);
                f.pending.erase(user->first);
                f.fresh.erase(user->first);
                unwatch_locked(it->first, user->first);
                user = f.follows.erase(user);
            }
            std::erase_if(f.known, [&](const auto& k) { return gone.contains(k.second); });
            removed = gone.size();
            if (f.idle()) followers_.erase(it);
        }
    }
    DataFrame out;
    out << removed;
    reply.reply(std::move(out));
}

void Presence::forget(ConnectionId follower) {
    std::vector<Entry> left;
    {
        std::lock_guard lock(mu_);
        auto it = followers_.find(follower);
        if (it == followers_.end()) return;
        auto& f = it->second;
        for (auto& [user, _] : f.follows) unwatch_locked(follower, user);
        while (!f.rooms.empty()) leave_locked(follower, f, *f.rooms.begin(), left);
        followers_.erase(it);
        if (!left.empty())
            deliver_locked(std::make_shared<const News>(News{node_, left, false, {}, {}}));
    }
    send_later(std::move(left));
}

void Presence::unwatch_locked(ConnectionId follower, std::uint64_t user) {
    auto w = watchers_.find(user);
    if (w == watchers_.end()) return;
    w->second.erase(follower);
    if (w->second.empty()) watchers_.erase(w);
}

void Presence::apply(Follower& f, const News& news, const Scope& mine, std::vector<Told>* told) {
    apply_rooms(f, news, mine.room, told);
    if (f.follows.empty()) return;
    auto relevant = [&](std::uint64_t user) { return f.follows.contains(user) && mine.user(user); };
    auto say = [&](const Key& key, std::uint64_t user, bool online) {
        if (told && f.follows.contains(user))
            told->push_back({f.follows[user], presence_name(key), online});
    };
    // `key` is `user`'s now (a connection may have signed in as someone else meanwhile).
    auto now_online = [&](const Key& key, std::uint64_t user) {
        auto k = f.known.find(key);
        if (k != f.known.end() && k->second == user) return;
        if (k != f.known.end()) {
            say(key, k->second, false);
            f.known.erase(k);
        }
        f.known.emplace(key, user);
        say(key, user, true);
    };
    if (!news.whole) {
        for (auto& e : news.entries) {
            if (!e.room.empty() || !relevant(e.user)) continue;
            Key key{news.node, e.connection};
            if (e.online) {
                now_online(key, e.user);
            } else if (auto k = f.known.find(key); k != f.known.end() && k->second == e.user) {
                say(key, e.user, false);
                f.known.erase(k);
            }
        }
        return;
    }
    // The node's presences known here that its state no longer holds (for the same user).
    for (auto k = f.known.lower_bound({news.node, 0});
         k != f.known.end() && k->first.first == news.node;) {
        auto held = news.by_user.find(k->second);
        bool still = held != news.by_user.end() &&
                     std::find(held->second.begin(), held->second.end(), k->first.second) !=
                         held->second.end();
        if (relevant(k->second) && !still) {
            say(k->first, k->second, false);
            k = f.known.erase(k);
        } else {
            ++k;
        }
    }
    // What it holds of the users followed, by the shorter way.
    auto add = [&](std::uint64_t user, ConnectionId connection) {
        if (relevant(user)) now_online({news.node, connection}, user);
    };
    if (news.entries.size() <= f.follows.size()) {
        for (auto& e : news.entries)
            if (e.room.empty()) add(e.user, e.connection);
    } else {
        std::vector<std::uint64_t> users;
        for (auto& [user, _] : f.follows) users.push_back(user);
        for (auto user : users)
            if (auto held = news.by_user.find(user); held != news.by_user.end())
                for (auto connection : held->second) add(user, connection);
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
        if (!t.room.empty()) df << t.room;
        df << t.name << t.online << t.presence;
        (void)c.send(t.room.empty() ? Cloud::presence_push : Cloud::room_push, df);
    }
}

}  // namespace hawser::cloud::detail
