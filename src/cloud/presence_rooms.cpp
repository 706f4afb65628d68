// Presence (presence.hpp): rooms. A signed-in connection joins rooms (cloud.join), is answered
// with who is in each on every node, and is then told each member that joins or leaves
// (cloud.room pushes). A membership is an entry of this node's news, as a sign-in is.
#include <algorithm>

#include "cloud/presence.hpp"
#include "cloud/signed_in.hpp"
#include "hawser/cluster.hpp"

namespace hawser::cloud::detail {

namespace {

// Rooms in one join or leave: each room of a join is a question to every node.
constexpr std::size_t max_rooms_named = 16;

// An array of room names (named as channels are), without repeats, in the order given.
Result<std::vector<std::string>> read_rooms(DataFrame& arg) {
    auto rooms = arg.read_value();
    if (!rooms || !rooms->is<Array>() || rooms->as<Array>().size() > max_rooms_named)
        return Error{Errc::invalid_argument, "expected an array of at most " +
                                                 std::to_string(max_rooms_named) + " room names"};
    std::vector<std::string> out;
    for (auto& v : rooms->as<Array>()) {
        if (!v.is<std::string>() || !Cluster::valid_channel(v.as<std::string>()))
            return Error{Errc::invalid_argument,
                         "a room is named as a channel: 1 to 128 of letters, digits and \"-_:.\""};
        if (std::find(out.begin(), out.end(), v.as<std::string>()) == out.end())
            out.push_back(v.as<std::string>());
    }
    return out;
}

bool no_user(std::uint64_t) {
    return false;
}

}  // namespace

// --- the commands ---

void Presence::do_join(const Request& req, DataFrame arg, Reply reply) {
    auto rooms = read_rooms(arg);
    if (!rooms) return reply.fail(rooms.error().code, rooms.error().message);
    const auto& conn = req.connection();
    auto& me = conn.service_context<SignedIn>();
    // Each room of a join asks every node, as a follow does, and counts with follows.
    auto now = AttemptLimiter::Clock::now();
    for (std::size_t i = 0; i < std::max<std::size_t>(1, rooms->size()); ++i)
        if (!follows_per_user_.try_count(std::to_string(me.user), now))
            return reply.fail(Errc::rate_limited, "too many follows and joins; wait a minute");
    // A connection's memberships change on its IO thread, in order with its sign-out.
    jobs_->with_connection(
        conn.id(), [self = shared_from_this(), session = me.session, rooms = std::move(*rooms),
                    reply](const Connection& c) { self->start_join(c, session, rooms, reply); });
}

void Presence::start_join(const Connection& c, std::uint64_t session,
                          std::vector<std::string> rooms, Reply reply) {
    JobTicket ticket(*jobs_);
    if (!ticket) return reply.fail(Errc::shutting_down, "the cloud service stopped");
    auto& me = c.service_context<SignedIn>();
    if (me.session != session || !me.active())
        return reply.fail(Errc::unauthenticated, "signed out while joining");
    std::uint64_t epoch = 0;
    std::optional<Error> refused;
    {
        std::lock_guard lock(mu_);
        auto& f = followers_[c.id()];
        if (f.epoch == 0) f.epoch = next_epoch_++;
        std::set<std::string> fresh;
        for (auto& room : rooms)
            if (!f.rooms.contains(room)) fresh.insert(room);
        if (f.following) {
            refused = Error{Errc::too_many_pending, "a follow or join is already under way"};
        } else if (f.rooms.size() + fresh.size() > options_.max_rooms) {
            refused =
                Error{Errc::limit_exceeded, "a connection is in at most " +
                                                std::to_string(options_.max_rooms) + " rooms"};
        } else if (!fresh.empty() && room_views_ >= options_.max_room_views) {
            refused = Error{Errc::limit_exceeded,
                            "this node keeps as many members of rooms as it may (max_room_views)"};
        } else {
            // It watches the rooms from now on, and becomes a member once it is answered (a
            // room may be full): members_locked skips its fresh rooms until then.
            if (f.rooms.empty()) f.as = {me.user, me.name};
            for (auto& room : fresh) {
                f.rooms.insert(room);
                room_watchers_[room].insert(c.id());
            }
            f.pending_rooms = std::set<std::string>(rooms.begin(), rooms.end());
            f.fresh_rooms = std::move(fresh);
            f.following = true;
            epoch = f.epoch;
        }
        if (refused && f.idle()) followers_.erase(c.id());
    }
    if (refused) return reply.fail(refused->code, refused->message);
    if (!cluster_ || rooms.empty())
        return finish_join(c, epoch, rooms, CloudCluster::NodePresences{}, reply);
    // Asked from this IO thread, answered on it: the news posted meanwhile is held.
    auto asked = rooms;
    cluster_->members(std::move(asked),
                      [self = shared_from_this(), c, epoch, rooms = std::move(rooms),
                       reply](Result<CloudCluster::NodePresences> r) {
                          self->finish_join(c, epoch, rooms, std::move(r), reply);
                      });
}

void Presence::finish_join(const Connection& c, std::uint64_t epoch,
                           const std::vector<std::string>& rooms,
                           Result<CloudCluster::NodePresences> answers, const Reply& reply) {
    auto failed = unanswered(answers);
    Map out;
    std::vector<Told> told;
    std::vector<Entry> joined;
    {
        std::lock_guard lock(mu_);
        auto it = followers_.find(c.id());
        if (it == followers_.end() || it->second.epoch != epoch) {
            failed = Error{Errc::unauthenticated, "signed out while joining"};
        } else {
            auto& f = it->second;
            auto pending = std::move(f.pending_rooms);
            auto fresh = std::move(f.fresh_rooms);
            f.pending_rooms.clear();
            f.fresh_rooms.clear();
            auto [held, overflowed] = end_pending(f);
            if (overflowed)
                failed =
                    Error{Errc::overloaded, "their members changed too fast to list; try again"};
            auto mine = [&](const std::string& room) { return pending.contains(room); };
            // A room it enters must not be full (joins at the same moment may pass it together).
            for (auto& room : fresh) {
                if (failed) break;
                std::size_t n = 0;
                for (auto& [node, e] : *answers) n += node != node_ && e.room == room;
                if (auto w = room_watchers_.find(room); w != room_watchers_.end())
                    n += w->second.size();
                if (n > options_.max_room_members)
                    failed = Error{Errc::limit_exceeded,
                                   "room '" + room + "' has " +
                                       std::to_string(options_.max_room_members) + " members"};
            }
            if (!failed) {
                // What the member knew of these rooms is replaced by the answers (this node's
                // read now), then by what came since, in order, as a follow's.
                room_views_ -= std::erase_if(
                    f.members, [&](const auto& m) { return mine(std::get<0>(m.first)); });
                auto take = [&](const std::string& node, const Entry& e) {
                    if (e.room.empty() || !mine(e.room) || !f.rooms.contains(e.room)) return;
                    room_views_ += f.members
                                       .insert_or_assign(RoomKey{e.room, node, e.connection},
                                                         Member{e.user, e.name})
                                       .second;
                };
                for (auto& [node, e] : *answers)
                    if (node != node_) take(node, e);
                std::vector<std::string> asked(pending.begin(), pending.end());
                for (auto& e : members_locked(&asked)) take(node_, e);
                for (auto& news : held) apply(f, *news, {no_user, mine}, nullptr);
            }
            if (failed) {
                // The rooms this join entered are left (no one was told it joined); those
                // joined before it catch up on the news held for them, told as pushes.
                std::vector<Entry> untold;
                for (auto& room : fresh) leave_locked(c.id(), f, room, untold);
                for (auto& news : held) apply(f, *news, {no_user, mine}, &told);
            } else {
                for (auto& room : fresh)
                    if (f.rooms.contains(room))
                        joined.push_back({f.as.user, c.id(), true, room, f.as.name});
                for (auto& room : rooms) {
                    if (!f.rooms.contains(room)) {  // left while joining
                        out.insert_or_assign(room, Value());
                        continue;
                    }
                    Array members;
                    for (auto m = f.members.lower_bound({room, "", 0});
                         m != f.members.end() && std::get<0>(m->first) == room; ++m)
                        members.emplace_back(Array{
                            Value(m->second.name),
                            Value(presence_name({std::get<1>(m->first), std::get<2>(m->first)}))});
                    out.insert_or_assign(room, Value(std::move(members)));
                }
            }
            if (!joined.empty())
                deliver_locked(std::make_shared<const News>(News{node_, joined, false, {}, {}}));
            if (f.idle()) followers_.erase(it);
        }
    }
    send_later(std::move(joined));
    tell(c, told);
    if (failed) return reply.fail(failed->code, failed->message);
    DataFrame frame;
    frame << Value(std::move(out));
    reply.reply(std::move(frame));
}

void Presence::do_leave(const Request& req, DataFrame arg, Reply reply) {
    std::optional<std::vector<std::string>> rooms;  // none: every one
    if (!arg.at_end()) {
        auto read = read_rooms(arg);
        if (!read) return reply.fail(read.error().code, read.error().message);
        rooms = std::move(*read);
    }
    jobs_->with_connection(
        req.connection().id(),
        [self = shared_from_this(), rooms = std::move(rooms), reply](const Connection& c) {
            std::vector<Entry> left;
            std::uint64_t count = 0;
            {
                std::lock_guard lock(self->mu_);
                auto it = self->followers_.find(c.id());
                if (it != self->followers_.end()) {
                    auto& f = it->second;
                    auto which =
                        rooms ? *rooms : std::vector<std::string>(f.rooms.begin(), f.rooms.end());
                    for (auto& room : which) count += self->leave_locked(c.id(), f, room, left);
                    if (!left.empty())
                        self->deliver_locked(
                            std::make_shared<const News>(News{self->node_, left, false, {}, {}}));
                    if (f.idle()) self->followers_.erase(it);
                }
            }
            DataFrame out;
            out << count;
            self->send_later(std::move(left));
            reply.reply(std::move(out));
        });
}

bool Presence::leave_locked(ConnectionId id, Follower& f, const std::string& room,
                            std::vector<Entry>& left) {
    auto in = f.rooms.find(room);
    if (in == f.rooms.end()) return false;
    if (auto w = room_watchers_.find(room); w != room_watchers_.end()) {
        w->second.erase(id);
        if (w->second.empty()) room_watchers_.erase(w);
    }
    auto first = f.members.lower_bound({room, "", 0});
    auto end = f.members.lower_bound({room + '\0', "", 0});
    room_views_ -= std::distance(first, end);
    f.members.erase(first, end);
    f.pending_rooms.erase(room);
    if (f.fresh_rooms.erase(room) == 0) left.push_back({f.as.user, id, false, room, {}});
    f.rooms.erase(in);  // last: `room` may be this very name
    return true;
}

std::vector<Presence::Entry> Presence::members_here(const std::vector<std::string>* rooms) const {
    std::lock_guard lock(mu_);
    return members_locked(rooms);
}

std::vector<Presence::Entry> Presence::members_locked(const std::vector<std::string>* rooms) const {
    std::vector<Entry> out;
    auto add = [&](const std::string& room, const std::unordered_set<ConnectionId>& ids) {
        for (auto id : ids)
            if (auto f = followers_.find(id);
                f != followers_.end() && !f->second.fresh_rooms.contains(room))
                out.push_back({f->second.as.user, id, true, room, f->second.as.name});
    };
    if (!rooms) {
        for (auto& [room, ids] : room_watchers_) add(room, ids);
        return out;
    }
    for (auto& room : *rooms)
        if (auto w = room_watchers_.find(room); w != room_watchers_.end()) add(room, w->second);
    return out;
}

// --- how news changes a member's view of its rooms ---

void Presence::apply_rooms(Follower& f, const News& news,
                           const std::function<bool(const std::string&)>& mine,
                           std::vector<Told>* told) {
    if (f.rooms.empty()) return;
    auto relevant = [&](const std::string& room) { return f.rooms.contains(room) && mine(room); };
    auto say = [&](const RoomKey& key, const Member& m, bool joined) {
        if (told)
            told->push_back({m.name, presence_name({std::get<1>(key), std::get<2>(key)}), joined,
                             std::get<0>(key)});
    };
    auto now_in = [&](const Entry& e) {
        RoomKey key{e.room, news.node, e.connection};
        auto k = f.members.find(key);
        if (k != f.members.end() && k->second.user == e.user) return;
        if (k != f.members.end()) {  // it signed in as another user since
            say(key, k->second, false);
            f.members.erase(k);
            --room_views_;
        }
        // Another node's news is bounded as joins here are: past max_room_views, not kept.
        // (This node's own joins were admitted against it already.)
        if (news.node != node_ && room_views_ >= options_.max_room_views) return;
        auto& m = f.members.emplace(key, Member{e.user, e.name}).first->second;
        ++room_views_;
        say(key, m, true);
    };
    if (!news.whole) {
        for (auto& e : news.entries) {
            if (e.room.empty() || !relevant(e.room)) continue;
            if (e.online) {
                now_in(e);
            } else if (auto k = f.members.find({e.room, news.node, e.connection});
                       k != f.members.end() && k->second.user == e.user) {
                say(k->first, k->second, false);
                f.members.erase(k);
                --room_views_;
            }
        }
        return;
    }
    // Room by room: the node's members known here that its state no longer holds, then those
    // it holds.
    for (auto& room : f.rooms) {
        if (!mine(room)) continue;
        auto held = news.by_room.find(room);
        for (auto k = f.members.lower_bound({room, news.node, 0});
             k != f.members.end() && std::get<0>(k->first) == room &&
             std::get<1>(k->first) == news.node;) {
            if (held == news.by_room.end() || !held->second.contains(std::get<2>(k->first))) {
                say(k->first, k->second, false);
                k = f.members.erase(k);
                --room_views_;
            } else {
                ++k;
            }
        }
        if (held != news.by_room.end())
            for (auto& [_, e] : held->second) now_in(*e);
    }
}

bool Presence::knows_members_at(const Follower& f, const std::string& node) {
    for (auto& room : f.rooms)
        if (auto k = f.members.lower_bound({room, node, 0});
            k != f.members.end() && std::get<0>(k->first) == room && std::get<1>(k->first) == node)
            return true;
    return false;
}

}  // namespace hawser::cloud::detail
