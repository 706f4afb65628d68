// Starting and stopping the servers of a run (see servers.hpp).
#include "servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "clock.hpp"

namespace hawser::bench {

namespace {

// GOGC for the nats-server a run starts (see where it is started).
constexpr int nats_gogc = 300;

using namespace std::chrono_literals;

// The port a server wrote to its log after `marker` (it listens on port 0: the kernel picks
// one, so no other process can take it between our choosing and its binding); 0 until then.
std::uint16_t port_from_log(const std::string& log, const std::string& marker) {
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) {
        auto at = line.find(marker);
        if (at == std::string::npos) continue;
        unsigned long port = 0;
        for (auto i = at + marker.size(); i < line.size() && std::isdigit(line[i]); ++i)
            port = port * 10 + unsigned(line[i] - '0');
        if (port > 0 && port < 65536) return std::uint16_t(port);
    }
    return 0;
}

// Starts argv[0] (searched in PATH) with stdout and stderr to `log`, and this process's
// environment plus `env` ("NAME=value"). The child gets SIGTERM when the coordinator dies,
// however it dies, so no server outlives a run. `nice` below 0 needs root; without it the child
// runs at the usual priority.
Result<pid_t> spawn(const std::vector<std::string>& argv, const std::string& log, int nice = 0,
                    const std::vector<std::string>& env = {}) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> environment;  // built before fork: the child only execs
    for (char** e = environ; e && *e; ++e) environment.push_back(*e);
    for (auto& e : env) environment.push_back(const_cast<char*>(e.c_str()));
    environment.push_back(nullptr);
    // The child may only make async-signal-safe calls: its message is made here.
    const std::string cannot_start = "cannot start " + argv[0] + " (exec failed)\n";
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) return Error{Errc::invalid_argument, "cannot write " + log};
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) ::_exit(127);
        if (nice) (void)::setpriority(PRIO_PROCESS, 0, nice);  // before exec: every thread has it
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::execvpe(args[0], args.data(), environment.data());
        (void)!::write(2, cannot_start.data(), cannot_start.size());
        ::_exit(127);
    }
    ::close(out);
    if (pid < 0) return Error{Errc::invalid_argument, "fork: " + std::string(std::strerror(errno))};
    return pid;
}

