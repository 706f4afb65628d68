// ClientGroup: many client connections in one process (an IoT gateway, a load generator, a test
// harness) that share one configuration, one command table, one set of hooks and the Runtime's
// IO threads. A connection in a group costs what a server's connection costs: no thread, no
// timer and no object of its own beside the connection; the loops' shared sweeps time out its
// handshake, idle and heartbeats.
// What a group leaves to the application (Client does them for one connection): reconnecting
// (open again from on_disconnect), cluster routing, trust on first use, racing the addresses of
// a name (a group connects to the first address of each endpoint, or the first of the source
// address's family).
// Ownership: the Runtime must outlive the group; the group closes its connections when destroyed.
// Thread safety: register commands and hooks before the first open(); every other method is
// safe from any thread. Hooks and callbacks run on the connection's IO thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "hawser/commands.hpp"
#include "hawser/connection.hpp"
#include "hawser/options.hpp"
#include "hawser/runtime.hpp"
#include "hawser/stats.hpp"

namespace hawser {

namespace detail {
class GroupCore;
}

struct GroupOpenOptions {
    // The local address to connect from (an IP, no port). Loopback servers can be reached from
    // 127.0.0.2, 127.0.0.3, ...: each source address has its own ephemeral ports, so one
    // machine can open more than the ~28,000 connections one address allows per server port.
    std::string source_address;
    // Which of ClientOptions::endpoints; by default each open() takes the next in turn.
    std::size_t endpoint = any_endpoint;
    static constexpr std::size_t any_endpoint = std::size_t(-1);
};

class ClientGroup {
  public:
    // Uses endpoints, mark, limits, timeouts, transport, server_public_key and the client key of
    // `options`; reconnect, cluster and trust_on_first_use must be off (a group needs the
    // server's key pinned unless plaintext). timeouts.connect bounds the handshake; the TCP
    // connect is bounded by the kernel's SYN retries, as few as take at least that long (the
    // kernel gives up after 3, 7, 15, 31, 63 or at most 127 s), so that no connection needs a
    // timer of its own.
    ClientGroup(Runtime& runtime, ClientOptions options);
    // Closes every connection gracefully and fails the opens under way (cancelled), waits up to
    // timeouts.shutdown for the connections and handlers in flight, then closes the rest at
    // once; no hook or callback runs after it returns. Not on one of the Runtime's IO threads
    // (it cannot wait there: it closes and logs an error), nor in one of the group's own
    // handlers (it would wait for itself until timeouts.shutdown).
    ~ClientGroup();
    ClientGroup(const ClientGroup&) = delete;
    ClientGroup& operator=(const ClientGroup&) = delete;

    Commands& commands();
    void on_connect(std::function<void(const Connection&)> hook);
    void on_disconnect(std::function<void(const Connection&, CloseReason)> hook);

    // Opens one more connection, on the next IO thread in turn. `done` runs once, on that IO
    // thread: with the connection once its handshake completes, or with the error (a bad
    // configuration: invalid_argument; refused, unreachable or a failed handshake:
    // not_connected; timed out: timeout; the group closing: cancelled).
    void open(std::function<void(Result<Connection>)> done, GroupOpenOptions options = {});

    // Connections open now (handshake complete), and those still connecting.
    std::size_t size() const;
    std::size_t opening() const;
    // Closes every connection gracefully and fails every open under way, including opens
    // called before it that have not started (cancelled); open() works again afterwards.
    void close_all();

    Stats stats() const;
    const ClientOptions& options() const;

  private:
    std::shared_ptr<detail::GroupCore> core_;
};

}  // namespace hawser
