// Hardening: user callbacks that throw, handshake slots, per-address caps, the worker queue,
// and servers destroyed while handlers still run.
#include <netinet/tcp.h>

#include <atomic>
#include <coroutine>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <latch>

#include "rpc/host.hpp"
#include "rpc/loop.hpp"
#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

// A callback that throws must not stop the loop's deadline timer: another call waiting on the
// same loop still times out.
TEST(Hardening, ThrowingTimeoutCallbackLeavesDeadlinesRunning) {
    HeldReplies held;
    Fixture f([&](Commands& c) { c.console("stall", held.handler()); });
    Slot<Errc> second;
    f.to_server.call("stall", "",
                     [](Result<std::string>) { throw std::runtime_error("callback bug"); },
                     {.timeout = 50ms});
    f.to_server.call("stall", "",
                     [&](Result<std::string> r) { second.set(r ? Errc::ok : r.error().code); },
                     {.timeout = 300ms});
    EXPECT_EQ(second.get(), Errc::timeout);
    EXPECT_GE(f.client->stats().callback_errors, 1u);
    held.reply_all("late");
}

// A reply callback that throws must not stop the connection from reading the next reply.
TEST(Hardening, ThrowingReplyCallbackLeavesTheConnectionReading) {
    Fixture f([](Commands& c) { echo_commands(c); });
    std::latch thrown(1);
    f.to_server.call("echo", "one", [&](Result<std::string>) {
        thrown.count_down();
        throw std::runtime_error("callback bug");
    });
    thrown.wait();
    EXPECT_EQ(f.to_server.call("echo", "two", use_wait).value(), "two");
    EXPECT_TRUE(eventually([&] { return f.client->stats().callback_errors >= 1; }));
}

// A callback that throws while the sweep closes its connection (idle timeout) must not stop the
// sweep: another idle connection on the same loop is still closed.
TEST(Hardening, ThrowingCallbackOnCloseLeavesTheSweepRunning) {
    HeldReplies held;
    Server server(loopback_server(1));
    server.commands().console("stall", held.handler());
    server.start().value();
    Runtime runtime({.io_threads = 1});
    auto co = client_for(server);
    co.timeouts.heartbeat = 0ms;
    co.timeouts.idle = 300ms;
    Client thrower(runtime, co);
    thrower.connect().value();
    co.timeouts.idle = 1200ms;
    Client idle(runtime, co);
    Slot<CloseReason> idle_closed;
    idle.on_disconnect([&](const Connection&, CloseReason r) { idle_closed.set(r); });
    idle.connect().value();
    thrower.connection().call("stall", "",
                              [](Result<std::string>) { throw std::runtime_error("callback bug"); },
                              {.timeout = 60s});
    EXPECT_EQ(idle_closed.get(), CloseReason::idle_timeout);
    EXPECT_GE(thrower.stats().callback_errors, 1u);
    held.reply_all("late");
}

namespace {

// Connections waiting in the kernel's accept queue of a loopback IPv4 listener (for a listening
// socket, /proc/net/tcp's rx_queue column is the accept backlog).
int accept_backlog(std::uint16_t port) {
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);
    char local[64], remote[64];
    unsigned state = 0, tx = 0, rx = 0;
    while (std::getline(in, line)) {
        if (std::sscanf(line.c_str(), "%*d: %63s %63s %x %x:%x", local, remote, &state, &tx, &rx) !=
            5)
            continue;
        unsigned p = 0;
        if (std::sscanf(std::strchr(local, ':') + 1, "%x", &p) == 1 && p == port && state == 0x0a)
            return static_cast<int>(rx);
    }
    return -1;
}

void reset(RawSocket& s) {
    linger l{1, 0};  // close with RST
    ::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::shutdown(s.fd(), SHUT_RDWR);
}

}  // namespace

// A peer that resets right after the server accepted it, before its connection starts on its
// IO thread, must give its handshake slot back. The IO thread is held busy so the reset lands
// in between.
TEST(Hardening, HandshakeSlotsSurviveResetsAfterAccept) {
    Runtime runtime({.io_threads = 2});
    auto so = loopback_server();
    so.admission.max_handshakes_per_ip = 3;
    Server server(runtime, so);
    echo_commands(server.commands());
    server.start().value();
    auto port = server.ports()[0];
    for (int i = 0; i < 8; ++i) {
        auto release = std::make_shared<std::latch>(1);
        runtime.impl().loop(1).post([release] { release->wait(); });  // the listener is on 0
        {
            RawSocket s(port);
            ASSERT_TRUE(eventually([&] { return accept_backlog(port) == 0; }));
            reset(s);
        }
        release->count_down();
        // This reset connection has closed (refused at accept, or closed on its IO thread)
        // before the next one: only a leaked slot can stay taken.
        ASSERT_TRUE(eventually([&] {
            auto st = server.stats();
            return st.closed(CloseReason::io_error) + st.closed(CloseReason::peer_closed) ==
                   std::uint64_t(i + 1);
        }));
    }
    Client client(client_for(server));
    ASSERT_TRUE(client.connect());
    EXPECT_EQ(client.connection().call("echo", "still admitted", use_wait).value(),
              "still admitted");
}

