// Server: accepts connections on IPv4 and IPv6, serves Commands, and can call its clients.
// Ownership: the Server owns its listeners and, unless given one, its Runtime. Connections are
// owned by their IO thread; the Server refers to them by ConnectionId.
// Thread safety: configure (commands, hooks) before start(); after that every method is safe
// from any thread. Hooks run on the connection's IO thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hawser/commands.hpp"
#include "hawser/connection.hpp"
#include "hawser/options.hpp"
#include "hawser/runtime.hpp"
#include "hawser/stats.hpp"

namespace hawser {

class Server;
namespace detail {
class Host;
class Listener;
Host& host_of(Server& server);  // for services built on a Server (the cluster)
}  // namespace detail

class Server {
  public:
    explicit Server(ServerOptions options = {});
    Server(Runtime& runtime, ServerOptions options);
    ~Server();  // shutdown() with the configured grace period
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    Commands& commands();
    void on_connect(std::function<void(const Connection&)> hook);
    void on_disconnect(std::function<void(const Connection&, CloseReason)> hook);

    // What start() would refuse in `options` without binding or resolving anything: limits,
    // the WebSocket settings, listen addresses that are not host:port, client keys. A program
    // that reads its options from a file checks them here before it touches the disk.
    static Result<void> validate(const ServerOptions& options);
    // Binds every listen address and starts accepting. Errors name the address that failed.
    Result<void> start();
    // The ports actually bound, in the order of options.listen (useful with port 0).
    std::vector<std::uint16_t> ports() const;
    // The ports of options.websocket.listen, bound, in their order.
    std::vector<std::uint16_t> websocket_ports() const;
    // The static public key clients pin (64 hex digits); known once start() succeeded.
    std::string public_key() const;
    // The public key stored in <data_dir>/server.key, generating the key pair if there is none.
    static Result<std::string> load_public_key(const std::string& data_dir);

    // Stops accepting, refuses new calls and streams (Errc::shutting_down), lets calls and big
    // streams in flight finish until `grace` passes, then says goodbye and closes every
    // connection. Blocking; idempotent.
    void shutdown(std::optional<Milliseconds> grace = std::nullopt);
    // Blocks until shutdown() has completed (from another thread or a signal handler thread).
    void wait();

    // Registry of live connections.
    std::optional<Connection> find(ConnectionId id) const;
    std::vector<ConnectionId> connection_ids() const;
    std::size_t connection_count() const;
    // Visits every live connection on its own IO thread; returns once all were visited.
    // Must not be called from an IO thread (it waits for them).
    void for_each(const std::function<void(const Connection&)>& visit) const;
    // One-way command to every connection; the frame is encoded once per IO thread.
    // Fails only on a bad command name or a message over the frame limit. `compress = false`
    // sends it uncompressed: for messages that mix attacker-chosen text with secrets.
    Result<void> broadcast(std::string_view command, std::string_view argument,
                           bool compress = true) const;
    Result<void> broadcast(std::string_view command, const DataFrame& argument,
                           bool compress = true) const;

    Stats stats() const;
    // The options the server was built with (update_limits() does not change them).
    const ServerOptions& options() const;

    // While running, from any thread (hawser-server does it on SIGHUP): the cap on open
    // connections and the admission rules — allow and deny lists, rates and bursts, caps per
    // source and on handshakes. New connections meet them at once; open ones stay.
    // `handshake_timeout` and `max_tracked_addresses` keep their starting values.
    // invalid_argument for a bad CIDR range or rate; nothing changes then.
    Result<void> update_limits(std::size_t max_connections, const AdmissionOptions& admission);

  private:
    friend detail::Host& detail::host_of(Server&);
    std::unique_ptr<Runtime> owned_runtime_;
    Runtime* runtime_;
    std::shared_ptr<detail::Host> host_;
    std::vector<std::shared_ptr<detail::Listener>> listeners_;
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace hawser
