// A real nats-server for cluster tests: started on a loopback port of its own choosing (or a
// given one, for restarts), ready once its log says so, stopped with the test.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "cluster/child_process.hpp"

namespace hawser::test {

class NatsServer {
  public:
    // port 0: nats-server picks a free one. `extra`: more nats-server flags (cluster routes).
    explicit NatsServer(int port = 0, std::vector<std::string> extra = {})
        : extra_(std::move(extra)) {
        start(port);
    }
    NatsServer(const NatsServer&) = delete;
    NatsServer& operator=(const NatsServer&) = delete;

    int port() const { return port_; }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

    void stop() { process_.end(SIGTERM); }
    void kill() { process_.end(SIGKILL); }  // gone at once, as in a crash
    void restart() {                        // on the same port
        stop();
        start(port_);
    }
    void start_again() { start(port_); }  // after stop(), on the same port
    // Stopped and started on the same port with other flags (another password).
    void restart_with(std::vector<std::string> extra) {
        stop();
        extra_ = std::move(extra);
        start(port_);
    }
    // Stopped in place: connections stay up, and nothing sent to it is read until resume().
    void pause() { process_.stop_in_place(); }
    void resume() { process_.signal(SIGCONT); }
    // pause() until the guard goes, also when an assertion ends a test early.
    struct [[nodiscard]] Paused {
        NatsServer& nats;
        ~Paused() { nats.resume(); }
    };
    Paused paused() {
        pause();
        return Paused{*this};
    }

  private:
    void start(int port) {
        std::vector<std::string> args{"nats-server", "-a", "127.0.0.1", "-p",
                                      port ? std::to_string(port) : "-1"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        process_.start(args);
        auto log = process_.wait_for("Server is ready");
        port_ = listening_port(log);
        if (!port_) throw std::runtime_error("nats-server named no client port:\n" + log);
    }

    // The port in "Listening for client connections on 127.0.0.1:PORT"; 0 if absent.
    static int listening_port(const std::string& log) {
        const std::string said = "Listening for client connections on ";
        auto at = log.find(said);
        if (at == std::string::npos) return 0;
        auto line = log.substr(at + said.size(), log.find('\n', at) - at - said.size());
        auto colon = line.rfind(':');
        return colon == std::string::npos ? 0 : std::atoi(line.c_str() + colon + 1);
    }

    std::vector<std::string> extra_;
    ChildProcess process_;
    int port_ = 0;
};

}  // namespace hawser::test
