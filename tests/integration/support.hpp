// Helpers for loopback integration tests: servers on ephemeral ports, clients for them, and a
// raw socket for speaking bytes that no Hawser client would send.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "hawser/hawser.hpp"
#include "wire/frame.hpp"
#include "wire/message.hpp"
#include "wire/secure_channel.hpp"

namespace hawser::test {

using namespace std::chrono_literals;

inline ServerOptions loopback_server(std::size_t threads = 2) {
    ServerOptions o;
    o.listen = {"127.0.0.1:0"};
    o.io_threads = threads;
    o.worker_threads = 2;
    o.data_dir = "";  // a fresh static key in memory
    return o;
}

// For tests that speak raw bytes at the message layer: no encryption on either side.
inline ServerOptions plaintext_server(std::size_t threads = 2) {
    auto o = loopback_server(threads);
    o.transport.insecure_plaintext = true;
    return o;
}

inline ClientOptions client_for(const Server& s, std::size_t index = 0) {
    ClientOptions o;
    o.endpoints = {"127.0.0.1:" + std::to_string(s.ports().at(index))};
    o.server_public_key = s.public_key();
    return o;
}

// `n` bytes that compress badly, the same for the same seed.
inline std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; i += 8) {
        auto v = rng();
        std::memcpy(s.data() + i, &v, std::min<std::size_t>(8, n - i));
    }
    return s;
}

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void write_file(const std::filesystem::path& p, const std::string& content) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << content;
}

// Waits for a condition that other threads make true; fails the test at the deadline.
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

// A server's worker threads held by a test: its "hold" command (public, on the worker pool)
// waits until release(), or 30 s at most, so that a test that fails still shuts its server down.
class HeldWorkers {
  public:
    void add_to(Commands& c) const {
        c.console(
            "hold",
            [state = state_](const Request&, std::string_view) {
                ++state->held;
                state->released.wait_for(30s);
                return std::string();
            },
            CommandOptions{.on_worker = true, .public_access = true});
    }
    // Calls "hold" `n` times over `to`; true once `n` workers are in it.
    bool hold(Connection to, int n) const {
        for (int i = 0; i < n; ++i) to.call("hold", "", [](Result<std::string>) {});
        return eventually([&] { return state_->held == n; });
    }
    void release() const {
        std::call_once(state_->once, [&] { state_->promise.set_value(); });
    }

  private:
    struct State {
        std::atomic<int> held{0};
        std::promise<void> promise;
        std::shared_future<void> released = promise.get_future().share();
        std::once_flag once;
    };
    std::shared_ptr<State> state_ = std::make_shared<State>();
};

// A value set once by another thread.
template <class T>
class Slot {
  public:
    void set(T v) {
        // Notified under the lock: the waiter may destroy the Slot as soon as it sees the value.
        std::lock_guard l(mu_);
        value_ = std::move(v);
        cv_.notify_all();
    }
    T get(std::chrono::milliseconds limit = 10s) {
        std::unique_lock l(mu_);
        if (!cv_.wait_for(l, limit, [&] { return value_.has_value(); }))
            throw std::runtime_error("Slot: timed out");
        return *value_;
    }
    bool has() {
        std::lock_guard l(mu_);
        return value_.has_value();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<T> value_;
};

// A plain blocking TCP socket to the server.
class RawSocket {
  public:
    explicit RawSocket(std::uint16_t port, int rcvbuf = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (rcvbuf) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect");
    }
    ~RawSocket() { ::close(fd_); }
    void send(const void* data, std::size_t n) {
        auto p = static_cast<const char*>(data);
        while (n) {
            auto k = ::send(fd_, p, n, MSG_NOSIGNAL);
            if (k <= 0) return;
            p += k, n -= static_cast<std::size_t>(k);
        }
    }
    void send(const std::vector<std::uint8_t>& b) { send(b.data(), b.size()); }
    // The plaintext-mode hello (this version, mode 0) and the server's agreement, as a client
    // configured insecure_plaintext would send and expect.
    void plaintext_hello() {
        std::vector<std::uint8_t> hello;
        detail::append_frame(hello, ProtocolMark{}, 2,
                             [](std::uint8_t* p) { p[0] = detail::wire_version, p[1] = 0; });
        send(hello);
        char ack[14];
        std::size_t got = 0;
        while (got < sizeof ack) {
            auto n = ::recv(fd_, ack + got, sizeof ack - got, 0);
            if (n <= 0) throw std::runtime_error("no plaintext agreement from the server");
            got += static_cast<std::size_t>(n);
        }
    }
    void send(std::string_view s) { send(s.data(), s.size()); }
    // Reads until the peer closes (or the limit passes); returns everything read.
    std::string read_until_closed(std::chrono::milliseconds limit = 10s) {
        std::string out;
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) throw std::runtime_error("peer did not close");
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return out;
            out.append(buf, static_cast<std::size_t>(n));
        }
    }
    int fd() const { return fd_; }

  private:
    int fd_;
};

