// PublishQueue (see publish_queue.hpp).
#include "cluster/publish_queue.hpp"

#include <algorithm>

namespace hawser::detail {

PublishQueue::PublishQueue(std::size_t max_bytes, Send send, std::atomic<std::uint64_t>& lost,
                           std::function<void()> caught_up)
    : max_bytes_(max_bytes),
      send_(std::move(send)),
      lost_(lost),
      caught_up_(std::move(caught_up)),
      thread_([this] { run(); }) {}

PublishQueue::~PublishQueue() {
    stop();
    thread_.join();
}

void PublishQueue::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    work_.notify_all();
    sent_.notify_all();
}

Result<void> PublishQueue::admit(std::size_t size, Admit how) {
    if (stopping_) return Error{Errc::cluster_unavailable, "the NATS link is closing"};
    if (how == Admit::always || bytes_ == 0 ||
        bytes_ + size <= (how == Admit::essential ? 2 * max_bytes_ : max_bytes_))
        return {};
    refused_ = true;
    return Error{Errc::overloaded,
                 "NATS is not taking this node's messages as fast as it sends them "
                 "(max_publish_queue_bytes)"};
}

Result<void> PublishQueue::push(std::string_view subject, std::string_view data, Admit how) {
    auto size = footprint(subject.size(), data.size());
    {
        std::lock_guard lock(mu_);  // a message refused is not copied first
        if (auto ok = admit(size, how); !ok) return ok;
    }
    Message m;
    m.bytes.reserve(subject.size() + 1 + data.size());
    m.bytes.append(subject).push_back('\0');
    m.data_at = m.bytes.size();
    m.bytes.append(data);
    m.footprint = size;
    return enqueue(std::move(m), how);
}

Result<void> PublishQueue::push(Operation operation, std::size_t cost, Admit how) {
    Message m;
    m.operation = std::move(operation);
    m.footprint = cost;
    return enqueue(std::move(m), how);
}

Result<void> PublishQueue::enqueue(Message m, Admit how) {
    {
        std::lock_guard lock(mu_);
        if (auto ok = admit(m.footprint, how); !ok) return ok;  // others came meanwhile
        bytes_ += m.footprint;
        ++pushed_;
        queue_.push_back(std::move(m));
    }
    work_.notify_one();
    return {};
}

bool PublishQueue::drained(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    auto target = pushed_;
    sent_.wait_until(lock, deadline, [&] { return done_ >= target || stopping_; });
    return done_ >= target;
}

std::size_t PublishQueue::bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
}

void PublishQueue::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) break;
        auto m = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        if (m.operation)
            m.operation();
        else if (!send_(m.bytes.data(), std::string_view(m.bytes).substr(m.data_at)))
            lost_.fetch_add(1, std::memory_order_relaxed);
        auto size = m.footprint;
        m = {};  // its memory goes now, not under the lock
        lock.lock();
        bytes_ -= size;
        ++done_;
        sent_.notify_all();
        if (bytes_ == 0 && refused_ && !stopping_) {
            refused_ = false;
            if (caught_up_) {
                lock.unlock();
                caught_up_();
                lock.lock();
            }
        }
    }
    lost_.fetch_add(std::ranges::count_if(queue_, [](const Message& m) { return !m.operation; }),
                    std::memory_order_relaxed);
    queue_.clear();
    bytes_ = 0;
}

}  // namespace hawser::detail
