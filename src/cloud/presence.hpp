// Presence: a signed-in user follows others (cloud.follow) and is told when each of their
// connections, on any node, comes online or goes offline (cloud.presence pushes); docs/cloud.md,
// "Presence". A presence is one signed-in connection, named "<connection>@<node>" (on a
// cluster) or "<connection>".
//
// Rooms (presence_rooms.cpp; docs/cloud.md, "Rooms"): a signed-in connection joins rooms
// (cloud.join) and is told who is in each, then each member that joins or leaves
// (cloud.room pushes). A membership is news as a presence is (an entry with the room), so it
// crosses nodes, is held during a join and is put right by whole states the same way.
//
// How a follower's view stays true: this node is told every change of a followed user's
// presences (its own changes by the online registry, other nodes' by their notices, in each
// node's order), and keeps per follower what it has told it. A follow registers first, then
// asks every node for the users' presences; changes that come meanwhile are held and replayed
// over the answer, so a change is never lost between the answer and the pushes. A node that is
// gone takes its presences with it (and its late changes are ignored until its next whole
// state); a node that joins is asked for its whole state; a node whose notices may have been
// lost sends its whole state and asks for the others'; a whole state replaces what was known
// of its node.
//
// Ownership: shared by the Cloud; commands, posted work and the cluster hold it weakly.
// Thread affinity: a follower's state changes on its connection's IO thread (its commands, and
// the news posted there); the registry's observer and the cluster's notices arrive on any
// thread. One mutex guards the followers; another orders this node's notices.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cloud/attempt_limiter.hpp"
#include "cloud/cloud_cluster.hpp"
#include "cloud/jobs.hpp"
#include "hawser/cloud/cloud.hpp"
#include "hawser/commands.hpp"

namespace hawser::cloud::detail {

class Presence : public std::enable_shared_from_this<Presence> {
  public:
    using Entry = CloudCluster::PresenceEntry;
    struct Directory {
        // A user's id and name as registered, by name; nullopt for no such user. Worker pool.
        std::function<Result<std::optional<std::pair<std::uint64_t, std::string>>>(
            std::string_view name)>
            find_user;
        // This node's signed-in connections: of `users`, or all of them (null). Any thread.
        std::function<std::vector<Entry>(const std::vector<std::uint64_t>* users)> here;
    };

    Presence(std::shared_ptr<Jobs> jobs, const CloudOptions& options, Directory directory);

    void add_commands(Commands& commands);
    // On a cluster: changes cross nodes, follows ask every node. Before the server starts.
    void join(std::shared_ptr<CloudCluster> cluster, std::string node);

    // This node's connection of `user` came online (its login or resume succeeded) or went
    // offline. The online registry's observer: any thread, in each connection's order.
    void changed(ConnectionId connection, std::uint64_t user, bool online);
    // This node's members of `rooms`, or of every room (null). Any thread.
    std::vector<Entry> members_here(const std::vector<std::string>* rooms) const;
    // Another node's changes, or its whole state. NATS threads.
    void changed_elsewhere(const std::string& node, std::vector<Entry> entries, bool whole);
    void node_joined(const std::string& node);
    void node_gone(const std::string& node);
    // Tells the other nodes this node's whole state (and asks for theirs), on the worker pool:
    // requests that come together are sent once.
    void send_state(bool ask_others);
    // The connection's follows end, and it leaves its rooms (it signed out, switched user or
    // closed). Any thread.
    void forget(ConnectionId follower);

    std::size_t followers() const;
    std::size_t room_views() const;

  private:
    using Reply = Responder<DataFrame>;
    // News a follower holds while its follow is under way (about 2 s at most); past it the
    // follow fails overloaded rather than hold more.
    static constexpr std::size_t max_held = 4096;
    // What a follower's view changes by: presences (and room members) of one node that
    // changed, or that node's whole set (`whole`; empty for a node that is gone).
    struct News {
        std::string node;
        std::vector<Entry> entries;
        bool whole = false;
        // A whole state's signed-in connections by user, and its room members by room (views
        // into entries).
        std::unordered_map<std::uint64_t, std::vector<ConnectionId>> by_user;
        std::unordered_map<std::string_view, std::unordered_map<ConnectionId, const Entry*>>
            by_room;
    };
    static std::shared_ptr<const News> whole_state(std::string node, std::vector<Entry> entries);
    using Key = std::pair<std::string, ConnectionId>;  // a presence: node, connection
    using RoomKey = std::tuple<std::string, std::string, ConnectionId>;  // room, node, connection
    struct Member {
        std::uint64_t user = 0;
        std::string name;
    };
    struct Follower {
        std::uint64_t epoch = 0;                                 // a new one per follower entry
        std::unordered_map<std::uint64_t, std::string> follows;  // user -> name as registered
        std::map<Key, std::uint64_t> known;                      // told online -> its user
        // The rooms it is in, as whom, and the members it was told of.
        std::set<std::string> rooms;
        Member as;
        std::map<RoomKey, Member> members;
        // A follow or join under way: its users or rooms (`fresh`: not followed or joined
        // before it), and the news about them that came meanwhile.
        bool following = false;
        std::unordered_set<std::uint64_t> pending, fresh;
        std::set<std::string> pending_rooms, fresh_rooms;
        std::vector<std::shared_ptr<const News>> held;
        bool held_overflow = false;