TEST(Hardening, ConnectionsPerAddressAreCapped) {
    auto so = loopback_server();
    so.admission.max_connections_per_address = 2;
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    auto one = std::make_unique<Client>(client_for(server));
    Client two(client_for(server)), three(client_for(server));
    ASSERT_TRUE(one->connect());
    ASSERT_TRUE(two.connect());
    EXPECT_FALSE(three.connect());
    EXPECT_EQ(server.stats().closed(CloseReason::too_many_per_address), 1u);
    one.reset();  // a closed connection frees its place
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 1; }));
    ASSERT_TRUE(three.connect());
    EXPECT_EQ(three.connection().call("echo", "in", use_wait).value(), "in");
}

namespace {

// Parks a coroutine until the test resumes it from its own thread.
struct Parking {
    std::mutex mu;
    std::coroutine_handle<> handle;
    std::latch parked{1};
    auto wait() {
        struct Awaiter {
            Parking& p;
            bool await_ready() const noexcept { return false; }
            void await_suspend(std::coroutine_handle<> h) {
                {
                    std::lock_guard l(p.mu);
                    p.handle = h;
                }
                p.parked.count_down();
            }
            void await_resume() const noexcept {}
        };
        return Awaiter{*this};
    }
    void resume() {
        std::coroutine_handle<> h;
        {
            std::lock_guard l(mu);
            h = handle;
        }
        h.resume();
    }
};

}  // namespace

// A server destroyed while handshakes wait for its pace closes them: every client's connect
// returns, and nothing the waiting connections held outlives the server (LeakSanitizer: they
// hold its Host, which holds them while they wait).
TEST(Hardening, HandshakesWaitingForThePaceGoWithTheServer) {
    auto so = loopback_server(1);
    so.admission.max_handshakes_per_second = 1;  // a bucket of one: the first goes, the rest wait
    auto server = std::make_unique<Server>(so);
    echo_commands(server->commands());
    server->start().value();
    Client first(client_for(*server));
    ASSERT_TRUE(first.connect());
    auto& host = detail::host_of(*server);
    std::vector<std::unique_ptr<Client>> waiting;
    std::vector<std::future<Result<void>>> connects;
    for (int i = 0; i < 3; ++i) {
        auto co = client_for(*server);
        co.timeouts.connect = 30s;
        waiting.push_back(std::make_unique<Client>(co));
        connects.push_back(
            std::async(std::launch::async, [c = waiting.back().get()] { return c->connect(); }));
    }
    // All three accepted: at least two still wait for a turn a second apart.
    ASSERT_TRUE(eventually([&] { return host.admission.handshakes() >= 2; }));
    server.reset();
    // Each returns at once (most fail: the server went), not at its 30 s connect timeout.
    for (auto& c : connects) {
        ASSERT_EQ(c.wait_for(10s), std::future_status::ready);
        (void)c.get();
    }
    EXPECT_FALSE(first.connection().call("echo", "x", use_wait));
}

// A handshake whose client left while it waited for the pace is closed unread when its turn
// comes (the kernel has its FIN): it would have been read as a bad frame, and it takes no turn
// from the client behind it.
TEST(Hardening, AHandshakeWhoseClientLeftWhileItWaitedIsClosedUnread) {
    auto so = loopback_server(1);
    so.admission.max_handshakes_per_second = 1;  // a bucket of one: the first goes
    so.admission.handshake_timeout = 60s;
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    auto& host = detail::host_of(server);
    host.update_handshake_rate(0.001);  // the next turn is 1,000 s away: the rest wait
    Client first(client_for(server));
    ASSERT_TRUE(first.connect());
    auto co = client_for(server);
    co.timeouts.connect = 60s;
    Client next(co);
    RawSocket gone(server.ports()[0]);
    gone.send("not a hello", 11);  // a bad mark, were it read
    ASSERT_TRUE(eventually([&] { return server.stats().handshakes_waiting == 1; }));
    auto connected = std::async(std::launch::async, [&] { return next.connect(); });
    struct Closer {  // a failed assertion below does not wait for the connect's timeout
        Client& client;
        ~Closer() { client.close(); }
    } closer{next};
    ASSERT_TRUE(eventually([&] { return server.stats().handshakes_waiting == 2; }));
    // `gone` gives up while it waits, ahead of `next`: its FIN is in once the server's kernel
    // has acknowledged it.
    ::shutdown(gone.fd(), SHUT_WR);
    ASSERT_TRUE(eventually([&] {
        tcp_info info{};
        socklen_t n = sizeof info;
        return ::getsockopt(gone.fd(), IPPROTO_TCP, TCP_INFO, &info, &n) == 0 &&
               info.tcpi_state == TCP_FIN_WAIT2;
    }));
    host.update_handshake_rate(1000);
    ASSERT_EQ(connected.wait_for(30s), std::future_status::ready);
    ASSERT_TRUE(connected.get());
    ASSERT_TRUE(next.connection().call("echo", "x", use_wait));
    auto stats = server.stats();
    EXPECT_EQ(stats.closed(CloseReason::peer_closed), 1u);
    EXPECT_EQ(stats.closed(CloseReason::bad_mark), 0u);  // never read
    EXPECT_EQ(stats.handshakes_waiting, 0u);
}

