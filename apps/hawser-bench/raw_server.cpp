// The raw baseline's server: one thread, epoll, plain sockets, no framework. Answers pings and
// broadcasts on request (raw_wire.hpp). It buffers what a socket cannot take yet, as any
// hand-written server must. Runs as `hawser-bench raw-server --listen 127.0.0.1:PORT`, with
// `--sealed` for the variant with per-connection keys (raw_seal.hpp).
#include "raw_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "bench_channels.hpp"
#include "clock.hpp"
#include "raw_seal.hpp"
#include "raw_wire.hpp"

namespace hawser::bench {

namespace {

struct Peer {
    bool open = false;
    std::string in, out;                // the socket's bytes
    std::vector<std::string> channels;  // left when it closes
    // Sealed only: its keys once it has said hello, and the frames on either side of them.
    std::unique_ptr<raw::Sealer> seal;
    std::string plain_in, plain_out;
};

class RawServer {
  public:
    RawServer(int listener, int epoll, bool sealed) : lfd_(listener), ep_(epoll), sealed_(sealed) {}

    void run() {
        std::vector<epoll_event> events(1024);
        for (;;) {
            int n = ::epoll_wait(ep_, events.data(), int(events.size()), -1);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return;
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == lfd_)
                    accept_all();
                else
                    on_event(fd, events[i].events);
            }
        }
    }

  private:
    Peer& peer(int fd) {
        if (std::size_t(fd) >= peers_.size()) peers_.resize(std::size_t(fd) + 1);
        return peers_[std::size_t(fd)];
    }

    void accept_all() {
        for (;;) {
            int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = fd;
            ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
            peer(fd).open = true;
            if (!sealed_) open_.push_back(fd);  // a sealed one once it has said hello
        }
    }

    // The sealed variant's first frame: the client's key, answered with this side's. False if
    // the connection began with anything else.
    bool greet(int fd) {
        auto& p = peer(fd);
        auto hello = raw::Sealer::hello_at(p.in);
        if (!hello) return false;
        if (hello->empty()) return true;  // not whole yet
        auto seal = raw::Sealer::server(*hello);
        if (!seal) return false;
        p.seal = std::make_unique<raw::Sealer>(std::move(*seal));
        p.seal->append_hello(p.out);
        p.in.erase(0, raw::Sealer::hello_frame_bytes);
        open_.push_back(fd);
        return true;
    }

    // Frames to send: sealed when flushed, in the sealed variant.
    std::string& unsent(Peer& p) { return sealed_ ? p.plain_out : p.out; }

    void close_peer(int fd) {
        ::close(fd);
        auto& p = peer(fd);
        for (const auto& name : p.channels) {
            auto it = channels_.find(name);
            if (it == channels_.end()) continue;
            std::erase(it->second, fd);
            if (it->second.empty()) channels_.erase(it);
        }
        p = Peer{};
        std::erase(open_, fd);
    }