// Encodes a message as the wire carries it.
inline std::vector<std::uint8_t> encode_message(detail::Kind kind, std::uint64_t id,
                                                std::string_view name, std::string_view payload,
                                                const ProtocolMark& mark = {}) {
    std::vector<std::uint8_t> out;
    detail::append_frame(out, mark, detail::header_size(id, name) + payload.size(),
                         [&](std::uint8_t* p) {
                             p = detail::write_header(p, kind, 0, id, name);
                             std::copy(payload.begin(), payload.end(), p);
                         });
    return out;
}

// The reason code in a goodbye frame found in `bytes`, or -1.
inline int goodbye_reason(std::string bytes) {
    detail::FrameDecoder d;
    int reason = -1;
    d.feed(std::span(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()),
           detail::FrameConfig{}, [&](std::span<const std::uint8_t> body) {
               auto m = detail::parse_message(body);
               if (m && m->kind == detail::Kind::goodbye) {
                   if (auto c = detail::parse_coded(m->payload)) reason = c->first;
               }
               return true;
           });
    return reason;
}

// Holds the Responders of calls that a test answers later, all at once.
class HeldReplies {
  public:
    auto handler() {
        return [this](const Request&, std::string, Responder<std::string> r) {
            std::lock_guard l(mu_);
            held_.push_back(std::move(r));
        };
    }
    std::size_t size() {
        std::lock_guard l(mu_);
        return held_.size();
    }
    void reply_all(const std::string& text) {
        std::lock_guard l(mu_);
        for (auto& r : held_) r.reply(text);
    }

  private:
    std::mutex mu_;
    std::vector<Responder<std::string>> held_;
};

// Builds a connected server/client pair; handlers are registered before start.
struct Fixture {
    std::unique_ptr<Server> server;
    std::unique_ptr<Client> client;
    Connection to_server, to_client;

    Fixture(const std::function<void(Commands&)>& server_commands,
            const std::function<void(Commands&)>& client_commands = {},
            ServerOptions so = loopback_server(),
            const std::function<void(ClientOptions&)>& tweak_client = {}) {
        server = std::make_unique<Server>(so);
        if (server_commands) server_commands(server->commands());
        auto joined = std::make_shared<Slot<ConnectionId>>();
        server->on_connect([joined](const Connection& c) { joined->set(c.id()); });
        server->start().value();
        auto co = client_for(*server);
        if (tweak_client) tweak_client(co);
        client = std::make_unique<Client>(co);
        if (client_commands) client_commands(client->commands());
        client->connect().value();
        to_server = client->connection();
        to_client = server->find(joined->get()).value();
    }
};

inline Commands& echo_commands(Commands& c) {
    c.console("echo", [](const Request&, std::string_view s) { return std::string(s); });
    c.dataframe("echo.frame", [](const Request&, DataFrame& in) { return in; });
    return c;
}

}  // namespace hawser::test
