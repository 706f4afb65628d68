// CloudCluster: what the cloud of one node tells the clouds of the others, and asks them, when
// the nodes of a cluster share one store (docs/cloud.md, "On a cluster"): close a user's
// connections (sessions ended: logout, revoke, a password change, a deletion), push a message
// to a user's connections, say which users are online, and keep the others' followers told of
// its users' presences and its members of rooms, and count each other's attempts against the
// login limits, and hand on the server's pushes to users (docs/cloud.md, "Presence" and "Rooms").
// Each node acts on its own connections; the node that tells has acted on its own already and skips
// its own notice.
//
// Ownership: shared by the Cloud::Impl; the Cluster's handlers hold it weakly (the Cluster may
// outlive the Cloud); `Local` holds the cloud weakly. Thread affinity: tell and ask from any
// thread; `Local` runs on NATS threads (keep it to lookups and posts), `who`'s callback on an
// IO thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloud/cloud_notices.hpp"
#include "hawser/cluster.hpp"
#include "hawser/dataframe.hpp"

namespace hawser::cloud::detail {

class CloudCluster : public std::enable_shared_from_this<CloudCluster> {
  public:
    using Which = detail::Which;
    using Closing = detail::Closing;
    using PresenceEntry = detail::PresenceEntry;
    // What this node does when another tells it.
    struct Local {
        std::function<void(const Closing&)> close;
        std::function<void(std::uint64_t user, const DataFrame& message)> push;
        std::function<std::vector<std::uint64_t>(const std::vector<std::uint64_t>& users)> online;
        // Another node's presence changes, in its order; or its whole state (`whole`: every
        // presence of that node not listed is gone).
        std::function<void(const std::string& node, std::vector<PresenceEntry>, bool whole)>
            presence;
        // This node's confirmed connections of `users`; its members of `rooms`.
        std::function<std::vector<PresenceEntry>(const std::vector<std::uint64_t>& users)>
            presences;
        std::function<std::vector<PresenceEntry>(const std::vector<std::string>& rooms)> members;
        // Tell the others this node's whole state (a node asked for it).
        std::function<void()> send_state;
        std::function<void(const std::string&node)> node_joined, node_gone;
        std::function<void()> notices_lost;  // Cluster::on_notices_lost
        // Another node's server push (the argument's encoded bytes): to this node's connections
        // of `user` (0: all signed in).
        std::function<void(std::uint64_t user, const std::string& command,
                           const std::string& argument)>
            server_push;
        // Another node counted an attempt against a rate limit: count it here too.
        std::function<void(Attempt, const std::string& key)> attempt;
    };

    // Registers the handlers on `cluster`, which must not have started and must outlive this.
    static std::shared_ptr<CloudCluster> join(Cluster& cluster, Local local);

    void close(const Closing& closing);
    // This node counted an attempt against a rate limit; the others count it too. False when
    // they were not told (NATS away): then its refund is not told either.
    bool attempt(Attempt kind, const std::string& key);
    void push(std::uint64_t user, const DataFrame& message);
    // A server push for the other nodes' connections of `user` (0: all signed in); false when
    // NATS did not take it.
    bool server_push(std::uint64_t user, std::string_view command, std::string_view argument);
    // The users of `users` online on some node (this one's answer included); without NATS,
    // cluster_unavailable.
    void who(std::vector<std::uint64_t> users,
             std::function<void(Result<std::vector<std::uint64_t>>)> done);
    // Presence: this node's changes, in order; its whole state (and whether the others should
    // send theirs, after this node was away); and the connections of `users` on every node,
    // by node (without NATS, cluster_unavailable). The caller orders the first two.
    void presence_changes(const std::vector<PresenceEntry>& changes);
    void presence_state(const std::vector<PresenceEntry>& online, bool ask_others);
    // Asks `node` to send its whole state (it joined, or is back).
    void request_state(const std::string& node);
    // A node whose answer would not fit in a cluster message fails the whole with
    // limit_exceeded.
    using NodePresences = std::vector<std::pair<std::string, PresenceEntry>>;
    void presences(std::vector<std::uint64_t> users,
                   std::function<void(Result<NodePresences>)> done);
    // The members of `rooms` on every node, by node; as presences().
    void members(std::vector<std::string> rooms, std::function<void(Result<NodePresences>)> done);
    std::uint32_t max_message_bytes() const { return cluster_.max_message_bytes(); }
    // Whether `node` is in the cluster's registry now.
    bool knows(const std::string& node) const;

    CloudCluster(Cluster& cluster, Local local) : cluster_(cluster), local_(std::move(local)) {}

  private:
    void on_close(std::string_view body);
    void on_attempt(std::string_view body);
    void on_push(std::string_view body);
    void on_server_push(std::string_view body);
    std::string on_who(std::string_view body);
    void on_presence(std::string_view body);
    void on_state_request(std::string_view body);
    // Entries split into runs that each fit in one notice (at least one run).
    std::vector<std::pair<std::size_t, std::size_t>> runs(
        const std::vector<PresenceEntry>& entries) const;
    std::string answer_entries(const std::vector<PresenceEntry>& here) const;
    std::string on_presences(std::string_view body);
    std::string on_members(std::string_view body);
    // False when NATS did not take it; logged unless `quiet`.
    bool tell(std::string_view topic, const std::string& body, bool quiet = false);

    Cluster& cluster_;
    const Local local_;
    // Other nodes' whole states arrive in parts, kept here until the last; a state missing a
    // part is dropped. NATS threads.
    struct Parts {
        std::uint64_t next = 0, total = 0;
        std::vector<PresenceEntry> entries;
        std::size_t bytes = 0;                            // the entries' memory
        std::chrono::steady_clock::time_point last_part;  // when the last one came
    };
    std::mutex parts_mu_;
    std::map<std::string, Parts> parts_;
    std::size_t parts_bytes_ = 0;  // the memory of all of parts_' entries
};

}  // namespace hawser::cloud::detail
