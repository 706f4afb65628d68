// The send queue: memory follows what is unsent, a soft limit closes a consumer that stays
// behind, and producers can see a congested connection.
#include <latch>
#include <mutex>
#include <random>
#include <thread>

#include "rpc/conn.hpp"
#include "rpc/loop.hpp"

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

std::string incompressible(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::mt19937 rng(seed);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

// Reads exactly n bytes (blocking).
void read_bytes(RawSocket& s, std::size_t n) {
    std::vector<char> buf(64 * 1024);
    while (n) {
        auto k = ::recv(s.fd(), buf.data(), std::min(n, buf.size()), 0);
        if (k <= 0) throw std::runtime_error("peer closed");
        n -= static_cast<std::size_t>(k);
    }
}

struct PushedTo {
    Server server;
    std::unique_ptr<RawSocket> reader;
    Connection conn;
    Slot<CloseReason> closed;
    explicit PushedTo(ServerOptions so) : server(so) {
        Slot<ConnectionId> joined;
        server.on_connect([&](const Connection& c) { joined.set(c.id()); });
        server.on_disconnect([this](const Connection&, CloseReason r) { closed.set(r); });
        server.start().value();
        reader = std::make_unique<RawSocket>(server.ports()[0], 4096);
        reader->plaintext_hello();
        conn = server.find(joined.get()).value();
    }
};

struct Pushed {
    int accepted = 0;
    Errc refusal = Errc::ok;
};

// Calls push() until it is refused or `limit` calls were accepted.
template <class Push>
Pushed push_until_refused(int limit, Push&& push) {
    Pushed out;
    while (out.accepted < limit) {
        auto r = push();
        if (!r) {
            out.refusal = r.error().code;
            break;
        }
        ++out.accepted;
    }
    return out;
}

}  // namespace

// A reader that keeps reading but stays behind: the server's send buffers hold what is unsent,
// not everything sent since the queue last emptied.
TEST(SendQueue, MemoryFollowsWhatIsUnsent) {
    auto so = plaintext_server(1);
    so.limits.send_queue_soft_bytes = 0;  // no soft limit: this test is about memory only
    PushedTo p(so);
    const std::string chunk = incompressible(32 * 1024, 7);
    constexpr int messages = 512;  // 16 MiB
    for (int i = 0; i < messages; ++i) p.conn.send("push", chunk).value();
    ASSERT_TRUE(eventually([&] { return p.server.stats().send_queue_bytes >= 8u << 20; }));
    // The reader catches up with most of it, in steps; the server writes more as it does.
    for (int step = 0; step < 6; ++step) {
        read_bytes(*p.reader, 2u << 20);
        auto s = p.server.stats();
        EXPECT_LE(s.send_buffer_bytes, 2 * s.send_queue_bytes + (256u << 10))
            << "step " << step << ": " << s.send_buffer_bytes << " bytes held for "
            << s.send_queue_bytes << " unsent";
    }
}

// Over the soft limit for longer than its grace: closed as a slow consumer, though the hard
// limit was never reached. Producers see the connection as congested meanwhile.
TEST(SendQueue, StayingOverTheSoftLimitCloses) {
    auto so = plaintext_server(1);
    so.limits.send_queue_soft_bytes = 1u << 20;
    so.limits.send_queue_soft_grace = 300ms;
    so.limits.max_send_queue_bytes = 64u << 20;
    PushedTo p(so);
    const std::string chunk = incompressible(64 * 1024, 9);
    for (int i = 0; i < 192; ++i) p.conn.send("push", chunk).value();  // 12 MiB
    ASSERT_TRUE(eventually([&] { return p.conn.congested() || p.closed.has(); }));
    EXPECT_EQ(p.closed.get(), CloseReason::slow_consumer);
    EXPECT_LT(p.server.stats().send_queue_bytes, 1u << 20);  // its memory went with it
}