// Not reaped (WNOWAIT): the pid stays ours until the destructor waits for it.
bool alive(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
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

Servers::Servers(Servers&& o) noexcept
    : endpoints(std::move(o.endpoints)),
      key(std::move(o.key)),
      cluster(o.cluster),
      processes(std::move(o.processes)),
      all_(std::move(o.all_)) {
    o.all_.clear();
}

Servers::~Servers() {
    // The servers first (nodes say goodbye to their clients and leave the cluster), then NATS.
    std::vector<pid_t> servers, rest;
    for (auto pid : all_)
        (std::any_of(processes.begin(), processes.end(),
                     [&](const ServerProcess& p) { return p.pid == pid; })
             ? servers
             : rest)
            .push_back(pid);
    for (auto* group : {&servers, &rest}) {
        for (auto pid : *group) ::kill(pid, SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + 15s;
        for (auto pid : *group) {
            // One that hangs is killed at the deadline.
            while (alive(pid) && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(10ms);
            if (alive(pid)) ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
}

Result<Servers> Servers::start_hawser(const std::string& binary, std::size_t nodes, bool cluster,
                                      bool plaintext, std::chrono::milliseconds idle,
                                      double max_handshakes_per_second,
                                      const std::string& work_dir) {
    namespace fs = std::filesystem;
    Servers s;
    s.cluster = cluster;
    fs::create_directories(work_dir);
    auto data = work_dir + "/data";
    // A benchmark opens connections from a few addresses as fast as it can: admission, which
    // exists to stop exactly that from strangers, is off.
    auto config = work_dir + "/bench-server.toml";
    std::ofstream(config) << "[admission]\n"
                             "max_handshakes = 1000000\n"
                             "max_handshakes_per_ip = 1000000\n"
                             "max_connections_per_address = 0\n"
                             "connections_per_second_per_ip = 0\n"
                          << "max_handshakes_per_second = "
                          << std::to_string(max_handshakes_per_second) << "\n";
    // Clients without heartbeats (idle 0) are never idle to the servers; others get three.
    if (idle.count() == 0 || idle > std::chrono::seconds(90))
        std::ofstream(config, std::ios::app) << "[timeouts]\nidle_ms = " << idle.count() << "\n";
    s.key =
        read_command("'" + binary + "' --data-dir '" + data + "' --print-public-key 2>/dev/null");
    if (s.key.size() != 64)
        return Error{Errc::invalid_argument, "cannot read the server key with " + binary};
    std::string nats_url;
    if (s.cluster) {
        auto log = work_dir + "/nats.log";
        // The broker every node leans on shares two cores with all the nodes and workers here,
        // where a deployment gives it cores of its own: a starved nats-server answers the
        // nodes' reports and pings so late that they drop each other and reconnect.
        constexpr int nats_nice = -10;
        // Holding millions of channel subscriptions, nats-server's heap is most of a gigabyte,
        // and Go's default pacing (GOGC=100) marks it every minute or so, making the read loops
        // that are allocating help with the marking; with room to grow (about twice the memory)
        // they rarely have to (docs/cluster.md, "Running NATS"). GOGC in the environment wins.
        std::vector<std::string> nats_env;
        if (!std::getenv("GOGC")) nats_env.push_back("GOGC=" + std::to_string(nats_gogc));
        auto pid = spawn({"nats-server", "-a", "127.0.0.1", "-p", "-1"}, log,  // -1: any port
                         nats_nice, nats_env);
        if (!pid) return pid.error();
        s.all_.push_back(*pid);
        std::uint16_t port = 0;
        auto ready = [&] {
            port = port_from_log(log, "Listening for client connections on 127.0.0.1:");
            return port != 0;
        };
        if (auto r = wait_ready(*pid, "nats-server", log, ready); !r) return r.error();
        if (!nats_env.empty())
            std::fprintf(stderr, "nats-server runs with GOGC=%d (set GOGC to change it)\n",
                         nats_gogc);
        if (::getpriority(PRIO_PROCESS, id_t(*pid)) == nats_nice)  // ready: past its exec
            std::fprintf(stderr, "nats-server runs at nice %d, ahead of the nodes and workers\n",
                         nats_nice);
        else
            std::fprintf(stderr,
                         "nats-server runs at the usual priority (raising it needs root, or "
                         "CAP_SYS_NICE)\n");
        nats_url = "nats://127.0.0.1:" + std::to_string(port);
        // The channels phase: clients subscribe themselves to its channels.
        std::ofstream(config, std::ios::app) << "[cluster]\n"
                                                "nats = [\""
                                             << nats_url
                                             << "\"]\n"
                                                "client_channel_prefixes = [\"bench.\"]\n";
    }
    for (std::size_t i = 0; i < nodes; ++i) {
        auto name = "node" + std::to_string(i + 1);
        std::vector<std::string> argv{
            binary,        "--config", config,      "--listen",
            "127.0.0.1:0",  // the port it logs
            "--data-dir",  data,       "--threads", "1",        "--bench-commands"};
        if (plaintext) argv.push_back("--insecure-plaintext");
        if (s.cluster) argv.insert(argv.end(), {"--cluster", nats_url, "--node-name", name});
        auto pid = spawn(argv, work_dir + "/" + name + ".log");
        if (!pid) return pid.error();
        s.all_.push_back(*pid);
        s.processes.push_back({name, *pid, argv, work_dir + "/" + name + ".log", "(ports "});
    }
    for (auto& p : s.processes) {
        auto log = work_dir + "/" + p.name + ".log";
        std::uint16_t port = 0;
        auto ready = [&] {
            port = port_from_log(log, "(ports ");
            return port != 0;
        };
        if (auto r = wait_ready(p.pid, p.name, log, ready); !r) return r.error();
        s.endpoints.push_back("127.0.0.1:" + std::to_string(port));
        p.argv[4] = s.endpoints.back();  // --listen: the same port if started again
    }
    if (s.cluster) {
        // Every node has seen every other join: a broadcast from one reaches them all.
        for (auto& p : s.processes) {
            auto log = work_dir + "/" + p.name + ".log";
            auto joined = [&] { return count_in(log, " joined") + 1 >= nodes; };
            if (auto r = wait_ready(p.pid, p.name, log, joined); !r) return r.error();
        }
    }
    return s;
}

Result<Servers> Servers::start_raw(const std::string& self, std::size_t nodes, bool sealed,
                                   const std::string& work_dir) {
    Servers s;
    std::filesystem::create_directories(work_dir);
    for (std::size_t i = 0; i < nodes; ++i) {
        auto name = "raw" + std::to_string(i + 1);
        auto log = work_dir + "/" + name + ".log";
        std::vector<std::string> argv{self, "raw-server", "--listen", "127.0.0.1:0"};
        if (sealed) argv.push_back("--sealed");
        auto pid = spawn(argv, log);
        if (!pid) return pid.error();
        s.all_.push_back(*pid);
        s.processes.push_back({name, *pid, argv, log, "listening on 127.0.0.1:"});
        std::uint16_t port = 0;
        auto ready = [&] {
            port = port_from_log(log, "listening on 127.0.0.1:");
            return port != 0;
        };
        if (auto r = wait_ready(*pid, name, log, ready); !r) return r.error();
        s.endpoints.push_back("127.0.0.1:" + std::to_string(port));
        s.processes.back().argv[3] = s.endpoints.back();
    }
    return s;
}

Result<Servers::RestartSteps> Servers::restart(std::size_t count) {
    count = std::min(count, processes.size());
    // All killed before any is reaped: the crash of every node at one moment, not one after
    // the other as each exits (a node holding 18,000 connections takes about a second to).
    for (std::size_t i = 0; i < count; ++i)
        if (processes[i].pid > 0) ::kill(processes[i].pid, SIGKILL);  // never 0: our group
    for (std::size_t i = 0; i < count; ++i) {
        auto& p = processes[i];
        if (p.pid > 0) ::waitpid(p.pid, nullptr, 0);
        std::erase(all_, p.pid);
        p.pid = 0;  // reaped: the number may be another process's now
    }
    RestartSteps steps;
    steps.reaped_ns = now_ns();
    for (std::size_t i = 0; i < count; ++i) {
        auto& p = processes[i];
        std::error_code ec;
        std::filesystem::rename(p.log, p.log + ".1", ec);  // the first run's log is kept
        auto pid = spawn(p.argv, p.log);
        if (!pid) return pid.error();
        all_.push_back(*pid);
        p.pid = *pid;
    }
    for (std::size_t i = 0; i < count; ++i) {
        auto& p = processes[i];
        auto ready = [&] { return port_from_log(p.log, p.ready_marker) != 0; };
        if (auto r = wait_ready(p.pid, p.name, p.log, ready); !r) return r.error();
    }
    steps.listening_ns = now_ns();
    // A cluster node has seen every other join again: broadcasts reach it.
    for (std::size_t i = 0; cluster && i < count; ++i) {
        auto& p = processes[i];
        auto joined = [&] { return count_in(p.log, " joined") + 1 >= processes.size(); };
        if (auto r = wait_ready(p.pid, p.name, p.log, joined); !r) return r.error();
    }
    return steps;
}

}  // namespace hawser::bench
