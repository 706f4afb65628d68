// A nats-server on a loopback port of its choosing, for the benchmarks that need one; stopped
// when it goes.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hawser::bench {

// nats-server on a port of its choosing; stopped at exit.
struct Nats {
    Nats() {
        log = std::filesystem::temp_directory_path() /
              ("hawser-bench-nats-" + std::to_string(getpid()));
        std::vector<std::string> args{"nats-server", "-a", "127.0.0.1", "-p",
                                      "-1",          "-l", log.string()};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (posix_spawnp(&pid, "nats-server", nullptr, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start nats-server");
        const std::string said = "Listening for client connections on ";
        for (int i = 0; i < 2000 && port == 0; ++i) {
            std::ifstream in(log);
            std::stringstream text;
            text << in.rdbuf();
            auto s = text.str();
            auto at = s.find(said);
            if (s.find("Server is ready") != std::string::npos && at != std::string::npos) {
                auto line = s.substr(at + said.size(), s.find('\n', at) - at - said.size());
                port = std::atoi(line.c_str() + line.rfind(':') + 1);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
        if (port == 0) throw std::runtime_error("nats-server did not start");
    }
    ~Nats() {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
        std::filesystem::remove(log);
    }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port); }
    pid_t pid = -1;
    int port = 0;
    std::filesystem::path log;
};

}  // namespace hawser::bench