// Broadcast skips connections over their soft limit, and counts them.
TEST(SendQueue, BroadcastSkipsCongestedConnections) {
    auto so = plaintext_server(1);
    so.limits.send_queue_soft_bytes = 1u << 20;
    so.limits.send_queue_soft_grace = 60s;
    PushedTo p(so);
    const std::string chunk = incompressible(64 * 1024, 11);
    for (int i = 0; i < 96; ++i) p.conn.send("push", chunk).value();
    ASSERT_TRUE(eventually([&] { return p.conn.congested(); }));
    p.server.broadcast("news", chunk).value();
    EXPECT_TRUE(eventually([&] { return p.server.stats().broadcast_skipped == 1; }));
    EXPECT_FALSE(p.closed.has());  // skipped, not cut off: the grace has not passed
}

// A client that pauses reading is a slow consumer to the server: the server's queue grows past
// its soft limit (broadcast skips it) instead of the client buffering. Resumed, it gets every
// message, in order. Here the first push's handler pauses: what the same read brought is held.
TEST(SendQueue, AClientThatPausesReadingPushesBack) {
    auto so = loopback_server(1);
    so.limits.send_queue_soft_bytes = 1u << 20;
    so.limits.send_queue_soft_grace = 60s;
    so.limits.max_send_queue_bytes = 64u << 20;
    std::mutex mu;
    std::vector<int> seen;  // push numbers, as delivered
    Fixture f([](Commands& c) { echo_commands(c); },
              [&](Commands& c) {
                  c.direct_console("push", [&](const Request& r, std::string_view s) {
                      auto n = std::stoi(std::string(s.substr(0, s.find(' '))));
                      if (n == 0) r.connection().pause_reading();  // on the IO thread: now
                      std::lock_guard l(mu);
                      seen.push_back(n);
                  });
              },
              so);
    auto delivered = [&] {
        std::lock_guard l(mu);
        return seen.size();
    };
    const std::string filler = incompressible(64 * 1024, 15);
    // 40 MiB: more than the kernel's socket buffers both ways and the soft limit together,
    // twice over (20 MiB once fitted, in a clean-clone run: loopback buffers autotune).
    int sent = 0;
    while (sent < 640) f.to_client.send("push", std::to_string(sent++) + " " + filler).value();
    ASSERT_TRUE(eventually([&] { return f.to_client.congested(); }));
    // A client that reads would catch up and clear it within this second; this one stays behind.
    EXPECT_FALSE(eventually([&] { return !f.to_client.congested(); }, 1s));
    EXPECT_EQ(delivered(), 1u);
    f.server->broadcast("push", std::to_string(sent++) + " " + filler).value();
    EXPECT_TRUE(eventually([&] { return f.server->stats().broadcast_skipped == 1; }));
    --sent;  // the skipped one never comes

    f.to_server.resume_reading();
    ASSERT_TRUE(eventually([&] { return delivered() == std::size_t(sent); }));
    {
        std::lock_guard l(mu);
        for (int i = 0; i < sent; ++i) ASSERT_EQ(seen[std::size_t(i)], i);
    }
    EXPECT_EQ(f.to_server.call("echo", "still here", use_wait).value(), "still here");
}

// A pause from another thread takes effect before what is posted after it: the read already
// armed on the idle connection finds it and reads nothing, so the reply waits in the kernel
// until reading resumes.
TEST(SendQueue, APauseFromAnotherThreadStopsTheReadAlreadyArmed) {
    Fixture f([](Commands& c) { echo_commands(c); });
    f.to_server.pause_reading();
    Slot<std::string> reply;
    f.to_server.call("echo", "held", [&](Result<std::string> r) { reply.set(r ? *r : "error"); });
    // The server answers at once; read, it would complete within this half second.
    EXPECT_FALSE(eventually([&] { return reply.has(); }, 500ms));
    f.to_server.resume_reading();
    EXPECT_EQ(reply.get(), "held");
}

