// Cluster::Impl: what one node's cluster membership holds, shared by the parts that implement it
// (cluster.cpp: lifecycle and callbacks; membership.cpp: load reports, routing, redirects, the
// cluster thread; broadcast.cpp: broadcast and channel fan-out; remote_connections.cpp: send,
// call and find to connections on other nodes; channels.cpp: channel membership and interest).
// Ownership: shared by the Cluster and, weakly, by the commands and hooks it gives the Server;
// owns the two NATS links. Thread affinity: NATS handlers run on nats.c's threads, the cluster
// thread (reports, deadlines, interest batches) on its own, commands and hooks on the server's
// IO threads; application callbacks are posted to the server's IO threads (complete()), and
// stop() waits for those on their way. Each lock guards the group of members below it; none is
// held while another is taken, except link_mu (shared) inside a publish and in stats(), around
// a link's own (its PublishQueue's, the innermost).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "cluster/channel_table.hpp"
#include "cluster/messages.hpp"
#include "cluster/nats_link.hpp"
#include "cluster/node_registry.hpp"
#include "cluster/pending_requests.hpp"
#include "cluster/remote_messages.hpp"
#include "hawser/cluster.hpp"
#include "hawser/server.hpp"
#include "rpc/host.hpp"

namespace hawser {

namespace detail {
Error channel_error(std::string_view channel);  // what an invalid channel name is told

// How long a remote request or a question may wait: 1 ms to a day, so that "as long as it
// takes" (Milliseconds::max()) does not overflow its deadline.
inline Milliseconds bounded_wait(Milliseconds timeout) {
    return std::clamp<Milliseconds>(timeout, Milliseconds(1), std::chrono::hours(24));
}
}  // namespace detail

struct Cluster::Impl : std::enable_shared_from_this<Impl> {
    using Clock = std::chrono::steady_clock;

    Impl(Server& s, ClusterOptions o)
        : server(s),
          options(std::move(o)),
          subjects(options.subject_prefix),
          requests(options.max_remote_requests) {}

    Server& server;
    const ClusterOptions options;
    const detail::ClusterSubjects subjects;
    std::string name;
    const std::uint64_t run_id = std::random_device{}() | std::uint64_t(std::random_device{}())
                                                              << 32;

    // Membership, and the cluster thread's schedule.
    mutable std::mutex mu;
    std::condition_variable wake;
    detail::NodeRegistry registry;
    NodeInfo self;
    bool started = false, stopping = false;
    bool report_now = false;  // something the others should learn before the next interval
    bool recheck = false;     // a new deadline or interest batch: the cluster thread looks again
    std::optional<Clock::time_point> interest_due;  // when the next interest batch goes out
    std::mt19937_64 rng{std::random_device{}()};

