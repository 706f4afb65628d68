// Connection lifecycle: registry, broadcast, many clients, idle timeout, heartbeat, shutdown.
#include <atomic>
#include <filesystem>
#include <latch>
#include <random>
#include <set>

#include "rpc/loop.hpp"
#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

TEST(Lifecycle, RegistryFindsVisitsAndBroadcasts) {
    Server server(loopback_server());
    server.start().value();
    Runtime runtime;
    std::atomic<int> heard{0};
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 5; ++i) {
        auto c = std::make_unique<Client>(runtime, client_for(server));
        c->commands().direct_console("news", [&](const Request&, std::string_view s) {
            if (s == "extra") ++heard;
        });
        c->connect().value();
        clients.push_back(std::move(c));
    }
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 5; }));
    auto ids = server.connection_ids();
    EXPECT_EQ(ids.size(), 5u);
    EXPECT_EQ(std::set(ids.begin(), ids.end()).size(), 5u);
    for (auto id : ids) {
        auto c = server.find(id);
        ASSERT_TRUE(c);
        EXPECT_EQ(c->id(), id);
        EXPECT_TRUE(c->connected());
        EXPECT_EQ(c->remote_address().rfind("127.0.0.1:", 0), 0u);
    }
    EXPECT_FALSE(server.find(12345));
    std::atomic<int> visited{0};
    server.for_each([&](const Connection& c) {
        EXPECT_TRUE(Runtime::on_io_thread());
        EXPECT_TRUE(c.connected());
        ++visited;
    });
    EXPECT_EQ(visited.load(), 5);
    server.broadcast("news", "extra").value();
    ASSERT_TRUE(eventually([&] { return heard == 5; }));
    EXPECT_EQ(server.broadcast(std::string(300, 'n'), "x").error().code, Errc::invalid_argument);
}

TEST(Lifecycle, ClosedConnectionsLeaveTheRegistryAndIdsAreNotReused) {
    Server server(loopback_server());
    Slot<ConnectionId> first;
    server.on_connect([&](const Connection& c) {
        if (!first.has()) first.set(c.id());
    });
    server.start().value();
    {
        Client c(client_for(server));
        c.connect().value();
        first.get();
    }
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 0; }));
    EXPECT_FALSE(server.find(first.get()));
    Client again(client_for(server));
    again.connect().value();
    ASSERT_TRUE(eventually([&] { return server.connection_count() == 1; }));
    EXPECT_NE(server.connection_ids().at(0), first.get());
    EXPECT_EQ(server.stats().closed(CloseReason::local_close),
              1u);  // the client's goodbye says why
}

TEST(Lifecycle, AThousandConcurrentClients) {
    auto so = loopback_server();
    so.admission.max_handshakes_per_ip = 1000;  // all of them come from 127.0.0.1 at once
    Server server(so);
    echo_commands(server.commands());
    server.start().value();
    Runtime runtime({.io_threads = 2});
    constexpr int n = 1000;
    std::vector<std::unique_ptr<Client>> clients;
    std::latch connected(n);
    std::atomic<int> failures{0};
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<Client>(runtime, client_for(server)));
        clients.back()->connect([&](Result<void> r) {
            if (!r) ++failures;
            connected.count_down();
        });
    }
    connected.wait();
    ASSERT_EQ(failures.load(), 0);
    EXPECT_EQ(server.connection_count(), std::size_t(n));
    std::latch answered(n);
    std::atomic<int> right{0};
    for (int i = 0; i < n; ++i)
        clients[i]->connection().call("echo", std::to_string(i), [&, i](Result<std::string> r) {
            if (r && *r == std::to_string(i)) ++right;
            answered.count_down();
        });
    answered.wait();
    EXPECT_EQ(right.load(), n);
    clients.clear();
    EXPECT_TRUE(eventually([&] { return server.connection_count() == 0; }));
}