// Sends from another thread wait for the connection's IO thread; while it is busy they are
// bounded by the hard send limit and refused `overloaded` past it, not queued without end.
TEST(SendQueue, PostsFromOtherThreadsAreBounded) {
    Runtime runtime({.io_threads = 1});
    auto so = plaintext_server(1);
    so.limits.max_send_queue_bytes = 1u << 20;
    Server server(runtime, so);
    Slot<ConnectionId> joined;
    server.on_connect([&](const Connection& c) { joined.set(c.id()); });
    server.start().value();
    RawSocket reader(server.ports()[0]);
    reader.plaintext_hello();
    auto conn = server.find(joined.get()).value();
    auto release = std::make_shared<std::latch>(1);
    runtime.impl().loop(0).post([release] { release->wait(); });  // the IO thread is busy
    const std::string chunk(1024, 'x');
    auto pushed = push_until_refused(4096, [&] { return conn.send("push", chunk); });
    // A call refused there completes on the IO thread once it is free, not inside call().
    Slot<std::pair<bool, Errc>> refused;
    conn.call("x", chunk, [&](Result<std::string> r) {
        refused.set({Runtime::on_io_thread(), r ? Errc::ok : r.error().code});
    });
    EXPECT_FALSE(refused.has());
    // Refusals wait for the loop up to a bound; past it they run at once, on this thread.
    const auto here = std::this_thread::get_id();
    std::atomic<int> refusals{0}, on_this_thread{0};
    const int more = int(detail::Conn::max_refused_calls) + 50;
    for (int i = 0; i < more; ++i)
        conn.call("x", chunk, [&](Result<std::string>) {
            on_this_thread += std::this_thread::get_id() == here;
            ++refusals;
        });
    EXPECT_EQ(on_this_thread.load(), 51);  // the first refusal above took one place
    release->count_down();
    EXPECT_EQ(refused.get(), std::pair(true, Errc::overloaded));
    EXPECT_TRUE(eventually([&] { return refusals.load() == more; }));
    EXPECT_EQ(pushed.refusal, Errc::overloaded);
    EXPECT_LE(pushed.accepted, 1024);
    Slot<Errc> call;
    conn.call("x", "", [&](Result<std::string> r) { call.set(r ? Errc::ok : r.error().code); },
              {.timeout = 200ms});
    EXPECT_NE(call.get(), Errc::ok);  // a call still goes through once the loop is free
}

// A call whose own send passes the hard limit closes the connection; its callback still runs
// after call() has returned, on the connection's thread, never inside call().
TEST(SendQueue, ACallThatClosesTheConnectionFailsAfterCallReturns) {
    Runtime runtime({.io_threads = 1});
    auto so = plaintext_server(1);
    so.limits.send_queue_soft_bytes = 256u << 10;
    so.limits.max_send_queue_bytes = 512u << 10;
    Server server(runtime, so);
    Slot<ConnectionId> joined;
    server.on_connect([&](const Connection& c) { joined.set(c.id()); });
    server.start().value();
    RawSocket reader(server.ports()[0], 4096);
    reader.plaintext_hello();
    auto conn = server.find(joined.get()).value();
    auto inside = std::make_shared<std::atomic<bool>>(false);
    Slot<std::pair<bool, Errc>> done;
    runtime.impl().loop(0).post([&, inside] {
        *inside = true;
        conn.call("x", incompressible(4u << 20, 3), [&, inside](Result<std::string> r) {
            done.set({inside->load(), r ? Errc::ok : r.error().code});
        });
        *inside = false;
    });
    auto [was_inside, code] = done.get();
    EXPECT_FALSE(was_inside);
    EXPECT_EQ(code, Errc::disconnected);
}

// Broadcasts waiting for busy IO threads are bounded the same way.
TEST(SendQueue, BroadcastsWaitingForTheLoopsAreBounded) {
    Runtime runtime({.io_threads = 1});
    auto so = plaintext_server(1);
    so.limits.max_send_queue_bytes = 1u << 20;
    Server server(runtime, so);
    server.start().value();
    auto release = std::make_shared<std::latch>(1);
    runtime.impl().loop(0).post([release] { release->wait(); });  // the IO thread is busy
    const std::string chunk = incompressible(64 * 1024, 13);
    auto pushed = push_until_refused(1024, [&] { return server.broadcast("news", chunk); });
    release->count_down();
    EXPECT_EQ(pushed.refusal, Errc::overloaded);
    EXPECT_LE(pushed.accepted, 16);
    // Once the loop has caught up, broadcasting works again.
    EXPECT_TRUE(eventually([&] { return bool(server.broadcast("news", chunk)); }));
}
