// Cluster: joins a Server to other Hawser nodes over NATS (docs/cluster.md). Each node reports
// its load every second on a subject every node listens to; any node answers a client's route
// request with the least-loaded node, and a full or draining node redirects new connections;
// a connection anywhere is reached by its ClusterAddress (send, call, find); a cluster
// broadcast is one publish that every node fans out to its own connections; channels reach
// their subscribers on every node. NATS down: the node keeps serving its own connections,
// cluster operations fail at once with Errc::cluster_unavailable, and it rejoins by itself.
// NATS there but not reading as fast as this node publishes: they fail at once with
// Errc::overloaded (ClusterOptions::max_publish_queue_bytes).
// Ownership: a Cluster refers to its Server (which must outlive it) and owns its NATS link.
// Thread safety: construct before server.start() (it registers the route command), start()
// after it; start() and stop() from the thread that owns the Cluster; every other method is
// safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/connection.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/metrics.hpp"
#include "hawser/options.hpp"
#include "hawser/runtime.hpp"

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
    // A node silent this long is gone from routing (stretched for one that said it reports
    // less often: reports_heard_per_second).
    Milliseconds node_expiry{3000ms};
    // Every node hears every node's reports, N² a period for N nodes, and each one heard costs
    // the listener a few thread wake-ups: past this many a second, a node reports less often
    // (every nodes / reports_heard_per_second seconds) and the others wait for it as much
    // longer (node_expiry stretched alike), once every other node says its period (an older
    // release does not). 0: every report_interval, however many nodes; else 0.1 to 1,000,000.
    double reports_heard_per_second = 16;
    Milliseconds nats_reconnect_wait{250ms};
    // A NATS that has not taken what a node writes for this long is taken as gone: the
    // connection is made again, and sends its subscriptions again. Meanwhile the connection
    // goes on reading (not with TLS to NATS, where nats.c's reader waits for the stuck write);
    // what is published waits, and is refused once max_publish_queue_bytes is queued. The
    // membership connection (load reports, calls) gives up sooner; the channel one later, as making
    // it again sends every channel subscription of the node again to a NATS that is already slow.
    // 100 ms to 1 minute.
    Milliseconds nats_write_deadline{2000ms};
    Milliseconds channel_write_deadline{10000ms};
    // Each message to NATS is written at once, instead of after nats.c's 1 ms of batching: a
    // write per message, and a cross-node call or publication about 1 ms sooner.
    bool nats_send_asap = true;
    // Bounds of one cluster message (a broadcast's command and argument included).
    std::uint32_t max_message_bytes = 1u << 20;
    // Messages for NATS waiting for the thread that writes them, per NATS connection (a node
    // has two), so that no publisher waits on NATS's socket. Past it, publishing fails at once
    // with Errc::overloaded: NATS is not reading as fast as this node publishes. (One message
    // of any size is taken when none waits; load reports and markers may use twice the bound.)
    std::size_t max_publish_queue_bytes = 8u << 20;
    // Calls and finds to connections on other nodes waiting for their answer; past it they fail
    // at once with Errc::overloaded.
    std::size_t max_remote_requests = 65536;
    // Channels: at most this many per connection, names at most 128 bytes. Interest changes (a
    // channel's first local subscriber, or its last leaving) reach NATS in batches this often.
    std::size_t max_channels_per_connection = 256;
    Milliseconds interest_batch{10ms};
    // Clients may subscribe themselves (hawser.subscribe) to channels whose names start with
    // one of these ("" allows every channel), unless an on_subscribe hook decides instead.
    std::vector<std::string> client_channel_prefixes;
    // Full (capacity reached) or draining: a new connection gets a goodbye (CloseReason::redirect)
    // naming the node routing picks instead, when there is one.
    bool redirect_when_full = true;
};

// A connection anywhere in the cluster: the node that holds it and its id there. Unique in the
// cluster while node names are (a restarted node does not reuse the ids of its last run).
// Text form "<id>@<node>".
struct ClusterAddress {
    std::string node;
    ConnectionId id = 0;

    std::string to_string() const;
    static Result<ClusterAddress> parse(std::string_view text);
    friend bool operator==(const ClusterAddress&, const ClusterAddress&) = default;
};

