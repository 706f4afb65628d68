// Server user-space memory per idle connection: (RSS with N idle connections − RSS with none) / N,
// for a Hawser server (plaintext and encrypted) and, as the floor, a bare epoll server that only
// accepts and registers.
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
#include "wire/secure_channel.hpp"

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
[[noreturn]] void serve_hawser(int to_parent, int from_parent, bool encrypted) {
    hawser::ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.io_threads = 2;
    so.data_dir = "";
    so.transport.insecure_plaintext = !encrypted;
    // Every connection comes from 127.0.0.1 as fast as the client can open them.
    so.admission.max_handshakes_per_ip = 1u << 20;
    so.admission.max_connections_per_address = 0;
    so.admission.connections_per_second_per_ip = 0;
    so.timeouts.idle = std::chrono::milliseconds(0);
    hawser::Server server(so);
    server.commands().console(
        "echo", [](const hawser::Request&, std::string_view s) { return std::string(s); });
    server.start().value();
    write_u32(to_parent, server.ports()[0]);
    auto key = hawser::detail::noise::key_from_hex(server.public_key()).value();
    (void)!::write(to_parent, key.data(), key.size());
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

enum class Mode { epoll, plaintext, encrypted };

// Reads exactly n bytes or fails.
bool read_exact(int fd, void* buf, std::size_t n) {
    auto p = static_cast<char*>(buf);
    while (n) {
        auto k = ::read(fd, p, n);
        if (k <= 0) return false;
        p += k, n -= static_cast<std::size_t>(k);
    }
    return true;
}

std::vector<std::uint8_t> framed(std::span<const std::uint8_t> body) {
    std::vector<std::uint8_t> out;
    hawser::detail::append_frame(out, hawser::ProtocolMark{}, body.size(), [&](std::uint8_t* p) {
        std::memcpy(p, body.data(), body.size());
    });
    return out;
}

Measurement measure(Mode mode, std::size_t n, const char* source_ip) {
    bool hawser_mode = mode != Mode::epoll;
    int up[2], down[2];
    if (::pipe(up) != 0 || ::pipe(down) != 0) std::exit(1);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measurement
        if (hawser_mode) serve_hawser(up[1], down[0], mode == Mode::encrypted);
        serve_epoll(up[1], down[0]);
    }
    auto port = static_cast<std::uint16_t>(read_u32(up[0]));
    hawser::detail::noise::Key server_key{};
    if (hawser_mode) read_exact(up[0], server_key.data(), server_key.size());
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
        // The handshake a client would make (plaintext hello or Noise NK), then one call each,
        // answered, so every connection has been through a read and a write.
        std::vector<std::uint8_t> call = frame;
        if (hawser_mode) {
            hawser::detail::ClientHandshake hs(
                {hawser::ProtocolMark{}, mode == Mode::plaintext,
                 mode == Mode::plaintext ? std::nullopt : std::optional(server_key)});
            auto hello = framed(hs.hello());
            (void)!::write(fd, hello.data(), hello.size());
            std::vector<std::uint8_t> reply(mode == Mode::plaintext ? 14 : 60);
            if (!read_exact(fd, reply.data(), reply.size()) ||
                !hs.on_frame(std::span(reply).subspan(8, reply.size() - 12))) {
                std::fprintf(stderr, "handshake failed on connection %zu\n", i);
                ::kill(pid, SIGKILL);
                std::exit(1);
            }
            if (auto t = hs.transport(std::chrono::steady_clock::now())) {
                call.clear();
                std::span<const std::uint8_t> body(frame.data() + 8, frame.size() - 12);
                if (!t->add(body, call, hawser::ProtocolMark{}, hawser::TransportOptions{},
                            std::chrono::steady_clock::now()) ||
                    !t->seal_open(call, hawser::ProtocolMark{}))
                    std::abort();
            }
        }
        (void)!::write(fd, call.data(), call.size());
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
    auto floor = measure(Mode::epoll, n, "127.0.0.3");
    auto plain = measure(Mode::plaintext, n, "127.0.0.2");
    auto secure = measure(Mode::encrypted, n, "127.0.0.4");
    std::printf("idle_memory_bench: %zu idle connections, server RSS delta per connection\n", n);
    auto row = [](const char* who, const Measurement& m, const char* target) {
        std::printf("  %-18s %6.0f bytes  (RSS %ld -> %ld KiB)  %s\n", who, m.bytes_per_connection,
                    m.rss_before_kib, m.rss_after_kib, target);
    };
    row("bare epoll", floor, "");
    row("hawser plaintext", plain, "target <= 1024");
    row("hawser encrypted", secure, "target <= 1024");
    return 0;
}
