// Server user-space memory per idle connection: (RSS with N idle connections − RSS with none) / N,
// for a Hawser server and, as the floor, a bare epoll server that only accepts and registers.
// Each server runs in a child process (the file-descriptor limit is per process); this process
// opens the N client sockets, makes one call on each (so every connection has been used), then
// lets them sit idle.
//   idle_memory_bench [--connections N]   (default 15000; keep N ≤ ~15000 per process)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hawser/hawser.hpp"
#include "wire/frame.hpp"
#include "wire/message.hpp"

namespace {

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

void write_u32(int fd, std::uint32_t v) {
    (void)!::write(fd, &v, 4);
}
std::uint32_t read_u32(int fd) {
    std::uint32_t v = 0;
    (void)!::read(fd, &v, 4);
    return v;
}

// Child: a Hawser server with an echo command; reports its port, then waits for the target count.
[[noreturn]] void serve_hawser(int to_parent, int from_parent) {
    hawser::ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.io_threads = 2;
    so.timeouts.idle = std::chrono::milliseconds(0);
    hawser::Server server(so);
    server.commands().console(
        "echo", [](const hawser::Request&, std::string_view s) { return std::string(s); });
    server.start().value();
    write_u32(to_parent, server.ports()[0]);
    auto target = read_u32(from_parent);
    while (server.connection_count() < target)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    write_u32(to_parent, 1);
    read_u32(from_parent);  // quit
    _exit(0);
}

// Child: the floor. Accepts and registers each socket with epoll; echoes what it reads.
[[noreturn]] void serve_epoll(int to_parent, int from_parent) {
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd, 4096);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    int ep = ::epoll_create1(0);
    epoll_event ev{EPOLLIN, {.fd = lfd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    write_u32(to_parent, ntohs(a.sin_port));
    auto target = read_u32(from_parent);
    std::uint32_t count = 0;
    char buf[65536];
    while (count < target) {
        epoll_event events[64];
        int n = ::epoll_wait(ep, events, 64, 100);
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == lfd) {
                int c;
                while ((c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
                    epoll_event cev{EPOLLIN, {.fd = c}};
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                    ++count;
                }
            } else {
                auto k = ::read(events[i].data.fd, buf, sizeof buf);
                if (k > 0)
                    (void)!::write(events[i].data.fd, buf, static_cast<std::size_t>(k));
                else
                    ::close(events[i].data.fd);
            }
        }
    }
    // Serve the remaining echoes until told to quit.
    write_u32(to_parent, 1);
    for (;;) {
        epoll_event events[64];
        int n = ::epoll_wait(ep, events, 64, -1);
        for (int i = 0; i < n; ++i) {
            auto k = ::read(events[i].data.fd, buf, sizeof buf);
            if (k > 0)
                (void)!::write(events[i].data.fd, buf, static_cast<std::size_t>(k));
            else
                ::close(events[i].data.fd);
        }
    }
}

struct Measurement {
    long rss_before_kib, rss_after_kib;
    double bytes_per_connection;
};

Measurement measure(bool hawser_mode, std::size_t n, const char* source_ip) {
    int up[2], down[2];
    if (::pipe(up) != 0 || ::pipe(down) != 0) std::exit(1);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measurement
        if (hawser_mode) serve_hawser(up[1], down[0]);
        serve_epoll(up[1], down[0]);
    }
    auto port = static_cast<std::uint16_t>(read_u32(up[0]));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the server settle
    long before = rss_kib(pid);
    write_u32(down[1], static_cast<std::uint32_t>(n));

    auto frame = [&] {
        std::vector<std::uint8_t> out;
        hawser::detail::append_frame(out, hawser::ProtocolMark{},
                                     hawser::detail::header_size(1, "echo") + 16,
                                     [](std::uint8_t* p) {
                                         p = hawser::detail::write_header(
                                             p, hawser::detail::Kind::call_console, 0, 1, "echo");
                                         std::memset(p, 'x', 16);
                                     });
        return out;
    }();
    std::vector<int> fds;
    fds.reserve(n);
    sockaddr_in src{}, dst{};
    src.sin_family = dst.sin_family = AF_INET;
    inet_pton(AF_INET, source_ip, &src.sin_addr);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons(port);
    for (std::size_t i = 0; i < n; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                     sizeof one);     // port chosen at connect
        linger abort_on_close{1, 0};  // no TIME_WAIT left behind for the next run
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
        timeval five_seconds{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five_seconds, sizeof five_seconds);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
            ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
            std::perror("connect");
            ::kill(pid, SIGKILL);
            std::exit(1);
        }
        // One call each, answered, so every connection has been through a read and a write.
        (void)!::write(fd, frame.data(), frame.size());
        char reply[256];
        if (::read(fd, reply, sizeof reply) <= 0) {
            std::fprintf(stderr, "no reply on connection %zu\n", i);
            ::kill(pid, SIGKILL);
            std::exit(1);
        }
        fds.push_back(fd);
    }
    read_u32(up[0]);  // the server holds them all
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    long after = rss_kib(pid);
    write_u32(down[1], 0);
    for (int fd : fds) ::close(fd);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    for (int fd : {up[0], up[1], down[0], down[1]}) ::close(fd);
    return {before, after, double(after - before) * 1024.0 / double(n)};
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t n = 15000;
    for (int i = 1; i + 1 < argc; i += 2)
        if (std::string(argv[i]) == "--connections") n = std::stoul(argv[i + 1]);
    hawser::raise_file_limit();
    auto floor = measure(false, n, "127.0.0.3");
    auto hw = measure(true, n, "127.0.0.2");
    std::printf("idle_memory_bench: %zu idle connections, server RSS delta per connection\n", n);
    std::printf("  bare epoll: %6.0f bytes  (RSS %ld -> %ld KiB)\n", floor.bytes_per_connection,
                floor.rss_before_kib, floor.rss_after_kib);
    std::printf("  hawser:     %6.0f bytes  (RSS %ld -> %ld KiB)  target <= 1024\n",
                hw.bytes_per_connection, hw.rss_before_kib, hw.rss_after_kib);
    std::printf("  hawser - epoll floor: %.0f bytes per connection\n",
                hw.bytes_per_connection - floor.bytes_per_connection);
    return 0;
}