// Where a connection is, and since when.
struct Presence {
    ClusterAddress address;
    std::string remote_address;                   // the peer's "ip:port", as its node sees it
    std::chrono::system_clock::time_point since;  // when its handshake completed
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
    // How long until this node's next report (report_interval, or longer in a big cluster: see
    // ClusterOptions::reports_heard_per_second). 0 when it did not say.
    std::chrono::milliseconds report_period{0};
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
    // The channel connection lost (NATS away, or not reading for channel_write_deadline): each
    // time, it sends all of this node's channel subscriptions again once back.
    std::uint64_t nats_channel_disconnects = 0;
    std::uint64_t redirects = 0;  // new connections sent elsewhere (full or draining)
    // Requests to connections on other nodes: sent by this node, and answered here for others.
    std::uint64_t remote_requests_sent = 0, remote_requests_served = 0;
    std::uint64_t publications_sent = 0, publications_received = 0;
    std::uint64_t deliveries = 0;             // publications handed to local subscribers
    std::uint64_t deliveries_skipped = 0;     // to subscribers over their send soft limit
    std::uint64_t channel_subscriptions = 0;  // NATS subscriptions for channels, held or queued
    std::uint64_t interest_changes = 0;       // channel subscribes/unsubscribes queued for NATS
    // Channel subscriptions NATS could not take then (away, or refusing), tried again a second
    // later; never once nats.c gave the connection up for good.
    std::uint64_t interest_retries = 0;
    std::uint64_t name_clashes = 0;  // reports under this node's name from another process
    // NATS dropped messages for this node because its handler fell behind (a subscription's
    // pending limit): channel publications are at most once under overload, as core NATS is.
    std::uint64_t slow_consumer_events = 0;
    // Messages for NATS queued and not yet written, now (max_publish_queue_bytes bounds it per
    // connection), and those queued that nats.c refused (the connection was lost, or a payload
    // over NATS's max_payload) or that were still queued when the node stopped.
    std::uint64_t publish_queue_bytes = 0;
    std::uint64_t publishes_lost = 0;
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

    // --- Connections anywhere ---
    // This node's address of one of its connections.
    ClusterAddress address_of(ConnectionId local) const;
    // One-way command to a connection on any node. Succeeds once handed to the connection (this
    // node) or queued for NATS (another node): a connection gone meanwhile drops it, as a local
    // send would. Errc::not_found for a node the registry does not know; cluster_unavailable
    // without NATS; overloaded when NATS is not taking this node's messages.
    Result<void> send(const ClusterAddress& to, std::string_view command, std::string argument,
                      bool compress = true);
    Result<void> send(const ClusterAddress& to, std::string_view command, const DataFrame& argument,
                      bool compress = true);
    // Calls a connection on any node and hands back its reply, with the completion tokens of
    // Connection::call (a callable, use_task, use_wait). A callable (or a coroutine after
    // co_await) runs on an IO thread of the server: the calling thread's own when the call is
    // made on one (a handler's connection's thread), the connection's for a local one; or
    // before call() returns for an error found at once (unknown node, NATS away, too many
    // requests). No callback runs after stop() returns (called off the IO threads).
    template <class Token = UseTask>
    auto call(const ClusterAddress& to, std::string_view command, std::string argument,
              Token&& token = {}, CallOptions options = {}) {
        return complete<std::string>(
            [this, to, cmd = std::string(command), arg = std::move(argument),
             options](std::function<void(Result<std::string>)> done) mutable {
                start_call(to, cmd, std::move(arg), std::move(done), options);
            },
            std::forward<Token>(token));
    }
    template <class Token = UseTask>
    auto call(const ClusterAddress& to, std::string_view command, DataFrame argument,
              Token&& token = {}, CallOptions options = {}) {
        return complete<DataFrame>(
            [this, to, cmd = std::string(command), arg = std::move(argument),
             options](std::function<void(Result<DataFrame>)> done) mutable {
                start_call(to, cmd, std::move(arg), std::move(done), options);
            },
            std::forward<Token>(token));
    }
    // Presence: whether the connection is there, where it came from and since when; not_found
    // once it is gone. Same tokens as call().
    template <class Token = UseTask>
    auto find(const ClusterAddress& of, Token&& token = {},
              Milliseconds timeout = Milliseconds{5000}) {
        return complete<Presence>(
            [this, of, timeout](std::function<void(Result<Presence>)> done) {
                start_find(of, std::move(done), timeout);
            },
            std::forward<Token>(token));
    }

    // --- Channels ---
    // Channel names: 1 to 128 bytes of letters, digits and "-_:.", not starting or ending with
    // '.' and without "..". A publication reaches every subscriber on every node once, and one
    // publisher's publications on a channel arrive in the order they were published.
    // Subscribes a connection of this node; it leaves its channels when it closes. `subscribed`
    // (optional) runs, on an IO thread as call()'s callbacks do, once this node's interest in
    // the channel has reached NATS: from then on a publication from any node reaches it
    // (cluster_unavailable: NATS is away, too far behind to take it now, or did not confirm it
    // within 5 s; the subscription stands and takes effect once NATS has it). limit_exceeded past
    // max_channels_per_connection; cluster_unavailable before start() and after stop().
    Result<void> subscribe(ConnectionId local, std::string_view channel,
                           std::function<void(Result<void>)> subscribed = {});
    Result<void> unsubscribe(ConnectionId local, std::string_view channel);
    // One-way command to every subscriber of `channel`, on every node (through NATS, also for
    // this node's subscribers). Subscribers over their send soft limit are skipped and counted.
    Result<void> publish(std::string_view channel, std::string_view command,
                         std::string_view argument, bool compress = true);
    Result<void> publish(std::string_view channel, std::string_view command,
                         const DataFrame& argument, bool compress = true);
    // This node's subscribers of a channel, and the channels of one connection.
    std::vector<ConnectionId> subscribers(std::string_view channel) const;
    std::vector<std::string> channels_of(ConnectionId local) const;
    // Clients may subscribe themselves (commands hawser.subscribe and hawser.unsubscribe, a
    // channel name as argument) when this hook, run on the connection's IO thread, allows it.
    // Without a hook, ClusterOptions::client_channel_prefixes decides. Set before
    // server.start().
    void on_subscribe(std::function<bool(const Connection&, std::string_view channel)> allow);
    static bool valid_channel(std::string_view channel);

