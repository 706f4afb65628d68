// WorkerPool: the worker processes of a run, forked by the coordinator, each driven over its
// Control socket. A step sends one command to every worker and collects each one's result,
// keeping the progress figures each last sent, so that the coordinator can show and sample them.
// Ownership: the coordinator's; it reaps the workers. Thread affinity: the main thread, which
// forks before anything starts a thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "control.hpp"
#include "latency.hpp"
#include "report.hpp"

namespace hawser::bench {

struct Worker {
    pid_t pid = 0;
    Control control{-1};
    Json latest;      // its last progress figures in the running step
    Latency sampled;  // its latency histogram at the last timeline point
};

class WorkerPool {
  public:
    // Forks `count` workers (run_worker on their end of a socketpair); false if one could not
    // be made (those made are in workers()).
    bool fork(std::size_t count);
    // Sends `cmd` to every worker (`args(i)` adds its own fields) and collects every result;
    // `tick` runs every half second meanwhile and once at the end. Empty if a worker died.
    std::optional<std::vector<Json>> step(const std::string& cmd,
                                          const std::function<Json(std::size_t)>& args,
                                          const std::function<void()>& tick);
    // Ends the workers: asks them to exit after a run, or kills them (mid-step, blocked on
    // progress nobody reads), and reaps them.
    void finish(bool ask);

    std::vector<Worker>& workers() { return workers_; }
    std::size_t size() const { return workers_.size(); }

  private:
    std::vector<Worker> workers_;
};

}  // namespace hawser::bench