// Handlers running or queued on workers, and coroutine handlers suspended, when their Server is
// destroyed: each still runs from a live command table (AddressSanitizer checks).
TEST(Hardening, ServerDestroyedWhileHandlersAreInFlight) {
    Runtime runtime({.io_threads = 1, .worker_threads = 1});
    auto so = loopback_server();
    so.timeouts.shutdown = 100ms;
    auto server = std::make_unique<Server>(runtime, so);
    auto started = std::make_shared<std::latch>(1);
    auto release = std::make_shared<std::latch>(1);
    auto parking = std::make_shared<Parking>();
    std::string tail(100, 't');  // heap memory owned by the handlers
    server->commands()
        .console("block",
                 [started, release, tail](const Request&, std::string_view s) {
                     started->count_down();
                     release->wait();
                     return std::string(s) + tail;
                 },
                 {.on_worker = true})
        .console("park", [parking, tail](Request, std::string s) -> Task<std::string> {
            co_await parking->wait();
            co_return s + tail;
        });
    server->start().value();
    Client client(runtime, client_for(*server));
    client.connect().value();
    std::latch answered(3);
    for (auto name : {"block", "block", "park"})
        client.connection().call(name, "x", [&](Result<std::string>) { answered.count_down(); });
    started->wait();
    parking->parked.wait();
    server.reset();   // one handler running, one queued, one suspended
    answered.wait();  // all three failed `disconnected` on the client
    release->count_down();
    parking->resume();
}

// The worker queue is bounded: past it, calls are answered `overloaded` at once.
TEST(Hardening, AFullWorkerQueueAnswersOverloaded) {
    auto so = loopback_server();
    so.worker_threads = 1;
    so.max_worker_jobs = 2;
    auto release = std::make_shared<std::latch>(1);
    Fixture f(
        [&](Commands& c) {
            c.console("block",
                      [release](const Request&, std::string_view) {
                          release->wait();
                          return std::string("done");
                      },
                      {.on_worker = true});
        },
        {}, so);
    std::latch done(4);
    std::atomic<int> overloaded{0}, ok{0};
    for (int i = 0; i < 4; ++i)
        f.to_server.call("block", "", [&](Result<std::string> r) {
            if (r)
                ++ok;
            else if (r.error().code == Errc::overloaded)
                ++overloaded;
            done.count_down();
        });
    ASSERT_TRUE(eventually([&] { return overloaded == 2; }));
    EXPECT_EQ(f.server->stats().overloaded, 2u);
    release->count_down();
    done.wait();
    EXPECT_EQ(ok, 2);
}

// Direct messages on workers count against the per-connection limit: at the limit the server
// stops reading that connection instead of queueing more.
TEST(Hardening, DirectMessagesOnWorkersAreBoundedPerConnection) {
    auto so = loopback_server();
    so.worker_threads = 1;
    so.limits.max_pending_calls = 2;
    auto release = std::make_shared<std::latch>(1);
    std::atomic<int> ran{0};
    Fixture f(
        [&](Commands& c) {
            echo_commands(c);
            c.direct_console("work",
                             [&, release](const Request&, std::string_view) {
                                 release->wait();
                                 ++ran;
                             },
                             {.on_worker = true});
        },
        {}, so);
    for (int i = 0; i < 6; ++i) f.to_server.send("work", "").value();
    std::atomic<bool> echoed{false};
    f.to_server.call("echo", "after", [&](Result<std::string>) { echoed = true; });
    // Unbounded, the server would queue all six and answer the echo at once.
    EXPECT_FALSE(eventually([&] { return echoed || f.server->stats().worker_jobs > 2; }, 500ms));
    release->count_down();
    EXPECT_TRUE(eventually([&] { return echoed && ran == 6; }));
}

// A hook may replace itself while it runs: it runs from a copy.
TEST(Hardening, AClientHookMayReplaceItself) {
    Fixture f([](Commands& c) { echo_commands(c); });
    Slot<std::string> seen;
    std::string tag(64, 'h');  // heap memory the running hook reads after replacing itself
    f.client->on_disconnect([&, tag](const Connection&, CloseReason) {
        f.client->on_disconnect(nullptr);
        seen.set(tag);
    });
    f.to_client.close();
    EXPECT_EQ(seen.get(), tag);
}

// A connect callback that throws must not leave the new connection deaf.
TEST(Hardening, ThrowingConnectCallbackLeavesTheConnectionReading) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    Client client(client_for(server));
    client.connect([](Result<void>) { throw std::runtime_error("callback bug"); });
    ASSERT_TRUE(eventually([&] { return client.connected(); }));
    EXPECT_EQ(client.connection().call("echo", "heard", use_wait, {.timeout = 5s}).value(),
              "heard");
    EXPECT_GE(client.stats().callback_errors, 1u);
}
