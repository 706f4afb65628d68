// Starting and stopping the servers of a run (see servers.hpp).
#include "servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

extern char** environ;

namespace hawser::bench {

namespace {

using namespace std::chrono_literals;

// A port the kernel just handed out and took back: free unless someone races us for it.
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

bool accepts(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

Result<pid_t> spawn(const std::vector<std::string>& argv, const std::string& log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return Error{Errc::invalid_argument, "cannot start " + argv[0] + ": " + std::strerror(rc)};
    return pid;
}

bool alive(pid_t pid) {
    return ::waitpid(pid, nullptr, WNOHANG) == 0;
}

std::size_t count_in(const std::string& file, const std::string& text) {
    std::ifstream in(file);
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line))
        if (line.find(text) != std::string::npos) ++n;
    return n;
}

// Waits until `ready` or the process exits or 30 s pass.
Result<void> wait_ready(pid_t pid, const std::string& what, const std::string& log,
                        const std::function<bool()>& ready) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!ready()) {
        if (!alive(pid)) return Error{Errc::not_connected, what + " exited; see " + log};
        if (std::chrono::steady_clock::now() > deadline)
            return Error{Errc::timeout, what + " not ready after 30 s; see " + log};
        std::this_thread::sleep_for(20ms);  // polling another process's readiness
    }
    return {};
}

std::string read_command(const std::string& command) {
    std::string out;
    if (FILE* p = ::popen(command.c_str(), "r")) {
        char buf[256];
        while (std::fgets(buf, sizeof buf, p)) out += buf;
        ::pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

}  // namespace

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

Servers::Servers(Servers&& o) noexcept
    : endpoints(std::move(o.endpoints)),
      key(std::move(o.key)),
      cluster(o.cluster),
      processes(std::move(o.processes)),
      all_(std::move(o.all_)) {
    o.all_.clear();
}

Servers::~Servers() {
    for (auto pid : all_) ::kill(pid, SIGTERM);
    for (auto pid : all_) {
        // Nodes shut down gracefully; one that hangs is killed after 15 s.
        for (int i = 0; i < 1500 && alive(pid); ++i) std::this_thread::sleep_for(10ms);
        if (alive(pid)) ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
}

Result<Servers> Servers::start_hawser(const std::string& binary, std::size_t nodes, bool plaintext,
                                      const std::string& work_dir) {
    namespace fs = std::filesystem;
    Servers s;
    s.cluster = nodes > 1;
    fs::create_directories(work_dir);
    auto data = work_dir + "/data";
    // A benchmark opens connections from a few addresses as fast as it can: admission, which
    // exists to stop exactly that from strangers, is off.
    auto config = work_dir + "/bench-server.toml";
    std::ofstream(config) << "[admission]\n"
                             "max_handshakes = 1000000\n"
                             "max_handshakes_per_ip = 1000000\n"
                             "max_connections_per_address = 0\n"
                             "connections_per_second_per_ip = 0\n";
    s.key =
        read_command("'" + binary + "' --data-dir '" + data + "' --print-public-key 2>/dev/null");
    if (s.key.size() != 64)
        return Error{Errc::invalid_argument, "cannot read the server key with " + binary};
    std::string nats_url;
    if (s.cluster) {
        auto port = free_port();
        auto log = work_dir + "/nats.log";
        auto pid = spawn({"nats-server", "-a", "127.0.0.1", "-p", std::to_string(port)}, log);
        if (!pid) return pid.error();
        s.all_.push_back(*pid);
        if (auto r = wait_ready(*pid, "nats-server", log, [&] { return accepts(port); }); !r)
            return r.error();
        nats_url = "nats://127.0.0.1:" + std::to_string(port);
    }
    std::vector<std::uint16_t> ports;
    for (std::size_t i = 0; i < nodes; ++i) {
        auto port = free_port();
        auto name = "node" + std::to_string(i + 1);
        std::vector<std::string> argv{binary,
                                      "--config",
                                      config,
                                      "--listen",
                                      "127.0.0.1:" + std::to_string(port),
                                      "--data-dir",
                                      data,
                                      "--threads",
                                      "1",
                                      "--bench-commands",
                                      "--log-level",
                                      s.cluster ? "info" : "warn"};
        if (plaintext) argv.push_back("--insecure-plaintext");
        if (s.cluster) argv.insert(argv.end(), {"--cluster", nats_url, "--node-name", name});
        auto pid = spawn(argv, work_dir + "/" + name + ".log");
        if (!pid) return pid.error();
        s.all_.push_back(*pid);
        s.processes.push_back({name, *pid});
        s.endpoints.push_back("127.0.0.1:" + std::to_string(port));
        ports.push_back(port);
    }
    for (std::size_t i = 0; i < nodes; ++i) {
        auto& p = s.processes[i];
        auto log = work_dir + "/" + p.name + ".log";
        if (auto r = wait_ready(p.pid, p.name, log, [&] { return accepts(ports[i]); }); !r)
            return r.error();
    }
    if (s.cluster) {
        // Every node has seen every other join: a broadcast from one reaches them all.
        for (auto& p : s.processes) {
            auto log = work_dir + "/" + p.name + ".log";
            auto joined = [&] { return count_in(log, "joined") + 1 >= nodes; };
            if (auto r = wait_ready(p.pid, p.name, log, joined); !r) return r.error();
        }
    }
    return s;
}

Result<Servers> Servers::start_raw(const std::string& self, std::size_t nodes,
                                   const std::string& work_dir) {
    Servers s;
    std::filesystem::create_directories(work_dir);
    for (std::size_t i = 0; i < nodes; ++i) {
        auto port = free_port();
        auto name = "raw" + std::to_string(i + 1);
        auto log = work_dir + "/" + name + ".log";
        auto pid =
            spawn({self, "raw-server", "--listen", "127.0.0.1:" + std::to_string(port)}, log);
        if (!pid) return pid.error();
        s.all_.push_back(*pid);
        s.processes.push_back({name, *pid});
        s.endpoints.push_back("127.0.0.1:" + std::to_string(port));
        if (auto r = wait_ready(*pid, name, log, [&] { return accepts(port); }); !r)
            return r.error();
    }
    return s;
}

}  // namespace hawser::bench
