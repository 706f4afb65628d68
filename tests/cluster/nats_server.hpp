// A real nats-server for cluster tests: started on a loopback port of its own choosing (or a
// given one, for restarts), ready once its log says so, stopped with the test.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace hawser::test {

class NatsServer {
  public:
    // port 0: nats-server picks a free one. `extra`: more nats-server flags (cluster routes).
    explicit NatsServer(int port = 0, std::vector<std::string> extra = {}) { start(port, extra); }
    ~NatsServer() { stop(); }
    NatsServer(const NatsServer&) = delete;
    NatsServer& operator=(const NatsServer&) = delete;

    int port() const { return port_; }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

    // SIGTERM, then waits for it to exit.
    void stop() { end(SIGTERM); }
    // SIGKILL: gone at once, as in a crash.
    void kill() { end(SIGKILL); }
    // Starts again on the same port.
    void restart() {
        stop();
        start(port_, extra_);
    }

  private:
    void start(int port, const std::vector<std::string>& extra) {
        extra_ = extra;
        dir_ = std::filesystem::temp_directory_path() /
               ("hawser-nats-" + std::to_string(getpid()) + "-" + std::to_string(counter()++));
        std::filesystem::create_directories(dir_);
        auto log = (dir_ / "nats.log").string();
        std::vector<std::string> args{
            "nats-server", "-a", "127.0.0.1", "-p", port ? std::to_string(port) : "-1", "-l", log};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const char* path = std::filesystem::exists("/usr/sbin/nats-server")
                               ? "/usr/sbin/nats-server"
                               : "nats-server";
        if (posix_spawnp(&pid_, path, nullptr, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start nats-server (is it installed?)");
        // Ready when the log names its client port and says so; bounded.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline) {
            std::ifstream in(log);
            std::stringstream text;
            text << in.rdbuf();
            auto s = text.str();
            if (s.find("Server is ready") != std::string::npos) {
                if (auto p = listening_port(s)) {
                    port_ = p;
                    return;
                }
            }
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("nats-server exited at start:\n" + s);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        end(SIGKILL);
        throw std::runtime_error("nats-server did not become ready in 20 s");
    }

    // The port in "Listening for client connections on 127.0.0.1:PORT"; 0 if absent.
    static int listening_port(const std::string& log) {
        const std::string said = "Listening for client connections on ";
        auto at = log.find(said);
        if (at == std::string::npos) return 0;
        auto line_end = log.find('\n', at);
        auto line = log.substr(at + said.size(), line_end - at - said.size());
        auto colon = line.rfind(':');
        if (colon == std::string::npos) return 0;
        return std::atoi(line.c_str() + colon + 1);
    }

    void end(int sig) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    static int& counter() {
        static int n = 0;
        return n;
    }

    pid_t pid_ = -1;
    int port_ = 0;
    std::vector<std::string> extra_;
    std::filesystem::path dir_;
};

}  // namespace hawser::test