    void on_event(int fd, std::uint32_t events) {
        if (events & EPOLLOUT) flush(fd);
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
        char buf[64 << 10];
        auto& p = peer(fd);
        for (;;) {
            auto n = ::read(fd, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return close_peer(fd);
            if (n < 0) break;
            p.in.append(buf, std::size_t(n));
        }
        if (sealed_) {
            if (!p.seal && !greet(fd)) return close_peer(fd);
            if (!p.seal) return;
            auto opened = p.seal->open(p.in, p.plain_in);
            if (opened < 0) return close_peer(fd);
            p.in.erase(0, std::size_t(opened));
        }
        auto& in = sealed_ ? p.plain_in : p.in;
        auto& out = unsent(p);
        parsing_ = fd;
        bool bad = false;  // a request it refuses: the connection closes, as Hawser's would
        auto used = raw::parse_frames(in, [&](raw::Type type, std::string_view payload) {
            if (bad) return;
            if (type == raw::ping) raw::append_frame(out, raw::pong, payload);
            if (type == raw::heartbeat) raw::append_frame(out, raw::heartbeat, {});
            if (type == raw::trigger) bad = !broadcast(payload);
            if (type == raw::subscribe) {
                bad = !subscribe(fd, payload);
                if (!bad) raw::append_frame(out, raw::pong, {});
            }
            if (type == raw::publish) {
                bad = !publish(payload);
                if (!bad) raw::append_frame(out, raw::pong, {});
            }
        });
        parsing_ = -1;
        if (used < 0 || bad) return close_peer(fd);
        in.erase(0, std::size_t(used));
        flush(fd);
    }

    // bench.broadcast's limits.
    bool broadcast(std::string_view request) {
        std::uint32_t n[2]{};
        if (!parse_numbers(request, n)) return false;
        const auto count = n[0], size = n[1];
        if (count == 0 || count > max_broadcasts || size < 32 || size > max_broadcast_bytes ||
            std::uint64_t(count) * size > max_broadcast_total)
            return false;
        // Every message first, then one write per connection: what a hand-written server that
        // batches would do (Hawser batches what is queued in one turn of its loop the same way).
        std::string batch;
        for (std::uint32_t seq = 0; seq < count; ++seq) {
            auto text = std::to_string(seq) + " " + std::to_string(now_ns()) + " ";
            text.resize(size, 'x');
            raw::append_frame(batch, raw::message, text);
        }
        // Over a copy: a failed write closes its peer, which edits open_. The asker's peer is
        // flushed after its frames are handled (closing it now would free what is parsed).
        auto everyone = open_;
        for (int fd : everyone) {
            auto& p = peer(fd);
            if (!p.open) continue;
            bool idle = p.out.empty() && p.plain_out.empty();
            unsent(p) += batch;
            if (idle && fd != parsing_) flush(fd);
        }
        return true;
    }

    // Within the limits Hawser keeps: 1 to 128 bytes, 256 channels a connection, once each.
    bool subscribe(int fd, std::string_view channel) {
        auto& p = peer(fd);
        if (channel.empty() || channel.size() > 128 || p.channels.size() >= 256) return false;
        if (std::find(p.channels.begin(), p.channels.end(), channel) != p.channels.end())
            return true;
        p.channels.emplace_back(channel);
        channels_[p.channels.back()].push_back(fd);
        return true;
    }

    // One message per channel, written to each subscriber on its own: a hand-written server's
    // per-message send. The limits bench.publish has.
    bool publish(std::string_view text) {
        auto request = PublishRequest::parse(text);
        if (!request) return false;
        for (std::uint32_t c = 0; c < request->count; ++c) {
            auto it = channels_.find(request->channel(c));
            if (it == channels_.end()) continue;
            auto message = std::to_string(c) + " " + std::to_string(now_ns()) + " ";
            message.resize(request->size, 'x');
            std::string frame;
            raw::append_frame(frame, raw::message, message);
            for (int fd : std::vector<int>(it->second)) {  // a failed write edits the list
                auto& q = peer(fd);
                if (!q.open) continue;
                bool idle = q.out.empty() && q.plain_out.empty();
                unsent(q) += frame;
                if (idle && fd != parsing_) flush(fd);
            }
        }
        return true;
    }

    void flush(int fd) {
        auto& p = peer(fd);
        if (!p.open) return;
        if (!p.plain_out.empty()) {  // one record per write, as Hawser seals one piece
            p.seal->seal(p.plain_out, p.out);
            std::string().swap(p.plain_out);
        }
        while (!p.out.empty()) {
            auto n = ::send(fd, p.out.data(), p.out.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                epoll_event ev{};
                ev.events = EPOLLIN | EPOLLOUT;
                ev.data.fd = fd;
                ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
                return;
            }
            if (n < 0) return close_peer(fd);
            p.out.erase(0, std::size_t(n));
        }
        std::string().swap(p.out);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
    }

    int lfd_, ep_;
    const bool sealed_;
    std::vector<Peer> peers_;
    std::vector<int> open_;
    std::unordered_map<std::string, std::vector<int>> channels_;  // subscribers by channel
    int parsing_ = -1;  // the peer whose frames are being handled
};

}  // namespace

int run_raw_server(const std::string& host, std::uint16_t port, bool sealed) {
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
        std::fprintf(stderr, "raw-server: '%s' is not an IPv4 address\n", host.c_str());
        return 2;
    }
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 4096) != 0) {
        std::fprintf(stderr, "raw-server: cannot listen on %s:%u: %s\n", host.c_str(), port,
                     std::strerror(errno));
        return 1;
    }
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    std::printf("listening on %s:%u\n", host.c_str(), unsigned(ntohs(a.sin_port)));
    std::fflush(stdout);
    RawServer(lfd, ep, sealed).run();
    return 0;
}

}  // namespace hawser::bench