    std::atomic<bool> draining{false};
    // Before the links: their publish queues count into it until they are gone.
    struct Counters {
        std::atomic<std::uint64_t> reports_sent{0}, reports_received{0}, broadcasts_sent{0},
            broadcasts_received{0}, dropped{0}, routes{0}, disconnects{0}, reconnects{0},
            redirects{0}, requests_sent{0}, requests_served{0}, publications_sent{0},
            publications_received{0}, deliveries{0}, deliveries_skipped{0},
            channel_subscriptions{0}, interest_changes{0}, name_clashes{0}, slow_consumers{0},
            publishes_lost{0}, channel_disconnects{0}, interest_retries{0};
    } counters;
    static void count(std::atomic<std::uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

    // Two NATS connections: `link` for membership, broadcasts and requests (a nats.c thread
    // per subscription), `channel_link` for channels (a subscription per channel with a local
    // subscriber, all on nats.c's shared delivery thread), so that a busy channel never
    // delays the reports and answers that keep the cluster together. They are set and taken
    // out under link_mu held exclusively (start, stop) and used under it held shared, so
    // publishes on either link do not wait for each other; publishing never waits on the
    // registry's lock, and the registry never waits on NATS.
    mutable std::shared_mutex link_mu;
    std::unique_ptr<detail::NatsLink> link, channel_link;
    // nats.c gave either link up for good (NatsLink::Events::closed): channel interest can
    // take no effect (its confirmations come back on the membership link) until a restart.
    std::atomic<bool> nats_given_up{false};
    std::thread thread;  // the cluster thread

    // Requests this node made to connections on other nodes.
    std::mutex requests_mu;
    detail::PendingRequests requests;

    // Channels: this node's subscribers, and (cluster thread only) its NATS subscriptions.
    mutable std::mutex channels_mu;
    detail::ChannelTable channels;
    struct InterestWaiter {
        std::string channel;
        std::size_t loop;  // where its callback runs
        std::function<void(Result<void>)> done;
        std::uint64_t subscription = 0;  // the channel link's id, once its batch has gone
    };
    std::vector<InterestWaiter> interest_waiters;  // for the next batch
    // Batches sent, each waiting for its marker to come back from NATS (in marker order).
    struct Confirming {
        std::uint64_t marker;
        Clock::time_point deadline;
        std::vector<InterestWaiter> waiters;
    };
    std::deque<Confirming> confirming;
    std::uint64_t last_marker = 0;                                         // cluster thread
    bool channels_closed = false;                                          // stop(): no waiters
    std::unordered_map<std::string, std::uint64_t> channel_subscriptions;  // cluster thread
    // Queued subscriptions nats.c then refused: the next batch retries them.
    struct RefusedSubscription {
        std::string channel;
        std::uint64_t id;  // the channel link's
        Error why;
    };
    std::vector<RefusedSubscription> refused_subscriptions;
    // Set before the server starts, read-only after.
    std::function<bool(const Connection&, std::string_view)> subscribe_hook;

    // Queued for NATS (NatsLink::publish); `essential`: a load report (send_report).
    Result<void> publish(const std::string& subject, std::string_view data,
                         bool on_channel_link = false, bool essential = false) {
        std::shared_lock lock(link_mu);
        auto* l = on_channel_link ? channel_link.get() : link.get();
        if (!l) return Error{Errc::cluster_unavailable, "the cluster is not started"};
        return l->publish(subject, data, essential);
    }

    // Application callbacks run on the server's IO threads, never on NATS's or the cluster's
    // (a callback that blocks or throws there would stall or end the cluster): on the loop
    // of the thread that made the request when that is one, so a coroutine handler resumes
    // on its connection's thread. stop() waits until those on their way have run.
    std::shared_ptr<detail::Host> host;  // the server's
    struct Inflight {
        std::mutex mu;
        std::condition_variable cv;
        std::size_t count = 0;
    };
    std::shared_ptr<Inflight> inflight = std::make_shared<Inflight>();
    std::atomic<std::size_t> next_loop{0};
    std::size_t caller_loop() {
        auto here = detail::Host::current_loop_index();
        return here ? *here : next_loop.fetch_add(1, std::memory_order_relaxed);
    }
    void complete(std::size_t loop, std::function<void()> f);
    void wait_for_callbacks();  // from a non-IO thread

    // Wakes the cluster thread to look at its deadlines and batches again.
    void poke() {
        std::lock_guard lock(mu);
        recheck = true;
        wake.notify_all();
    }
    void dropped(std::string_view why);
    void nats_error(bool slow_consumer, const std::string& what);
    std::atomic<std::int64_t> last_nats_log{0};
    bool knows(std::string_view node) const {
        std::lock_guard lock(mu);
        return registry.contains(node);
    }

    // membership.cpp
    Result<void> fill_self();
    void report(bool leaving);
    void send_report(const std::string& bytes);  // encoded; counted once queued
    void run();                                  // the cluster thread
    void on_report(std::string_view subject, std::string_view data);
    Result<NodeInfo> route();
    // A new connection at a full or draining node: the goodbye text naming where to go, or
    // nullopt to keep it.
    std::optional<std::string> redirect_for_new_connection();

    // broadcast.cpp
    void on_broadcast(std::string_view data);
    void on_publication(std::string_view subject, std::string_view data);

    // remote_connections.cpp
    void on_request(std::string_view data);
    void on_answer(std::string_view data);
    void answer(const std::string& origin, detail::RemoteAnswer a);
    // Sends a request to another node and completes `done` with its answer, or with an error.
    void request(const ClusterAddress& to, detail::RemoteRequest r, Milliseconds timeout,
                 std::function<void(detail::RemoteAnswer)> done);
    void expire_requests();  // cluster thread
    void fail_requests();    // stop: every waiting request fails
    void fail_requests_to(std::string_view node,
                          std::uint64_t added_before);  // it left or went silent

    // notices.cpp: notices and questions between the nodes' services. The handlers are set
    // before start and read-only after.
    std::unordered_map<std::string, std::function<void(std::string_view)>> notice_handlers;
    std::unordered_map<std::string, std::function<std::string(std::string_view)>> question_handlers;
    // Set before start, read-only after; run with no lock held.
    std::vector<std::function<void(const std::string&)>> node_joined_handlers, node_gone_handlers;
    std::vector<std::function<void()>> notices_lost_handlers;
    std::atomic<std::int64_t> last_slow_notices{0};
    // Joined and gone in the order the registry changed: queued under mu where it changes,
    // then delivered by one thread at a time with no lock held. A report on a NATS thread and
    // an expiry on the cluster thread must not pass each other (a node back during a slow
    // gone handler would otherwise be joined first and gone after, while it is there).
    struct NodeEvent {
        std::string node;
        bool joined;
        // Left: requests.added() when it did. Those added later went to a run of the same name
        // that joined since (the event may be delivered after it did), and are not failed.
        std::uint64_t requests_before = 0;
    };
    std::deque<NodeEvent> node_events;                             // under mu
    bool delivering_node_events = false;                           // under mu
    void deliver_node_events(std::unique_lock<std::mutex>& lock);  // membership.cpp
    void notices_lost() {
        for (auto& h : notices_lost_handlers) h();
    }
    // Notices were dropped on their way in (NATS: slow consumer) or out (the publish queue was
    // full) while NATS stayed connected: the services put right what they keep, at most every
    // 5 s however many drops. One inside the 5 s is put right once they are over (the cluster
    // thread looks again), not forgotten.
    std::atomic<bool> notices_repair_due{false};
    void notices_dropped() {
        auto now = Clock::now().time_since_epoch().count();
        auto before = last_slow_notices.load();
        if (now - before > 5'000'000'000 &&
            last_slow_notices.compare_exchange_strong(before, now)) {
            notices_repair_due = false;
            notices_lost();
        } else {
            notices_repair_due = true;
        }
    }
    using Answers = std::map<std::string, std::string>;
    struct Asking {
        std::set<std::string> waiting;  // nodes that have not answered
        Answers answers;
        Clock::time_point deadline;
        std::size_t loop;  // where `done` runs
        std::function<void(Result<Answers>)> done;
    };
    std::mutex asks_mu;
    std::map<std::uint64_t, Asking> asks;
    // From a random start, as PendingRequests' ids: a node restarted under the same name does
    // not take a late reply to its last run's question as the answer to a new one.
    std::uint64_t next_ask = run_id;
    void on_notice(std::string_view subject, std::string_view data);
    void on_question(std::string_view subject, std::string_view data);
    void on_reply(std::string_view data);
    void ask(std::string_view topic, std::string body, Milliseconds timeout,
             std::function<void(Result<Answers>)> done);
    void expire_asks();  // cluster thread
    std::optional<Clock::time_point> next_ask_deadline();
    void fail_asks();  // stop

    // channels.cpp
    Result<void> subscribe(ConnectionId id, std::string_view channel,
                           std::function<void(Result<void>)> subscribed);
    Result<void> unsubscribe(ConnectionId id, std::string_view channel);
    void connection_closed(ConnectionId id);
    void apply_interest();  // cluster thread
    // A queued channel subscription nats.c refused; on the channel link's queue thread.
    void subscription_refused(std::string channel, std::uint64_t id, const Error& why);
    // A marker came back (the channel link's delivery thread): the batches up to it are in.
    void on_marker(std::string_view data);
    // Fails the batches whose marker did not come back in time (cluster thread), and when
    // the next one is due.
    void expire_confirmations();
    std::optional<Clock::time_point> next_confirmation_deadline();
    void fail_confirmations(const Error& why);  // stop
    void register_channel_commands();
    bool may_subscribe(const Connection& conn, std::string_view channel) const;
};

}  // namespace hawser