    // --- Between the nodes' services ---
    // A service on every node (the cloud's, the application's) tells the others something, or
    // asks them all. Topics are 1 to 64 of letters, digits, '-' and '_'; bodies are opaque,
    // at most max_message_bytes. Handlers are set before start(), one per topic, and run on a
    // NATS thread: keep them short and hand longer work on (a throw is logged). Delivery is at
    // most once, as NATS's.
    // A notice goes to every node, this one included; cluster_unavailable without NATS,
    // overloaded when NATS is not taking this node's messages.
    void on_notice(std::string topic, std::function<void(std::string_view body)> handler);
    Result<void> notify(std::string_view topic, std::string_view body);
    // A question goes to every node, this one included, and each answers with its handler.
    // The answers, by node name, come once every node the registry knew when asking has
    // answered, or at `timeout` with those that did (a node that left, is slow or has no
    // handler for the topic is missing). Same tokens as call(); cluster_unavailable without
    // NATS, overloaded past 1024 questions waiting.
    void on_question(std::string topic, std::function<std::string(std::string_view body)> answer);
    // Membership, for services that keep something about other nodes. A node joined (its
    // first report, or its first since it was gone); a node is gone, and what it held with
    // it: it said it leaves, or went silent past its (stretched) node_expiry. Never for this node
    // itself. They come one at a time, in the order the nodes came and went (a handler still
    // running holds back the next, whichever thread it comes from): either may run on the
    // cluster thread, which also ends questions at their timeout, so neither may wait for an
    // ask() to complete.
    void on_node_joined(std::function<void(const std::string& node)> handler);
    void on_node_gone(std::function<void(const std::string& node)> handler);
    // Notices may have been lost: this node (re)connected to NATS (and at the end of start()),
    // so what it sent while away reached nobody and what was sent to it is gone; or NATS
    // dropped messages for it as a slow consumer, or its messages to NATS were refused
    // (overloaded) while NATS fell behind and have since drained (at most once every 5 s; one
    // inside the 5 s once they are over). A service that keeps state on other nodes sends it
    // again, and asks for theirs.
    // These hooks: set before start(); they run on NATS's or the cluster's threads (a NATS
    // link's writing thread included), or in start(), with no lock held: keep them short (post
    // longer work elsewhere).
    void on_notices_lost(std::function<void()> handler);
    // The largest cluster message (ClusterOptions::max_message_bytes).
    std::uint32_t max_message_bytes() const;
    template <class Token = UseTask>
    auto ask(std::string_view topic, std::string body, Token&& token = {},
             Milliseconds timeout = Milliseconds{2000}) {
        return complete<std::map<std::string, std::string>>(
            [this, t = std::string(topic), b = std::move(body), timeout](
                std::function<void(Result<std::map<std::string, std::string>>)> done) mutable {
                start_ask(t, std::move(b), timeout, std::move(done));
            },
            std::forward<Token>(token));
    }

    ClusterStats stats() const;

    // The console commands clients call to (un)subscribe themselves; the subscribe reply comes
    // once this node's interest has reached NATS.
    static constexpr std::string_view subscribe_command = "hawser.subscribe";
    static constexpr std::string_view unsubscribe_command = "hawser.unsubscribe";
    // The DataFrame command clients call to be routed (ClientOptions::cluster). Its reply holds
    // one map: {"node": chosen node, "here": the answering node, "endpoints": [...],
    // "public_key": the chosen node's key}; `overloaded` when every node is full or draining.
    static constexpr std::string_view route_command = "hawser.route";

    struct Impl;

  private:
    template <class R, class Start, class Token>
    static auto complete(Start start, Token&& token) {
        return detail::complete<R>(std::move(start), std::forward<Token>(token), "cluster");
    }
    void start_call(const ClusterAddress& to, std::string_view command, std::string argument,
                    std::function<void(Result<std::string>)> done, CallOptions options);
    void start_call(const ClusterAddress& to, std::string_view command, DataFrame argument,
                    std::function<void(Result<DataFrame>)> done, CallOptions options);
    void start_find(const ClusterAddress& of, std::function<void(Result<Presence>)> done,
                    Milliseconds timeout);
    void start_ask(std::string_view topic, std::string body, Milliseconds timeout,
                   std::function<void(Result<std::map<std::string, std::string>>)> done);

    std::shared_ptr<Impl> impl_;
};

// The cluster's figures for /metrics (hawser/metrics.hpp): its counters (hawser_cluster_*), and
// every node this node knows with its load (hawser_cluster_node_*, labelled by node).
void write_metrics(MetricsText& out, const Cluster& cluster);

}  // namespace hawser
