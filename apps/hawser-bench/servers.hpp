// Servers a run starts itself: a nats-server and hawser-server nodes (--spawn-cluster N), or
// the raw baseline's servers, on loopback ports, with their logs in the work directory.
// Ownership: a Servers stops (SIGTERM, then waits) every process it started when destroyed.
// Thread affinity: the coordinator's thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "hawser/error.hpp"

namespace hawser::bench {

struct ServerProcess {
    std::string name;
    pid_t pid = 0;
    std::vector<std::string> argv;  // how to start it again, on the port it listens on
    std::string log;
    std::string ready_marker;  // in its log, followed by the port, once it listens
};

class Servers {
  public:
    Servers() = default;
    Servers(Servers&& other) noexcept;
    Servers& operator=(Servers&&) = delete;
    ~Servers();

    // `nodes` hawser-server processes (one IO thread each, hawser-bench's commands on,
    // admission limits off, clients may join channels "bench.*"), sharing one key; with
    // `cluster`, joined over a nats-server. `idle`: the servers' idle timeout when longer than
    // their default (90 s), for clients whose heartbeats are further apart; 0 (clients without
    // heartbeats): none.
    // `max_handshakes_per_second`: each node's pace of key exchanges (0 = none).
    static Result<Servers> start_hawser(const std::string& server_binary, std::size_t nodes,
                                        bool cluster, bool plaintext,
                                        std::chrono::milliseconds idle,
                                        double max_handshakes_per_second,
                                        const std::string& work_dir);
    // `nodes` raw baseline servers (this program's raw-server mode).
    static Result<Servers> start_raw(const std::string& self, std::size_t nodes, bool sealed,
                                     const std::string& work_dir);

    // When each step of a restart ended (CLOCK_MONOTONIC, as now_ns()).
    struct RestartSteps {
        std::uint64_t reaped_ns = 0;     // every killed process has exited
        std::uint64_t listening_ns = 0;  // every one started again listens
    };
    // Kills the first `count` servers at once (SIGKILL: a crash, no goodbye) and starts them
    // again on the same ports; returns once they listen (and, in a cluster, see each other).
    Result<RestartSteps> restart(std::size_t count);

    std::vector<std::string> endpoints;
    std::string key;  // hawser: the nodes' public key
    bool cluster = false;
    std::vector<ServerProcess> processes;  // the servers whose memory counts (not NATS)

  private:
    std::vector<pid_t> all_;  // everything started, NATS included
};

}  // namespace hawser::bench
