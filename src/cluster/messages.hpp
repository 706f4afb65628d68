// The cluster's subjects on NATS, and the codecs of its membership and fan-out messages: a
// node's load report (a DataFrame holding one map, so it is decoded with the same bounds as
// anything from the network) and the broadcast envelope, which also carries channel
// publications. Decoders trust nothing: a message that fails is dropped and counted.
// Thread affinity: none (pure functions).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "hawser/cluster.hpp"

namespace hawser::detail {

// A cluster message that failed to decode: bad_payload, "cluster message: <what>".
Error bad_message(std::string what);

// Subjects, under the cluster's prefix (docs/cluster.md).
struct ClusterSubjects {
    explicit ClusterSubjects(std::string_view prefix)
        : nodes(std::string(prefix) + ".node.*"),
          broadcast(std::string(prefix) + ".broadcast"),
          prefix_(prefix) {}
    std::string node(std::string_view name) const { return prefix_ + ".node." + std::string(name); }
    // The node name in a report's subject, or empty when the subject is not one.
    std::string_view node_of(std::string_view subject) const;
    // Requests to a node's connections, and the answers to a node's requests.
    std::string requests(std::string_view node) const {
        return prefix_ + ".conn." + std::string(node);
    }
    std::string answers(std::string_view node) const {
        return prefix_ + ".answer." + std::string(node);
    }
    // A channel's publications; the channel a subject names (empty when it names none).
    std::string channel(std::string_view name) const {
        return prefix_ + ".ch." + std::string(name);
    }
    std::string_view channel_of(std::string_view subject) const;
    // Markers a node publishes to itself behind its channel interest: when one comes back,
    // NATS has every subscription sent before it.
    std::string marker(std::string_view node) const {
        return prefix_ + ".marker." + std::string(node);
    }
    // Notices to every node and questions to every node, by topic; the answers to a node's
    // questions.
    std::string notice(std::string_view topic) const {
        return prefix_ + ".notice." + std::string(topic);
    }
    std::string question(std::string_view topic) const {
        return prefix_ + ".ask." + std::string(topic);
    }
    std::string replies(std::string_view node) const {
        return prefix_ + ".reply." + std::string(node);
    }
    std::string notices() const { return prefix_ + ".notice.*"; }
    std::string questions() const { return prefix_ + ".ask.*"; }
    // The topic a notice's or question's subject names (empty when it names none).
    std::string_view topic_of(std::string_view subject) const;

    const std::string nodes;      // every node's reports (a wildcard)
    const std::string broadcast;  // cluster broadcasts

  private:
    std::string prefix_;
};

// A name usable as a node name: 1 to 64 letters, digits, '-' or '_'.
bool valid_node_name(std::string_view name);

// The longest report period a report may say (a forged one cannot keep a dead node routed
// for long; 16 reports heard a second reach it at 57,600 nodes).
constexpr std::chrono::hours max_report_period{1};

struct NodeReport {
    NodeInfo info;
    bool leaving = false;  // the node is leaving: drop it now instead of at expiry
    // Random per process (optional, 0 when absent): a report under this node's own name with
    // another run is another process using the same name.
    std::uint64_t run = 0;
};
std::string encode_report(const NodeInfo& info, bool leaving, std::uint64_t run = 0);
Result<NodeReport> decode_report(std::string_view bytes);

// One broadcast: the sending node, the command, its kind and argument.
struct ClusterBroadcast {
    std::string origin;
    std::string command;
    bool dataframe = false;
    bool compress = true;
    std::string argument;
};
std::string encode_broadcast(const ClusterBroadcast& b);
Result<ClusterBroadcast> decode_broadcast(std::string_view bytes);

// An interest marker: "<run> <n>", the sending process's run id and the marker's number.
struct InterestMarker {
    std::uint64_t run = 0;
    std::uint64_t number = 0;
};
std::string encode_marker(InterestMarker m);
Result<InterestMarker> decode_marker(std::string_view bytes);

}  // namespace hawser::detail
