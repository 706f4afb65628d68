// A child process for tests: spawned with its output in a log file in a scratch directory,
// ready when its log shows a given line (bounded wait), ended by a signal and reaped.
#pragma once

#include <fcntl.h>
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

extern char** environ;

namespace hawser::test {

class ChildProcess {
  public:
    ChildProcess() = default;
    ~ChildProcess() { end(SIGKILL); }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // Starts `args` (args[0] is the program) with stdout and stderr in <scratch>/log.
    void start(std::vector<std::string> args) {
        end(SIGKILL);
        dir_ = std::filesystem::temp_directory_path() /
               ("hawser-child-" + std::to_string(getpid()) + "-" + std::to_string(counter()++));
        std::filesystem::create_directories(dir_);
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, 1, log_path().c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&files, 1, 2);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int rc = posix_spawnp(&pid_, argv[0], &files, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&files);
        if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
    }

    // Waits until the log contains `line`; the whole log, or an exception naming what it held.
    std::string wait_for(const std::string& line,
                         std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            auto text = log();
            if (text.find(line) != std::string::npos) return text;
            int status = 0;
            if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("child exited before '" + line + "':\n" + text);
            }
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("no '" + line + "' in time:\n" + text);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    std::string log() const {
        std::ifstream in(log_path());
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }
    std::string log_path() const { return (dir_ / "log").string(); }
    const std::filesystem::path& dir() const { return dir_; }
    bool running() const { return pid_ > 0; }

    void signal(int sig) {
        if (pid_ > 0) ::kill(pid_, sig);
    }
    // SIGSTOP, and returns once every thread of the child has stopped: kill() returns while
    // the child may still run for a moment, on the other core, and read what it should not.
    void stop_in_place() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGSTOP);
        int status = 0;
        // WUNTRACED reports the stop, or the end of a child that died first: then it is reaped,
        // and end() must not signal a number another process may have by now.
        if (waitpid(pid_, &status, WUNTRACED) == pid_ && !WIFSTOPPED(status)) pid_ = -1;
    }
    // Sends `sig` and reaps the child; removes the scratch directory.
    void end(int sig) {
        if (pid_ > 0) {
            ::kill(pid_, sig);
            int status = 0;
            waitpid(pid_, &status, 0);
            pid_ = -1;
        }
        if (!dir_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
            dir_.clear();
        }
    }

  private:
    static int& counter() {
        static int n = 0;
        return n;
    }
    pid_t pid_ = -1;
    std::filesystem::path dir_;
};

}  // namespace hawser::test
