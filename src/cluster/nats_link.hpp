// NatsLink: this node's connection to NATS (nats.c) — connects in the background and keeps
// reconnecting (with jitter) for as long as it lives, unless nats.c gives up for good (closed()),
// publishes only while connected (so cluster operations fail at once instead of piling up while
// NATS is away), through a PublishQueue (so no publisher waits for a NATS that does not read), and
// delivers subscribed messages to handlers. Subscriptions survive reconnects (nats.c resends them).
// Ownership: owned by the Cluster. Thread affinity: publish/subscribe from any thread;
// handlers run on nats.c's threads, each subscription's messages in order: a thread per
// subscription, or (Delivery::shared, for thousands of channel subscriptions) nats.c's one
// delivery thread for all of them; events on nats.c's threads; subscribe_in_order's and
// unsubscribe's work on the publish queue's thread; the socket is read and written on the
// link's NatsSocketLoop thread, so that nats.c never waits for NATS holding its lock (with TLS,
// on nats.c's own threads and the queue's, as nats.c does it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/nats_socket_loop.hpp"
#include "cluster/publish_queue.hpp"
#include "hawser/cluster.hpp"

struct __natsConnection;
struct __natsSubscription;

namespace hawser::detail {

// What may wait for one subscription's handler: past it nats.c drops messages and reports a
// slow consumer (an error event).
struct NatsPending {
    int messages = 65536;
    int bytes = 64 << 20;
};

class NatsLink {
  public:
    struct Events {
        std::function<void()> connected;                // the first connect and every reconnect
        std::function<void(std::string)> disconnected;  // lost the server (why); reconnecting
        // Asynchronous errors: (slow_consumer, text); slow_consumer: NATS dropped messages.
        std::function<void(bool, std::string)> error;
        // The publish queue refused messages (overloaded) and has since emptied: they are lost.
        std::function<void()> caught_up;
        // nats.c gave the connection up for good (why), as it does when NATS refuses the same
        // authorisation twice in a row, or answers an established connection with an error it
        // does not know: nothing is sent or received any more. Not called when the link itself
        // closes, nor is `disconnected` for that loss.
        std::function<void(std::string)> closed;
    };
    using Handler = std::function<void(std::string_view subject, std::string_view data)>;

    enum class Delivery { per_subscription, shared };
    // What differs between a node's two links.
    struct Shape {
        Delivery delivery = Delivery::per_subscription;
        NatsPending pending{};
        // A NATS that has not taken what the link writes for this long is taken as gone: the
        // connection is made again, and sends every subscription again.
        std::chrono::milliseconds write_deadline{2000};
    };
    // Checks the options and starts connecting. NATS being unreachable is not an error.
    // Messages published and then lost (nats.c refused them, or the link stopped with them
    // queued) are counted in `lost`, which must outlive the link. What nats.c held unwritten
    // when the connection was lost (under 64 KiB and a message) goes uncounted, as do messages
    // NATS itself had not delivered.
    // Whether nats.c can take `url` as a server's address (its parser: a port is digits).
    static bool url_parses(std::string_view url);
    static Result<std::unique_ptr<NatsLink>> open(const ClusterOptions& options,
                                                  const std::string& client_name, Events events,
                                                  std::atomic<std::uint64_t>& lost, Shape shape);
    ~NatsLink();  // closes, and returns once no handler or event runs any more
    NatsLink(const NatsLink&) = delete;
    NatsLink& operator=(const NatsLink&) = delete;

