// WorkerPool (see worker_pool.hpp).
#include "worker_pool.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "worker.hpp"

namespace hawser::bench {

bool WorkerPool::fork(std::size_t count) {
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    for (std::size_t i = 0; i < count; ++i) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
        pid_t pid = ::fork();
        if (pid < 0) return false;
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);     // never outlive the coordinator
            if (::getppid() != parent) ::_exit(1);  // it died before that took effect
            for (auto& w : workers_) ::close(w.control.fd());
            ::close(sv[0]);
            ::_exit(run_worker(sv[1]));
        }
        ::close(sv[1]);
        workers_.push_back({pid, Control(sv[0]), {}});
    }
    return true;
}

std::optional<std::vector<Json>> WorkerPool::step(const std::string& cmd,
                                                  const std::function<Json(std::size_t)>& args,
                                                  const std::function<void()>& tick) {
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        Json c = args ? args(i) : Json::object();
        c["cmd"] = cmd;
        workers_[i].latest = Json();
        workers_[i].sampled = {};
        if (!workers_[i].control.send(c)) return std::nullopt;
    }
    std::vector<std::optional<Json>> results(workers_.size());
    std::size_t left = workers_.size();
    auto next_tick = std::chrono::steady_clock::now();
    std::vector<pollfd> fds(workers_.size());
    while (left > 0) {
        for (std::size_t i = 0; i < workers_.size(); ++i)
            fds[i] = {workers_[i].control.fd(), short(results[i] ? 0 : POLLIN), 0};
        ::poll(fds.data(), fds.size(), 250);
        for (std::size_t i = 0; i < workers_.size(); ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (!workers_[i].control.fill()) {
                std::fprintf(stderr, "\nhawser-bench: worker %zu exited\n", i);
                return std::nullopt;
            }
            while (auto m = workers_[i].control.next()) {
                if (!m->is_object()) continue;
                if (m->value("type", "") == "progress") workers_[i].latest = (*m)["figures"];
                if (m->value("type", "") == "result" && !results[i]) {
                    results[i] = std::move(*m);
                    workers_[i].latest = *results[i];
                    --left;
                }
            }
        }
        if (std::chrono::steady_clock::now() >= next_tick) {
            next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
            tick();
        }
    }
    tick();
    std::vector<Json> out;
    for (auto& r : results) out.push_back(std::move(*r));
    return out;
}

void WorkerPool::finish(bool ask) {
    if (ask) {
        for (auto& w : workers_) w.control.send({{"cmd", "exit"}});
    } else {
        for (auto& w : workers_) ::kill(w.pid, SIGKILL);
    }
    for (auto& w : workers_) ::waitpid(w.pid, nullptr, 0);
}

}  // namespace hawser::bench
