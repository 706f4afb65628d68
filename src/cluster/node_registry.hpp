// NodeRegistry: the nodes of a cluster as this node knows them from their load reports, with
// expiry (a node silent for the expiry is gone) and the routing choice. Pure: time is passed
// in, so it is tested with a manual clock.
// Ownership: owned by the Cluster. Thread affinity: none; the Cluster guards it with a mutex.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hawser/cluster.hpp"

namespace hawser::detail {

// How long a node waits between its reports in a cluster of `nodes` (itself included): the
// interval, or longer so that each node hears at most `heard_per_second` reports a second from
// all of them (0: no limit); never past max_report_period.
std::chrono::milliseconds report_period(std::chrono::milliseconds interval, double heard_per_second,
                                        std::size_t nodes);

class NodeRegistry {
  public:
    using Clock = std::chrono::steady_clock;

    // Records a report. Reports older than the last one seen from the same node run (a lower
    // sequence) are ignored, unless the node restarted: `run` (the sender's process, 0 when it
    // says none) differs, or sequence 1. True if it was news.
    bool update(NodeInfo info, Clock::time_point now, std::uint64_t run = 0);
    // The node said it leaves. True if it was known (and `run`, when both say one, is the run
    // it knows: a late goodbye of a process that restarted does not remove the new one).
    bool remove(std::string_view name, std::uint64_t run = 0);
    // Drops nodes not heard from within `expiry`, stretched for a node whose last report said
    // its next comes later than `interval` by as much (3 s for a 1 s interval is 9 s for a node
    // that reports every 3 s); returns their names.
    std::vector<std::string> expire(Clock::time_point now, Clock::duration expiry,
                                    Clock::duration interval);

    bool contains(std::string_view name) const;
    // Whether every node but `self` said when its next report comes (older releases do not,
    // and drop a node silent past their node_expiry, however long it said it would be).
    bool every_other_node_says_its_period(std::string_view self) const;
    std::size_t size() const noexcept { return nodes_.size(); }
    std::vector<NodeInfo> nodes() const;  // by name

    // Where a new client should go: a node drawn at random with odds in proportion to its
    // free capacity, so the least loaded gets most clients and a reconnect storm between two
    // reports does not all land on one node. Never a full or a draining node; nullopt if there
    // is none. `random` is any uniformly drawn number. `except`: a node not to pick (a full or
    // draining node redirecting a client picks among the others).
    std::optional<NodeInfo> pick(std::uint64_t random, std::string_view except = {}) const;
    // A client was sent to `name`: count it there until its next report says better.
    void routed_to(std::string_view name);

  private:
    struct Known {
        NodeInfo info;
        std::uint64_t run = 0;         // the process that sent its last report
        std::uint64_t superseded = 0;  // the run before it: its late reports are not news
    };
    std::unordered_map<std::string, Known> nodes_;
};

}  // namespace hawser::detail
