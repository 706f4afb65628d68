// Cluster: joins a Server to other Hawser nodes over NATS (docs/cluster.md). Each node reports
// its load every second on a subject every node listens to; any node answers a client's route
// request with the least-loaded node; a cluster broadcast is one publish that every node fans
// out to its own connections. NATS down: the node keeps serving its own connections, cluster
// operations fail at once with Errc::cluster_unavailable, and it rejoins by itself.
// Ownership: a Cluster refers to its Server (which must outlive it) and owns its NATS link.
// Thread safety: construct before server.start() (it registers the route command), start()
// after it; start() and stop() from the thread that owns the Cluster; every other method is
// safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser {

class Server;

struct ClusterOptions {
    // NATS servers, "nats://host:port" (several for a NATS cluster; the client fails over).
    std::vector<std::string> nats_urls{"nats://127.0.0.1:4222"};
    // This node's name, unique in the cluster: letters, digits, '-' and '_' (it is a NATS
    // subject token). Empty: "<hostname>-<pid>".
    std::string node_name;
    // Every subject this cluster uses starts with it; clusters sharing a NATS differ here.
    std::string subject_prefix = "hawser";
    // Where clients reach this node ("host:port"), sent to them by route requests. Empty: the
    // server's listen addresses with their bound ports, which must then be IP addresses, not
    // wildcards ([::], 0.0.0.0) or names: a node cannot know how others reach those.
    std::vector<std::string> public_endpoints;
    // Connections this node takes; routing never sends clients to a node at capacity. 0: the
    // server's max_connections, or what its file limit allows.
    std::uint64_t capacity = 0;
    // NATS authentication, one kind: user and password; a token; an nkey (its public key and
    // the file holding its seed); or a credentials file (.creds: a user JWT and its seed).
    std::string nats_user, nats_password, nats_token;
    std::string nats_nkey, nats_nkey_seed_file;
    std::string nats_credentials_file;
    // TLS to NATS: on when a CA file is given (or when tls is set, with the system's CAs).
    bool nats_tls = false;
    std::string nats_tls_ca_file;
    Milliseconds report_interval{1000ms};  // load reports
    Milliseconds node_expiry{3000ms};      // a node silent this long is gone from routing
    Milliseconds nats_reconnect_wait{250ms};
    // Bounds of one cluster message (a broadcast's command and argument included).
    std::uint32_t max_message_bytes = 1u << 20;
};

// What a node reports about itself.
struct NodeInfo {
    std::string name;
    std::vector<std::string> endpoints;
    std::string public_key;  // 64 hex digits; empty in plaintext mode
    std::uint64_t capacity = 0;
    std::uint64_t connections = 0;
    double handshakes_per_second = 0;
    double cpu = 0;  // cores busy with this process, averaged over the last report interval
    std::uint64_t memory_bytes = 0;  // resident
    bool draining = false;
    std::uint64_t sequence = 0;  // reports sent by this node; a restart starts again at 1
    std::chrono::steady_clock::time_point seen{};  // when this node last heard of it

    std::uint64_t free_capacity() const {
        return connections >= capacity ? 0 : capacity - connections;
    }
};

struct ClusterStats {
    std::uint64_t reports_sent = 0, reports_received = 0;
    std::uint64_t broadcasts_sent = 0, broadcasts_received = 0;
    std::uint64_t dropped_messages = 0;  // undecodable, misnamed, or refused by the server
    std::uint64_t routes_answered = 0;
    std::uint64_t nats_disconnects = 0, nats_reconnects = 0;
};

class Cluster {
  public:
    // Registers the route command on `server`, which must not have started yet. Checks the
    // options (Error thrown as std::invalid_argument: a bad configuration is a programming or
    // operator error caught before anything runs).
    Cluster(Server& server, ClusterOptions options);
    ~Cluster();  // stop()
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    // What the constructor checks: names, subjects, intervals, endpoints, one kind of NATS
    // authentication.
    static Result<void> validate(const ClusterOptions& options);

    // After server.start(): connects to NATS and starts reporting. An unreachable NATS is not
    // an error: the node serves locally and keeps trying in the background.
    Result<void> start();
    // Tells the other nodes this one leaves, and disconnects. Idempotent.
    void stop();

    const std::string& node_name() const;
    bool connected() const;  // to NATS, now
    // Every live node this one knows of, itself included, by name.
    std::vector<NodeInfo> nodes() const;
    // The node a new client should go to: the most free capacity, never a full or draining
    // node. This node itself when it knows no better one.
    Result<NodeInfo> route() const;
    // A draining node is skipped by routing (and still serves its connections).
    void set_draining(bool draining);

    // One-way command to every connection on every node (each node fans out to its own).
    Result<void> broadcast(std::string_view command, std::string_view argument,
                           bool compress = true);
    Result<void> broadcast(std::string_view command, const DataFrame& argument,
                           bool compress = true);

    ClusterStats stats() const;

    // The DataFrame command clients call to be routed (ClientOptions::cluster). Its reply holds
    // one map: {"node": chosen node, "here": the answering node, "endpoints": [...],
    // "public_key": the chosen node's key}; `overloaded` when every node is full or draining.
    static constexpr std::string_view route_command = "hawser.route";

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hawser