    // As nats.c's connection events last said.
    bool connected() const;
    // Given up for good by nats.c (Events::closed): it will not connect again.
    bool closed() const { return given_up_; }
    // Why, once closed(): NATS's words.
    std::string why_closed() const;
    // Queues a message for NATS (PublishQueue: `essential` for load reports and markers).
    // Errc::cluster_unavailable unless connected now; limit_exceeded over max_message_bytes;
    // overloaded past max_publish_queue_bytes. Success is "queued": a message nats.c then
    // refuses (the connection lost first) is counted in `lost` and reported as an error event.
    Result<void> publish(const std::string& subject, std::string_view data, bool essential = false);
    // Waits until everything published so far was given to NATS (or lost) and NATS has it;
    // false if not connected or the timeout passed first.
    bool flush(std::chrono::milliseconds timeout);
    // Messages queued and not yet given to nats.c, now.
    std::size_t publish_queue_bytes() const { return queue_ ? queue_->bytes() : 0; }
    // Handler runs for every message on `subject` (wildcards allowed), on a nats.c thread.
    // The id is for unsubscribe. Subscribes now, taking nats.c's connection lock: for setting
    // up, before anything is published.
    Result<std::uint64_t> subscribe(const std::string& subject, Handler handler);
    // The same, queued behind what was published before it (so what is published after it
    // follows it to NATS) and done by the publish queue's thread, so that the caller never
    // waits on NATS. Errc::overloaded as an essential publish; cluster_unavailable once nats.c
    // closed the connection for good. Should nats.c refuse it there (a closed connection, no
    // memory), `refused` runs, on that thread, and the id stands for nothing any more.
    using Refused = std::function<void(std::uint64_t id, const Error& why)>;
    Result<std::uint64_t> subscribe_in_order(const std::string& subject, Handler handler,
                                             Refused refused);
    // Stops a subscription, queued like subscribe_in_order (never refused). Its handler runs
    // until the queue reaches it, and may still be running when that returns.
    void unsubscribe(std::uint64_t id);

  private:
    struct Subscription {
        NatsLink* link;
        Handler handler;
        std::uint64_t id = 0;
        __natsSubscription* sub = nullptr;  // once nats.c has it
        // Its handler has returned for the last time, or has never been called (no sub yet).
        bool complete = true;
        bool stopped = false;  // unsubscribed on nats.c (once)
    };
    std::uint64_t add(Handler handler);  // a Subscription without a sub yet
    // Subscribes `id` on nats.c (taking its connection lock); on failure `id` is forgotten.
    // These three run where nats.c's lock may be waited for, one thread at a time: the queue's
    // thread, or setup's before anything is queued (stop() frees nothing another may reap).
    Result<void> start(std::uint64_t id, const std::string& subject);
    void stop(std::uint64_t id);  // unsubscribes it on nats.c
    // Frees the subscriptions nats.c said were complete since the last call. Not under mu_.
    void reap();
    NatsLink(Events events, std::uint32_t max_message_bytes, NatsPending pending,
             std::chrono::milliseconds write_deadline)
        : events_(std::move(events)),
          max_message_bytes_(max_message_bytes),
          pending_(pending),
          loop_(std::make_unique<NatsSocketLoop>(write_deadline)) {}
    // Waits (on the queue's thread) until nats.c's write buffer, which nats.c does not bound
    // when a loop writes for it, is below max_buffered: the rest waits in the bounded queue.
    void wait_for_room();
    static constexpr int max_buffered = 64 << 10;
    // What a queued subscribe or unsubscribe counts against the publish queue's bound.
    static std::size_t footprint(std::size_t subject) { return subject + 256; }

    Events events_;
    std::uint32_t max_message_bytes_;
    NatsPending pending_;
    std::unique_ptr<NatsSocketLoop> loop_;  // before nc_, which it must outlive
    __natsConnection* nc_ = nullptr;
    // Set by nats.c's connection events, in their order; open() sets it only if none came yet.
    enum : int { unknown = -1, down = 0, up = 1 };
    std::atomic<int> connected_{unknown};
    std::atomic<std::uint64_t> write_timeouts_seen_{0};  // by the disconnected event
    std::unique_ptr<PublishQueue> queue_;                // once nc_ is set
    mutable std::mutex mu_;
    std::condition_variable cv_;
    // Live, or unsubscribed (or closed by nats.c) and not reaped yet, by id.
    std::unordered_map<std::uint64_t, std::unique_ptr<Subscription>> subs_;
    std::vector<std::uint64_t> completed_;  // ids whose handler is done for good, to reap
    std::uint64_t next_id_ = 1;
    bool closed_ = false;                // nats.c reported the connection closed
    bool orphaned_ = false;              // open() failed and left the link to the closed event
    std::atomic<bool> closing_{false};   // by ~NatsLink (and in open()): the closed event is ours
    std::atomic<bool> given_up_{false};  // closed by nats.c, not by ~NatsLink
    std::string why_closed_;             // under mu_, set before given_up_
};

}  // namespace hawser::detail
