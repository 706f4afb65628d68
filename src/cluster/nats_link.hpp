// NatsLink: this node's connection to NATS (nats.c) — connects in the background and keeps
// reconnecting (with jitter) for as long as it lives, publishes only while connected (so
// cluster operations fail at once instead of piling up while NATS is away), through a
// PublishQueue (so no publisher waits for a NATS that does not read), and delivers
// subscribed messages to handlers. Subscriptions survive reconnects (nats.c resends them).
// Ownership: owned by the Cluster. Thread affinity: publish/subscribe from any thread;
// handlers run on nats.c's threads, each subscription's messages in order: a thread per
// subscription, or (Delivery::shared, for thousands of channel subscriptions) nats.c's one
// delivery thread for all of them; events on nats.c's threads.
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
    };
    using Handler = std::function<void(std::string_view subject, std::string_view data)>;

    enum class Delivery { per_subscription, shared };
    // Checks the options and starts connecting. NATS being unreachable is not an error.
    // Messages published and then lost (nats.c refused them, or the link stopped with them
    // queued) are counted in `lost`, which must outlive the link.
    static Result<std::unique_ptr<NatsLink>> open(const ClusterOptions& options,
                                                  const std::string& client_name, Events events,
                                                  std::atomic<std::uint64_t>& lost,
                                                  Delivery delivery = Delivery::per_subscription,
                                                  NatsPending pending = {});
    ~NatsLink();  // closes, and returns once no handler or event runs any more
    NatsLink(const NatsLink&) = delete;
    NatsLink& operator=(const NatsLink&) = delete;

    // As nats.c last said (its own status call takes the lock a stalled write holds).
    bool connected() const;
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
    // The id is for unsubscribe.
    Result<std::uint64_t> subscribe(const std::string& subject, Handler handler);
    // Stops a subscription; its handler may still be running, and returns soon after.
    void unsubscribe(std::uint64_t id);

  private:
    struct Subscription {
        NatsLink* link;
        Handler handler;
        std::uint64_t id = 0;
        __natsSubscription* sub = nullptr;
        bool complete = false;  // its handler has returned for the last time
    };
    // Frees subscriptions that were unsubscribed and are complete. Under mu_.
    void reap();
    NatsLink(Events events, std::uint32_t max_message_bytes, NatsPending pending)
        : events_(std::move(events)), max_message_bytes_(max_message_bytes), pending_(pending) {}

    Events events_;
    std::uint32_t max_message_bytes_;
    NatsPending pending_;
    __natsConnection* nc_ = nullptr;
    // Set by nats.c's connection events, in their order; open() sets it only if none came yet.
    enum : int { unknown = -1, down = 0, up = 1 };
    std::atomic<int> connected_{unknown};
    std::unique_ptr<PublishQueue> queue_;  // once nc_ is set
    std::mutex mu_;
    std::condition_variable cv_;
    // Live, or unsubscribed and not reaped, by id.
    std::unordered_map<std::uint64_t, std::unique_ptr<Subscription>> subs_;
    std::vector<std::uint64_t> unsubscribed_;  // ids waiting to be reaped
    std::uint64_t next_id_ = 1;
    bool closed_ = false;  // nats.c reported the connection closed
};

}  // namespace hawser::detail