TEST(Lifecycle, IdleConnectionsAreClosed) {
    auto so = plaintext_server();
    so.timeouts.idle = 300ms;
    Server server(so);
    server.start().value();
    RawSocket silent(server.ports()[0]);
    silent.plaintext_hello();
    auto bytes = silent.read_until_closed();
    EXPECT_EQ(goodbye_reason(bytes), int(CloseReason::idle_timeout));
    EXPECT_EQ(server.stats().closed(CloseReason::idle_timeout), 1u);
}

TEST(Lifecycle, HeartbeatKeepsAQuietClientConnected) {
    auto so = loopback_server();
    // Pings come every 100-200 ms (sweeps are 100 ms apart): a wide margin.
    so.timeouts.idle = 800ms;
    Slot<CloseReason> closed;  // before the server: its hook may still run while the client goes
    Server server(so);
    server.on_disconnect([&](const Connection&, CloseReason r) { closed.set(r); });
    server.start().value();
    auto co = client_for(server);
    co.timeouts.heartbeat = 100ms;
    Client client(co);
    client.connect().value();
    // Two and a half idle timeouts pass in silence but for the pings.
    EXPECT_THROW(closed.get(2000ms), std::runtime_error);
    EXPECT_TRUE(client.connected());
    EXPECT_GT(server.stats().frames_in, 3u);
}

