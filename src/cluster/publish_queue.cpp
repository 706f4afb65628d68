// PublishQueue (see publish_queue.hpp).
#include "cluster/publish_queue.hpp"

namespace hawser::detail {

namespace {

Error overloaded() {
    return Error{Errc::overloaded,
                 "NATS is not taking this node's messages as fast as it sends them "
                 "(max_publish_queue_bytes)"};
}

}  // namespace

PublishQueue::PublishQueue(std::size_t max_bytes, Send send)
    : max_bytes_(max_bytes), send_(std::move(send)), thread_([this] { run(); }) {}

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
}

Result<void> PublishQueue::push(std::string_view subject, std::string_view data, bool essential) {
    auto size = footprint(subject.size(), data.size());
    {
        std::lock_guard lock(mu_);  // a message refused is not copied first
        if (!fits(size, essential)) return overloaded();
    }
    Message m;
    m.bytes.reserve(subject.size() + 1 + data.size());
    m.bytes.append(subject).push_back('\0');
    m.data_at = m.bytes.size();
    m.bytes.append(data);
    {
        std::lock_guard lock(mu_);
        if (!fits(size, essential)) return overloaded();  // others came meanwhile
        bytes_ += size;
        ++pushed_;
        queue_.push_back(std::move(m));
    }
    work_.notify_one();
    return {};
}

bool PublishQueue::drained(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    auto target = pushed_;
    return sent_.wait_until(lock, deadline, [&] { return done_ >= target || stopping_; }) &&
           done_ >= target;
}

std::size_t PublishQueue::bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
}

std::uint64_t PublishQueue::lost() const {
    std::lock_guard lock(mu_);
    return lost_;
}

void PublishQueue::run() {
    std::deque<Message> batch;
    std::unique_lock lock(mu_);
    for (;;) {
        work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) break;
        batch.swap(queue_);
        lock.unlock();
        // Each message's memory and bytes are given back as it goes, so a long batch behind a
        // slow NATS frees room as NATS takes it.
        while (!batch.empty()) {
            auto& m = batch.front();
            bool ok = send_(m.bytes.data(), std::string_view(m.bytes).substr(m.data_at));
            auto size = footprint(m.data_at - 1, m.bytes.size() - m.data_at);
            batch.pop_front();
            lock.lock();
            bytes_ -= size;
            ++done_;
            if (!ok) ++lost_;
            bool stop = stopping_;
            lock.unlock();
            sent_.notify_all();
            if (stop) break;
        }
        lock.lock();
        if (stopping_) break;
    }
    // What was never sent goes with the queue.
    lost_ += batch.size() + queue_.size();
    sent_.notify_all();
}

}  // namespace hawser::detail
