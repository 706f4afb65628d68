// NatsSocketLoop (see nats_socket_loop.hpp): poll(2) on nats.c's socket and an eventfd.
#include "cluster/nats_socket_loop.hpp"

#include <nats/nats.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <system_error>

namespace hawser::detail {

NatsSocketLoop::NatsSocketLoop(std::chrono::milliseconds write_deadline)
    : write_deadline_(write_deadline), wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    try {
        thread_ = std::thread([this] { run(); });
    } catch (...) {
        ::close(wake_fd_);
        throw;
    }
}

NatsSocketLoop::~NatsSocketLoop() {
    stop();
    ::close(wake_fd_);
}

bool NatsSocketLoop::attach_to(natsOptions* options) {
    // nats.c calls these holding its connection's lock: they only take ours, never call it.
    auto on_attach = [](void** user, void* loop, natsConnection* nc, natsSock socket) {
        *user = loop;  // the same loop again on a reconnect
        static_cast<NatsSocketLoop*>(loop)->attached(nc, socket);
        return NATS_OK;
    };
    auto on_read = [](void* user, bool add) {
        static_cast<NatsSocketLoop*>(user)->want_read(add);
        return NATS_OK;
    };
    auto on_write = [](void* user, bool add) {
        static_cast<NatsSocketLoop*>(user)->want_write(add);
        return NATS_OK;
    };
    auto on_detach = [](void* user) {
        static_cast<NatsSocketLoop*>(user)->detached();
        return NATS_OK;
    };
    return natsOptions_SetEventLoop(options, this, on_attach, on_read, on_write, on_detach) ==
           NATS_OK;
}

void NatsSocketLoop::attached(natsConnection* nc, int socket) {
    std::lock_guard lock(mu_);
    nc_ = nc;
    fd_ = socket;  // read from now on
    ++attaches_;
    attached_ = true;
    writing_ = false;
    wake();
}

void NatsSocketLoop::want_read(bool add) {
    // nats.c asks to stop reading just before it closes the socket, and never to start again:
    // an attach does that.
    std::lock_guard lock(mu_);
    if (!add) forget_socket();
    wake();
}

void NatsSocketLoop::forget_socket() {
    fd_ = -1;  // never poll or shut down that number again
    writing_ = false;
}

void NatsSocketLoop::want_write(bool add) {
    std::lock_guard lock(mu_);
    if (add && !writing_) write_waits_since_ = std::chrono::steady_clock::now();
    writing_ = add;
    // No wake to stop writing (the loop sees it when the socket is next writable), nor for
    // what the loop's own calls into nats.c ask: it looks again once they return.
    if (add && std::this_thread::get_id() != loop_thread_) wake();
}

void NatsSocketLoop::detached() {
    // Notified under the lock: the waiter may free the loop as soon as it sees the change.
    std::lock_guard lock(mu_);
    forget_socket();
    attached_ = false;
    wake();
    detached_.notify_all();
}

void NatsSocketLoop::wait_detached() {
    std::unique_lock lock(mu_);
    detached_.wait(lock, [&] { return !attached_; });
}

void NatsSocketLoop::wake() {
    std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);  // nonblocking; a full counter wakes anyway
}

bool NatsSocketLoop::wait_written(std::uint64_t seen, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    written_.wait_for(lock, timeout, [&] { return writes_ != seen || stopping_ || released_; });
    return !stopping_ && !released_;
}

void NatsSocketLoop::release_waiters() {
    {
        std::lock_guard lock(mu_);
        released_ = true;
    }
    written_.notify_all();
}

std::uint64_t NatsSocketLoop::writes() const {
    std::lock_guard lock(mu_);
    return writes_;
}

std::uint64_t NatsSocketLoop::write_timeouts() const {
    std::lock_guard lock(mu_);
    return write_timeouts_;
}

void NatsSocketLoop::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        wake();
    }
    written_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void NatsSocketLoop::run() {
    using clock = std::chrono::steady_clock;
    std::unique_lock lock(mu_);
    loop_thread_ = std::this_thread::get_id();
    while (!stopping_) {
        const int fd = fd_;
        const auto attaches = attaches_;
        short events = 0;
        if (fd >= 0) events |= POLLIN;
        if (fd >= 0 && writing_) events |= POLLOUT;
        int timeout_ms = -1;
        if (events & POLLOUT) {
            auto now = clock::now();
            if (now - write_waits_since_ >= write_deadline_) {
                // NATS took nothing for the deadline: take it as gone. nats.c notices the shut
                // socket on the next read or write, and reconnects. fd_ is still open: nats.c
                // closes it only after want_read(false), which waits for mu_.
                ::shutdown(fd, SHUT_RDWR);
                ++write_timeouts_;
                write_waits_since_ = now;
            }
            auto left = write_waits_since_ + write_deadline_ - now;
            timeout_ms = int(std::chrono::ceil<std::chrono::milliseconds>(left).count());
        }
        lock.unlock();
        pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {events ? fd : -1, events, 0}};
        const int n = ::poll(fds, 2, timeout_ms);
        const bool woken = n > 0 && (fds[0].revents & POLLIN);
        if (woken) {
            std::uint64_t count;
            (void)!::read(wake_fd_, &count, sizeof count);
        }
        lock.lock();
        // What changed while polling (a reconnect, maybe to the same number; a socket about to
        // close) is polled afresh.
        if (n <= 0 || fd_ < 0 || attaches_ != attaches || stopping_) continue;
        const short ready = fds[1].revents;
        if (ready & POLLNVAL) {
            // nats.c closed it without saying (a reconnect that failed after attaching): never
            // poll or shut down that number again; the next attach brings the new socket.
            forget_socket();
            continue;
        }
        const bool read = ready & (POLLIN | POLLHUP | POLLERR);
        const bool writable = ready & (POLLOUT | POLLHUP | POLLERR);
        // Asked to write: the socket usually takes it at once, so try before polling for it
        // (nats.c keeps what it does not take, and asks no more: the poll then waits for it).
        const bool write = writing_ && (writable || woken);
        auto* nc = nc_;
        lock.unlock();
        // nats.c checks under its lock that the connection still has this socket, and reads
        // once (so that it is back here soon) or writes what it has buffered.
        if (read) natsConnection_ProcessReadEvent(nc);
        if (write) natsConnection_ProcessWriteEvent(nc);
        lock.lock();
        if (write) {
            ++writes_;
            // Only a socket that said it takes more counts as NATS taking what is written.
            if (writable) write_waits_since_ = clock::now();
            written_.notify_all();
        }
    }
}

}  // namespace hawser::detail