TEST(Lifecycle, GracefulShutdownLetsCallsInFlightFinish) {
    Slot<Responder<std::string>> held;
    Fixture f([&](Commands& c) {
        echo_commands(c);
        c.console("slow",
                  [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
    });
    Slot<Result<std::string>> slow_result;
    f.to_server.call("slow", "", [&](Result<std::string> r) { slow_result.set(r); });
    held.get();
    Slot<CloseReason> client_saw;
    f.client->on_disconnect([&](const Connection&, CloseReason r) { client_saw.set(r); });
    std::thread stopper([&] { f.server->shutdown(5s); });
    // While draining, new calls are refused but the one in flight may finish.
    ASSERT_TRUE(eventually([&] {
        auto r = f.to_server.call("echo", "x", use_wait);
        return !r && r.error().code == Errc::shutting_down;
    }));
    held.get().reply("finished");
    EXPECT_EQ(slow_result.get().value(), "finished");
    EXPECT_EQ(client_saw.get(), CloseReason::shutdown);
    stopper.join();
    EXPECT_EQ(f.server->connection_count(), 0u);
    // No longer accepting.
    Client late(client_for(*f.server));
    EXPECT_FALSE(late.connect());
}

TEST(Lifecycle, ShutdownGraceIsBounded) {
    Slot<Responder<std::string>> held;
    Fixture f([&](Commands& c) {
        c.console("forever",
                  [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
    });
    Slot<Errc> code;
    f.to_server.call("forever", "",
                     [&](Result<std::string> r) { code.set(r ? Errc::ok : r.error().code); });
    held.get();
    f.server->shutdown(200ms);
    EXPECT_EQ(code.get(), Errc::disconnected);
    EXPECT_EQ(f.server->connection_count(), 0u);
}

TEST(Lifecycle, HooksSeeConnectAndDisconnectWithReason) {
    Server server(plaintext_server());
    std::atomic<int> connects{0};
    Slot<CloseReason> reason;
    server.on_connect([&](const Connection&) { ++connects; });
    server.on_disconnect([&](const Connection&, CloseReason r) { reason.set(r); });
    server.start().value();
    {
        RawSocket s(server.ports()[0]);
        s.plaintext_hello();
        ASSERT_TRUE(eventually([&] { return connects == 1; }));
    }
    EXPECT_EQ(reason.get(), CloseReason::peer_closed);
}

TEST(Lifecycle, TwoServersShareAPortWithReusePort) {
    // Processes that share a port are one service: they share the static key (one data_dir).
    auto shared = loopback_server(1);
    shared.reuse_port = true;
    shared.data_dir = ::testing::TempDir() + "hawser_reuseport_" + std::to_string(::getpid());
    std::filesystem::remove_all(shared.data_dir);
    Server first(shared);
    echo_commands(first.commands());
    first.start().value();
    auto so = shared;
    so.listen = {"127.0.0.1:" + std::to_string(first.ports()[0])};
    Server second(so);
    echo_commands(second.commands());
    ASSERT_TRUE(second.start());
    // The kernel spreads connections over both; every one is served.
    Runtime runtime;  // outlives the clients built on it
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 40; ++i) {
        clients.push_back(std::make_unique<Client>(runtime, client_for(first)));
        clients.back()->connect().value();
        EXPECT_EQ(clients.back()->connection().call("echo", "x", use_wait).value(), "x");
    }
    EXPECT_EQ(first.connection_count() + second.connection_count(), 40u);
    EXPECT_GT(second.connection_count(), 0u);

    auto taken = loopback_server(1);
    taken.listen = so.listen;
    taken.reuse_port = false;
    Server third(taken);
    auto r = third.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("bind"), std::string::npos) << r.error().message;
    std::filesystem::remove_all(shared.data_dir);
}

// A handler of the client's own commands on a worker thread may use what the client's owner
// frees after destroying it: the destructor waits for it. A one-way message's handler holds no
// reply, so nothing else keeps the connection (and the destructor's wait for it) until it ends.
// It is let go only once the destructor has closed the connection (the server hears the
// goodbye), so it is still running while the destructor runs.
TEST(Lifecycle, DestroyingAClientWaitsForItsWorkerHandlers) {
    std::promise<void> goodbye_heard;
    auto heard = goodbye_heard.get_future().share();
    Server server(loopback_server(1));
    auto joined = std::make_shared<Slot<ConnectionId>>();
    server.on_connect([joined](const Connection& c) { joined->set(c.id()); });
    server.on_disconnect([&](const Connection&, CloseReason) { goodbye_heard.set_value(); });
    server.start().value();
    std::atomic<bool> handler_finished{false};
    Slot<bool> handler_started;
    // On a Runtime that outlives it (a Client that owns its Runtime joins the worker threads
    // as it goes anyway).
    Runtime runtime(RuntimeOptions{.io_threads = 1, .worker_threads = 1});
    auto client = std::make_unique<Client>(runtime, client_for(server));
    client->commands().direct_console(
        "slow",
        [&, heard](const Request&, std::string_view) {
            handler_started.set(true);
            heard.wait();
            // Work that takes a while after the goodbye: the connection is closed by now, the
            // handler still runs.
            std::this_thread::sleep_for(300ms);
            handler_finished = true;
        },
        CommandOptions{.on_worker = true});
    client->connect().value();
    ASSERT_TRUE(server.find(joined->get()).value().send("slow", ""));
    handler_started.get();
    client.reset();
    EXPECT_TRUE(handler_finished.load());
}

// A Client destroyed on its own IO thread (from a call's callback, on a shared Runtime) cannot
// wait, but its hooks must not run after it: its on_disconnect captures what dies with it.
TEST(Lifecycle, AClientDestroyedOnItsOwnLoopRunsNoHookAfter) {
    Server server(loopback_server(1));
    echo_commands(server.commands());
    Slot<bool> server_heard_goodbye;
    server.on_disconnect([&](const Connection&, CloseReason) { server_heard_goodbye.set(true); });
    server.start().value();
    Runtime runtime(RuntimeOptions{.io_threads = 1, .worker_threads = 1});
    auto client = std::make_unique<Client>(runtime, client_for(server));
    std::atomic<bool> destroyed{false};
    std::atomic<int> hooks_after{0};
    client->on_disconnect([&](const Connection&, CloseReason) {
        if (destroyed) ++hooks_after;  // (in an application: captures already gone)
    });
    client->connect().value();
    client->connection().call("echo", "x", [&](Result<std::string>) {
        client.reset();  // on the client's IO thread
        destroyed = true;
    });
    EXPECT_TRUE(server_heard_goodbye.get());
    // One more turn of the client's loop: whatever the close posted there has run.
    std::promise<void> turned;
    runtime.impl().loop(0).post([&] { turned.set_value(); });
    turned.get_future().wait();
    EXPECT_TRUE(destroyed.load());
    EXPECT_EQ(hooks_after.load(), 0);
}
