// NatsLink: this node's connection to NATS (nats.c) — connects in the background and keeps
// reconnecting (with jitter) for as long as it lives, publishes only while connected (so
// cluster operations fail at once instead of piling up while NATS is away), and delivers
// subscribed messages to handlers. Subscriptions survive reconnects (nats.c resends them).
// Ownership: owned by the Cluster. Thread affinity: publish/subscribe from any thread;
// handlers and events run on nats.c's threads, one thread per subscription, in order.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/cluster.hpp"

struct __natsConnection;
struct __natsSubscription;

namespace hawser::detail {

class NatsLink {
  public:
    struct Events {
        std::function<void()> connected;                // the first connect and every reconnect
        std::function<void(std::string)> disconnected;  // lost the server (why); reconnecting
        std::function<void(std::string)> error;         // asynchronous errors (slow consumer, ...)
    };
    using Handler = std::function<void(std::string_view subject, std::string_view data)>;

    // Checks the options and starts connecting. NATS being unreachable is not an error.
    static Result<std::unique_ptr<NatsLink>> open(const ClusterOptions& options,
                                                  const std::string& client_name, Events events);
    ~NatsLink();  // closes, and returns once no handler or event runs any more
    NatsLink(const NatsLink&) = delete;
    NatsLink& operator=(const NatsLink&) = delete;

    bool connected() const;
    // Errc::cluster_unavailable unless connected now; limit_exceeded over max_message_bytes.
    Result<void> publish(const std::string& subject, std::string_view data);
    // Waits until NATS has everything published so far (or the timeout passes).
    void flush(std::chrono::milliseconds timeout);
    // Handler runs for every message on `subject` (wildcards allowed), on a nats.c thread.
    Result<void> subscribe(const std::string& subject, Handler handler);

  private:
    struct Subscription {
        NatsLink* link;
        Handler handler;
        __natsSubscription* sub = nullptr;
    };
    explicit NatsLink(Events events, std::uint32_t max_message_bytes)
        : events_(std::move(events)), max_message_bytes_(max_message_bytes) {}
    void on_complete();  // a subscription's handler returned for the last time

    Events events_;
    std::uint32_t max_message_bytes_;
    __natsConnection* nc_ = nullptr;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<Subscription>> subs_;
    std::size_t completed_ = 0;  // subscriptions whose handlers are done for good
    bool closed_ = false;        // nats.c reported the connection closed
};

}  // namespace hawser::detail
