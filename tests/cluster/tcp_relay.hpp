// A TCP relay on loopback for fault injection: clients connect to it and it relays each to
// `upstream_port`, both ways, until hold_client_writes() makes it stop reading what clients
// send (so their writes back up, as to a server that does not read) while it still relays what
// the upstream sends them. One thread; non-blocking sockets; stops with the object.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hawser::test {

class TcpRelay {
  public:
    explicit TcpRelay(int upstream_port) : upstream_port_(upstream_port) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(0);
        if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(listen_fd_, 16) != 0)
            throw std::runtime_error("relay: cannot listen");
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        thread_ = std::thread([this] { run(); });
    }
    ~TcpRelay() {
        stopping_ = true;
        wake();
        thread_.join();
        for (auto& p : pairs_) {
            ::close(p->client.fd);
            ::close(p->upstream.fd);
        }
        ::close(listen_fd_);
        ::close(wake_fd_);
    }
    TcpRelay(const TcpRelay&) = delete;
    TcpRelay& operator=(const TcpRelay&) = delete;

    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
    void hold_client_writes(bool hold) {
        holding_ = hold;
        wake();
    }

  private:
    struct Side {
        int fd = -1;
        std::string unsent;  // read from the other side, not yet written to this one
    };
    struct Pair {
        Side client, upstream;
        bool closed = false;
    };

    static sockaddr_in loopback(int port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(std::uint16_t(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
    }
    void wake() {
        std::uint64_t one = 1;
        (void)!::write(wake_fd_, &one, sizeof one);
    }
    void accept_one() {
        int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) return;
        int u = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(upstream_port_);
        if (u < 0 || ::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(c);
            if (u >= 0) ::close(u);
            return;
        }
        ::fcntl(u, F_SETFL, ::fcntl(u, F_GETFL) | O_NONBLOCK);
        auto p = std::make_unique<Pair>();
        p->client.fd = c;
        p->upstream.fd = u;
        pairs_.push_back(std::move(p));
    }
    // Moves what `from` has into `to` (what `to` does not take now waits in to.unsent).
    static bool relay(Side& from, Side& to) {
        char buf[64 << 10];
        ssize_t n = ::recv(from.fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
        if (n > 0) to.unsent.append(buf, std::size_t(n));
        return flush(to);
    }
    static bool flush(Side& to) {
        while (!to.unsent.empty()) {
            ssize_t n = ::send(to.fd, to.unsent.data(), to.unsent.size(), MSG_NOSIGNAL);
            if (n < 0) return errno == EAGAIN || errno == EINTR;
            to.unsent.erase(0, std::size_t(n));
        }
        return true;
    }
    void run() {
        while (!stopping_) {
            std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
            for (auto& p : pairs_) {
                // Read a side only while the other has taken what came before.
                short from_client = (!holding_ && p->upstream.unsent.empty()) ? POLLIN : 0;
                short from_upstream = p->client.unsent.empty() ? POLLIN : 0;
                fds.push_back({p->client.fd,
                               short(from_client | (p->client.unsent.empty() ? 0 : POLLOUT)), 0});
                fds.push_back({p->upstream.fd,
                               short(from_upstream | (p->upstream.unsent.empty() ? 0 : POLLOUT)),
                               0});
            }
            if (::poll(fds.data(), fds.size(), -1) < 0) continue;
            if (fds[0].revents) {
                std::uint64_t n;
                (void)!::read(wake_fd_, &n, sizeof n);
            }
            if (fds[1].revents & POLLIN) accept_one();
            for (std::size_t i = 0; i + 2 < fds.size() && i / 2 < pairs_.size(); i += 2) {
                auto& p = *pairs_[i / 2];
                const auto c = fds[i + 2].revents, u = fds[i + 3].revents;
                bool ok = true;
                if (c & POLLOUT) ok = ok && flush(p.client);
                if (u & POLLOUT) ok = ok && flush(p.upstream);
                if (ok && (c & (POLLIN | POLLHUP | POLLERR)))  // a hang-up is read while held too
                    ok =
                        holding_ && !(c & (POLLHUP | POLLERR)) ? true : relay(p.client, p.upstream);
                if (ok && (u & (POLLIN | POLLHUP | POLLERR))) ok = relay(p.upstream, p.client);
                p.closed = !ok;
            }
            for (std::size_t i = 0; i < pairs_.size();) {
                if (pairs_[i]->closed) {
                    ::close(pairs_[i]->client.fd);
                    ::close(pairs_[i]->upstream.fd);
                    pairs_.erase(pairs_.begin() + std::ptrdiff_t(i));
                } else {
                    ++i;
                }
            }
        }
    }

    const int upstream_port_;
    int listen_fd_ = -1, wake_fd_ = -1, port_ = 0;
    std::atomic<bool> holding_{false}, stopping_{false};
    std::vector<std::unique_ptr<Pair>> pairs_;  // the relay thread's only
    std::thread thread_;
};

}  // namespace hawser::test
