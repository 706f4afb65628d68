// PublishQueue: messages for NATS handed over from any thread and sent, in the order handed
// over, by one thread of the queue's own, which waits while NATS falls behind (its link hands
// nats.c no more than it soon writes): the threads that publish (IO threads among them) must
// never wait for NATS. Operations (subscribing, unsubscribing: they take nats.c's connection
// lock and write too) are queued alike and run on the queue's thread in their place among the
// messages.
// Bounded in bytes: past the bound a message is refused at once (Errc::overloaded) instead of
// queued. An essential one (a load report, an interest marker, a subscription) may take the
// queue up to twice the bound, so that a queue full of publications does not refuse it; it
// still goes out behind them, in order. One admitted always (an unsubscribe: there is at most
// one for each subscription admitted) is never refused while the queue runs.
// Ownership: owned by its NatsLink. Thread affinity: push, drained and stop from any thread;
// `send`, operations and `caught_up` run on the queue's thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "hawser/error.hpp"

namespace hawser::detail {

class PublishQueue {
  public:
    // Sends one message (the subject is NUL-terminated for nats.c). May block; false when the
    // message was lost.
    using Send = std::function<bool(const char* subject, std::string_view data)>;
    using Operation = std::function<void()>;
    enum class Admit { bounded, essential, always };

    // Messages lost (send said so, or still queued at stop) are counted in `lost`, which must
    // outlive the queue. `caught_up` runs when the queue has emptied after refusing messages:
    // those are lost, and whoever keeps state from them may want to put it right.
    PublishQueue(std::size_t max_bytes, Send send, std::atomic<std::uint64_t>& lost,
                 std::function<void()> caught_up = {});
    // stop(), then waits for the queue's thread: at most the message it is sending.
    ~PublishQueue();
    PublishQueue(const PublishQueue&) = delete;
    PublishQueue& operator=(const PublishQueue&) = delete;

    // Queues a copy. Errc::overloaded when it would take the queue past its bound (twice the
    // bound for an essential message); one message is taken when nothing waits, however big,
    // so that any message can be sent. Errc::cluster_unavailable once stopped.
    Result<void> push(std::string_view subject, std::string_view data,
                      Admit admit = Admit::bounded);
    // Queues an operation that counts `cost` bytes against the bound until it has run.
    // Refused as push refuses; never run once stopped (it is dropped, not counted as lost).
    Result<void> push(Operation operation, std::size_t cost, Admit admit);
    // Waits until everything pushed before this call has been sent (or lost); false if
    // `deadline` came first, or the queue stopped.
    bool drained(std::chrono::steady_clock::time_point deadline);
    // Sends nothing more once the message being sent (if any) returns; what waits is lost.
    void stop();

    std::size_t bytes() const;  // queued or being sent, now

  private:
    struct Message {
        std::string bytes;  // subject, NUL, data
        std::size_t data_at = 0;
        Operation operation;  // set: this is an operation, not a message
        std::size_t footprint = 0;
    };
    // What a message counts against the bound: its bytes, and what holding them costs (the
    // deque's slot, the string's heap block), so that many small ones cannot exceed it.
    static std::size_t footprint(std::size_t subject, std::size_t data) {
        return subject + 1 + data + 64;
    }
    Result<void> admit(std::size_t size, Admit how);  // under mu_
    Result<void> enqueue(Message m, Admit how);
    void run();

    const std::size_t max_bytes_;
    const Send send_;
    std::atomic<std::uint64_t>& lost_;
    const std::function<void()> caught_up_;
    mutable std::mutex mu_;
    std::condition_variable work_, sent_;
    std::deque<Message> queue_;
    std::size_t bytes_ = 0;  // of queue_ and of the message being sent
    std::uint64_t pushed_ = 0, done_ = 0;
    bool refused_ = false;  // since the queue was last empty
    bool stopping_ = false;
    std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace hawser::detail