        bool idle() const { return follows.empty() && rooms.empty() && !following; }
    };
    struct Told {
        std::string name, presence;
        bool online;
        std::string room;  // empty: a presence of a followed user
    };
    // Which followed users and joined rooms news may change.
    struct Scope {
        std::function<bool(std::uint64_t)> user;
        std::function<bool(const std::string&)> room;
    };
    // A follow's names, as asked, and whom they name.
    using Resolved =
        std::vector<std::pair<std::string, std::optional<std::pair<std::uint64_t, std::string>>>>;

    void do_follow(const Request& req, DataFrame arg, Reply reply);
    void do_unfollow(const Request& req, DataFrame arg, Reply reply);
    void start_follow(const Connection& c, std::uint64_t me, std::uint64_t session,
                      Resolved resolved, Reply reply);
    // The nodes' answers (this node's own read now), or why there are none.
    void finish_follow(const Connection& c, std::uint64_t epoch, const Resolved& resolved,
                       Result<CloudCluster::NodePresences> answers, const Reply& reply);

    // Posts news to the followers that may care, each on its IO thread.
    void deliver(std::shared_ptr<const News> news);
    void deliver_locked(const std::shared_ptr<const News>& news);
    void on_news(const Connection& c, const std::shared_ptr<const News>& news);
    // A follow or join under way ends: its held news, and whether more came than it could hold.
    static std::pair<std::vector<std::shared_ptr<const News>>, bool> end_pending(Follower& f);
    // The nodes' answers to a follow or join: without NATS, none (this node's read stands);
    // another failure is the error the follow or join fails with.
    static std::optional<Error> unanswered(Result<CloudCluster::NodePresences>& answers);
    // Applies news to a follower's view for the users and rooms `mine` picks; `told` gets what
    // changed. presence.cpp (rooms: presence_rooms.cpp); the rest of the news in
    // presence_news.cpp.
    // Under mu_ (apply_rooms counts room_views_).
    void apply(Follower& f, const News& news, const Scope& mine, std::vector<Told>* told);
    void apply_rooms(Follower& f, const News& news,
                     const std::function<bool(const std::string&)>& mine, std::vector<Told>* told);
    static std::string presence_name(const Key& key);
    static void tell(const Connection& c, const std::vector<Told>& told);
    void unwatch_locked(ConnectionId follower, std::uint64_t user);

    // Rooms (presence_rooms.cpp).
    void do_join(const Request& req, DataFrame arg, Reply reply);
    void do_leave(const Request& req, DataFrame arg, Reply reply);
    void start_join(const Connection& c, std::uint64_t session, std::vector<std::string> rooms,
                    Reply reply);
    void finish_join(const Connection& c, std::uint64_t epoch,
                     const std::vector<std::string>& rooms,
                     Result<CloudCluster::NodePresences> answers, const Reply& reply);
    // The connection leaves `room` (false: it was not in it). Its entry goes into `left`, for
    // send_later once the lock is let go, unless its join was never told (still under way).
    bool leave_locked(ConnectionId id, Follower& f, const std::string& room,
                      std::vector<Entry>& left);
    std::vector<Entry> members_locked(const std::vector<std::string>* rooms) const;
    // Whether `f` knows a member of one of its rooms on `node`.
    static bool knows_members_at(const Follower& f, const std::string& node);
    // This node's changes: told to its own followers now (under mu_), to the other nodes later
    // (send_later, with no lock held: it may publish).
    void send_later(std::vector<Entry> entries);
    void flush_changes();                // this node's changes to the others, in order
    std::vector<Entry> take_outgoing();  // under publish_mu_
    void post_state();                   // send_state's job, now
    void send_state_now();

    const std::shared_ptr<Jobs> jobs_;
    const CloudOptions options_;
    const Directory directory_;
    std::shared_ptr<CloudCluster> cluster_;  // set before start, read-only after
    std::string node_;                       // this node's name on a cluster, or ""
    AttemptLimiter follows_per_user_;

    mutable std::mutex mu_;
    std::unordered_map<ConnectionId, Follower> followers_;
    std::unordered_map<std::uint64_t, std::unordered_set<ConnectionId>> watchers_;  // by user
    // This node's members of each room (they are also its watchers), and those whose join is
    // under way (members_locked skips them).
    std::unordered_map<std::string, std::unordered_set<ConnectionId>> room_watchers_;
    // Members of rooms its connections' views hold, in all (their `members`): past
    // max_room_views, joins here are refused.
    std::size_t room_views_ = 0;
    std::uint64_t next_epoch_ = 1;
    // Nodes gone, whose changes are ignored until their next whole state (a change sent just
    // before a node left may come after it is gone). Bounded; the oldest go first.
    std::vector<std::string> gone_;
    // When each node's last whole state came: a node that joins is asked for one unless it
    // just sent it.
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_state_;

    // This node's changes not yet sent to the others. publish_mu_ is held while a batch or a
    // whole state goes out, so they leave in the order they happened.
    std::mutex publish_mu_;
    std::mutex outgoing_mu_;
    std::vector<Entry> outgoing_;
    bool flush_posted_ = false;
    bool state_posted_ = false, state_asks_ = false;  // a whole state on its way
    std::chrono::steady_clock::time_point last_state_sent_{};
    static constexpr std::chrono::seconds state_cooldown{1};
};

}  // namespace hawser::cloud::detail
