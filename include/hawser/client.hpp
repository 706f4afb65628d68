// Client: one connection to a Hawser server, with failover across endpoints, Happy-Eyeballs
// dual-stack connect and optional reconnect. The server can call the client's own Commands.
// Ownership: owns its Runtime unless given one (share one Runtime among many clients).
// Thread safety: register commands before connect(); hooks may be set at any time (they are
// installed on the client's IO thread). Every other method is safe from any thread. Hooks and
// callbacks run on the connection's IO thread.
#pragma once

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
class ClientCore;
}

class Client {
  public:
    explicit Client(ClientOptions options = {});
    Client(Runtime& runtime, ClientOptions options);
    // Closes; no reconnect after. From a non-IO thread it waits (up to timeouts.shutdown) for
    // the connection and the client's handlers: no hook or handler of this client runs after
    // it returns. On the client's IO thread it cannot wait: hooks are cleared, but
    // callbacks of calls in flight may still run. A Client that owns its Runtime must not be
    // destroyed on that Runtime's IO thread, nor in one of its own handlers on a worker (it
    // would wait for itself until timeouts.shutdown).
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    Commands& commands();
    void on_connect(std::function<void(const Connection&)> hook);
    void on_disconnect(std::function<void(const Connection&, CloseReason)> hook);

    // Connects to the first endpoint that answers. The blocking form must not run on an IO
    // thread; the callback form completes on the IO thread; the awaitable suits coroutines.
    Result<void> connect();
    void connect(std::function<void(Result<void>)> done);
    auto connect_async() {
        auto start = [this](auto done) {
            connect(std::function<void(Result<void>)>(std::move(done)));
        };
        return detail::CallbackAwaiter<Result<void>, decltype(start)>{std::move(start), {}};
    }

    // Closes the connection and stops reconnecting.
    void close();

    bool connected() const;
    // The current connection (an empty handle while disconnected).
    Connection connection() const;

    Stats stats() const;
    const ClientOptions& options() const;

  private:
    std::unique_ptr<Runtime> owned_runtime_;
    std::shared_ptr<detail::ClientCore> core_;
};

}  // namespace hawser
