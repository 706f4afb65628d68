// The session and channel layers over the in-memory transport, on a loop with a manual clock:
// idle timeout, heartbeats, call deadlines, rekey-by-time, the kind registry and backpressure,
// all without sockets and without sleeping. The test thread drives the one loop.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "hawser/commands.hpp"
#include "rpc/conn.hpp"
#include "rpc/host.hpp"
#include "rpc/loop.hpp"
#include "rpc/memory_transport.hpp"
#include "rpc/stream_feed.hpp"
#include "rpc/stream_table.hpp"

namespace hawser::detail {
namespace {

using namespace std::chrono_literals;

struct Settings {
    Timeouts server_timeouts, client_timeouts;
    TransportOptions server_transport, client_transport;
    Limits limits;
    std::size_t pipe_capacity = 256 * 1024;
    bool client_loop = false;  // the client on a loop of its own, driven apart (two loops)
};

// A server and a client Host on one manual loop, joined by an in-memory pair.
class Session {
  public:
    explicit Session(Settings s = {}, bool connect = true)
        : settings_(std::move(s)),
          runtime_(RuntimeOptions{settings_.client_loop ? 2u : 1u, 1}, Loop::ClockMode::manual),
          loop(runtime_.loop(0)),
          client_loop(runtime_.loop(settings_.client_loop ? 1 : 0)),
          server_host(std::make_shared<Host>(runtime_, false, ProtocolMark{}, settings_.limits,
                                             settings_.server_timeouts,
                                             settings_.server_transport)),
          client_host(std::make_shared<Host>(runtime_, true, ProtocolMark{}, settings_.limits,
                                             settings_.client_timeouts,
                                             settings_.client_transport)) {
        server_host->static_keys = noise::KeyPair::generate();
        client_host->server_key = server_host->static_keys.public_key;
        (void)server_host->admission.configure({});
        server_host->commands.console(
            "echo", [](const Request&, std::string_view s) { return std::string(s); });
        server_host->commands.console(
            "hold", [this](const Request&, std::string, Responder<std::string> r) {
                held.push_back(std::move(r));  // answered later, or never
            });
        if (connect) this->connect();
    }

    ~Session() {
        auto close_client = [&] {
            if (client) client->close(CloseReason::local_close);
        };
        auto close_server = [&] {
            if (server) server->close(CloseReason::local_close);
        };
        if (&client_loop == &loop) {
            loop.run_here([&] {
                close_client();
                close_server();
            });
        } else {
            client_loop.run_here(close_client);
            loop.run_here(close_server);
        }
        held.clear();
    }

    void connect() { std::tie(server, client) = another(); }

    // Another server and client connection, joined by their own pipe: the client started.
    std::pair<std::shared_ptr<Conn>, std::shared_ptr<Conn>> another() {
        auto [a, b] = make_memory_pair(loop, client_loop, settings_.pipe_capacity);
        auto accepted = accept(std::move(a));
        client_host->publish_hooks();
        auto connecting = std::make_shared<Conn>(client_loop, client_host, std::move(b), address());
        client_loop.run_here([&] { connecting->start(); });
        pump();
        return {accepted, connecting};
    }

    // Two loops: runs each in turn, 16 rounds (more than any exchange here takes).
    void pump() {
        if (&client_loop == &loop) return;
        for (int round = 0; round < 16; ++round) {
            loop.run_here([] {});
            client_loop.run_here([] {});
        }
    }

    // A server connection on `transport`, admitted and started as a Listener does.
    std::shared_ptr<Conn> accept(std::unique_ptr<Transport> transport) {
        server_host->publish_hooks();
        bool overflow = false;
        EXPECT_EQ(server_host->admission.admit(address().address(), Clock::now(), &overflow),
                  CloseReason::none);
        auto conn =
            std::make_shared<Conn>(loop, server_host, std::move(transport), address(), overflow);
        loop.run_here([&] { conn->start(); });
        return conn;
    }

    static asio::ip::tcp::endpoint address() { return {asio::ip::make_address("127.0.0.1"), 7100}; }

    // Starts a call from the client; the result lands in the returned slot.
    std::shared_ptr<std::optional<Result<std::string>>> call(std::string_view command,
                                                             std::string payload,
                                                             CallOptions options = {}) {
        auto out = std::make_shared<std::optional<Result<std::string>>>();
        client_loop.run_here([&] {
            client->start_call(client->reserve_call_id(), Kind::call_console, command,
                               std::move(payload), options,
                               [out](Result<std::string> r) { *out = std::move(r); });
        });
        return out;
    }

    std::uint64_t closed(const Host& host, CloseReason reason) const {
        return host.counters.closed[std::size_t(reason)].load();
    }

  private:
    Settings settings_;
    RuntimeImpl runtime_;

  public:
    Loop& loop;
    Loop& client_loop;  // `loop` unless Settings::client_loop
    std::shared_ptr<Host> server_host, client_host;
    std::shared_ptr<Conn> server, client;
    std::vector<Responder<std::string>> held;
};

TEST(Session, HandshakeAndCallOverTheMemoryTransport) {
    Session s;
    ASSERT_TRUE(s.server->is_open());
    ASSERT_TRUE(s.client->is_open());
    ASSERT_NE(s.client->peer_static_key(), nullptr);
    EXPECT_EQ(*s.client->peer_static_key(), s.server_host->static_keys.public_key);
    auto r = s.call("echo", "hello");
    ASSERT_TRUE(r->has_value());
    ASSERT_TRUE(**r) << (*r)->error().message;
    EXPECT_EQ(***r, "hello");
}

TEST(Session, IdleTimeoutClosesAQuietPeerAtTheConfiguredTime) {
    Settings settings;
    settings.server_timeouts.idle = 10s;
    settings.client_timeouts.idle = 0ms;
    Session s(settings);
    s.loop.advance(9500ms);
    EXPECT_TRUE(s.server->is_open());
    s.loop.advance(750ms);
    EXPECT_FALSE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 1u);
    // The client was told why before the server closed.
    EXPECT_FALSE(s.client->is_open());
}

TEST(Session, TrafficPostponesTheIdleTimeout) {
    Settings settings;
    settings.server_timeouts.idle = 10s;
    Session s(settings);
    s.loop.advance(8s);
    ASSERT_TRUE(s.call("echo", "x")->has_value());
    s.loop.advance(8s);  // 16 s since connecting, 8 s since the call
    EXPECT_TRUE(s.server->is_open());
    s.loop.advance(2500ms);
    EXPECT_FALSE(s.server->is_open());
}

TEST(Session, AnIdleTimeoutBeyondTheSweepWheelsReachStillFires) {
    // The sweep looks about 205 s ahead at most: a longer timeout is checked at the horizon,
    // found not due, and scheduled again; traffic in between postpones it as usual.
    Settings settings;
    settings.server_timeouts.idle = 600s;
    settings.client_timeouts.idle = 0ms;
    Session s(settings);
    s.loop.advance(300s);
    ASSERT_TRUE(s.call("echo", "x")->has_value());
    s.loop.advance(599s);  // 899 s since connecting, 599 s since the call
    EXPECT_TRUE(s.server->is_open());
    s.loop.advance(1500ms);
    EXPECT_FALSE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 1u);
}

TEST(Session, BytesWaitingUnreadAreNotIdle) {
    // A loop behind its sockets: the peer's call reaches the server's side of the pipe in the
    // turn its idle timeout comes up, before the loop reads it. The peer spoke: no idle close.
    Settings settings;
    settings.server_timeouts.idle = 10s;
    settings.client_timeouts.idle = 0ms;
    settings.client_loop = true;
    Session s(settings);
    ASSERT_TRUE(s.server->is_open());
    ASSERT_TRUE(s.client->is_open());
    std::shared_ptr<std::optional<Result<std::string>>> reply;
    // The server loop's timed tasks run before its sweep in the same step, and the sweep before
    // what is ready: the client (on its own loop) writes its call from a timed task. Both come
    // due 10 s after connecting, a sweep's time (the manual clock's sweeps count from then).
    static_assert(10s % sweep_period == 0s);
    s.loop.run_here(
        [&] { s.loop.post_at(s.loop.now() + 10s, [&] { reply = s.call("echo", "late"); }); });
    s.loop.advance(10250ms);
    EXPECT_TRUE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 0u);
    s.pump();
    ASSERT_TRUE(reply && reply->has_value());
    ASSERT_TRUE(**reply) << (*reply)->error().message;
    EXPECT_EQ(***reply, "late");
    // Quiet again, it times out a whole idle period after that call.
    s.loop.advance(9500ms);
    EXPECT_TRUE(s.server->is_open());
    s.loop.advance(1s);
    EXPECT_FALSE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 1u);
}

TEST(Session, APausedSideStillSendsHeartbeatsWithInputWaiting) {
    // The client stopped reading and the server's bytes wait for it unread: its heartbeats
    // still go out, so the server does not end the pause as idle.
    Settings settings;
    settings.server_timeouts.idle = 10s;
    settings.client_timeouts.heartbeat = 3s;
    Session s(settings);
    s.loop.run_here([&] {
        s.client->pause_reading(true);
        s.server->send_message(Kind::ping, 0, {}, {});  // never read: the client is paused
    });
    s.loop.advance(60s);
    EXPECT_TRUE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 0u);
}

TEST(Session, HeartbeatsKeepAQuietConnectionAlive) {
    Settings settings;
    settings.server_timeouts.idle = 10s;
    settings.client_timeouts.heartbeat = 3s;
    Session s(settings);
    auto frames_before = s.server_host->loop_counters(0).frames_in.load();
    s.loop.advance(60s);
    EXPECT_TRUE(s.server->is_open());
    EXPECT_TRUE(s.client->is_open());
    // One ping about every 3 s of quiet, each answered with a pong.
    auto pings = s.server_host->loop_counters(0).frames_in.load() - frames_before;
    EXPECT_GE(pings, 15u);
    EXPECT_LE(pings, 21u);
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 0u);
}

TEST(Session, HeartbeatsStartRightAfterAHandshakeWithALongTimeout) {
    // A check scheduled for the end of a long handshake timeout must not hold back the first
    // heartbeat once the connection is open.
    Settings settings;
    settings.server_timeouts.idle = 10s;
    settings.client_timeouts.heartbeat = 3s;
    Session s(settings, false);
    s.client_host->handshake_timeout = 120s;
    // The client says hello and is swept while it waits (its next check: in 120 s); only then
    // does the server read the hello and the handshake complete.
    auto [server_end, client_end] = make_memory_pair(s.loop, s.loop);
    s.client_host->publish_hooks();
    s.client =
        std::make_shared<Conn>(s.loop, s.client_host, std::move(client_end), Session::address());
    s.loop.run_here([&] { s.client->start(); });
    s.loop.advance(500ms);
    s.server = s.accept(std::move(server_end));
    ASSERT_TRUE(s.client->is_open());
    s.loop.advance(60s);
    EXPECT_TRUE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 0u);
}

TEST(Session, WithoutHeartbeatsTheSameConnectionTimesOut) {
    Settings settings;
    settings.server_timeouts.idle = 10s;
    Session s(settings);
    s.loop.advance(60s);
    EXPECT_FALSE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::idle_timeout), 1u);
}

TEST(Session, ACallFailsWithTimeoutAtItsDeadline) {
    Session s;
    auto r = s.call("hold", "x", CallOptions{.timeout = 2000ms});
    s.loop.advance(1750ms);
    ASSERT_EQ(s.held.size(), 1u);
    EXPECT_FALSE(r->has_value());
    s.loop.advance(500ms);
    ASSERT_TRUE(r->has_value());
    ASSERT_FALSE(**r);
    EXPECT_EQ((*r)->error().code, Errc::timeout);
    // A reply after the deadline is counted as late and dropped; the connection stays.
    s.loop.run_here([&] { s.held[0].reply("too late"); });
    EXPECT_EQ(s.client_host->counters.late_replies.load(), 1u);
    EXPECT_TRUE(s.client->is_open());
}

// A connection keeps one entry in its loop's deadline set, at its earliest call; calls with
// other timeouts, answered calls and expired calls must each leave the rest on time.
TEST(Session, CallsWithMixedTimeoutsEachFailAtTheirOwnDeadline) {
    Session s;
    auto long_one = s.call("hold", "a", CallOptions{.timeout = 5000ms});
    auto answered = s.call("hold", "b", CallOptions{.timeout = 1000ms});
    auto short_one = s.call("hold", "c", CallOptions{.timeout = 1000ms});
    auto middle = s.call("hold", "d", CallOptions{.timeout = 3000ms});
    auto shortest = s.call("hold", "e", CallOptions{.timeout = 500ms});
    ASSERT_EQ(s.held.size(), 5u);
    s.loop.run_here([&] { s.held[1].reply("in time"); });
    ASSERT_TRUE(answered->has_value());
    EXPECT_EQ(***answered, "in time");
    auto failed = [](const auto& r) {
        return r->has_value() && !**r && (*r)->error().code == Errc::timeout;
    };
    s.loop.advance(250ms);
    EXPECT_FALSE(shortest->has_value());
    s.loop.advance(500ms);  // 750 ms
    EXPECT_TRUE(failed(shortest));
    EXPECT_FALSE(short_one->has_value());
    s.loop.advance(500ms);  // 1250 ms
    EXPECT_TRUE(failed(short_one));
    EXPECT_FALSE(middle->has_value());
    s.loop.advance(1500ms);  // 2750 ms
    EXPECT_FALSE(middle->has_value());
    s.loop.advance(500ms);  // 3250 ms
    EXPECT_TRUE(failed(middle));
    EXPECT_FALSE(long_one->has_value());
    // A call added now, due before the long one, is not held up behind it.
    auto late_short = s.call("hold", "f", CallOptions{.timeout = 500ms});
    s.loop.advance(750ms);  // 4000 ms
    EXPECT_TRUE(failed(late_short));
    EXPECT_FALSE(long_one->has_value());
    s.loop.advance(1250ms);  // 5250 ms
    EXPECT_TRUE(failed(long_one));
    EXPECT_EQ(s.client_host->counters.late_replies.load(), 0u);
}

// The earliest call answered in time: its entry comes due with nothing due, and is set again
// for the next call.
TEST(Session, AnAnsweredEarliestCallLeavesTheNextOnTime) {
    Session s;
    auto first = s.call("hold", "a", CallOptions{.timeout = 500ms});
    auto second = s.call("hold", "b", CallOptions{.timeout = 1500ms});
    ASSERT_EQ(s.held.size(), 2u);
    s.loop.run_here([&] { s.held[0].reply("in time"); });
    ASSERT_TRUE(first->has_value() && **first);
    s.loop.advance(1250ms);
    EXPECT_FALSE(second->has_value());
    s.loop.advance(500ms);
    ASSERT_TRUE(second->has_value());
    ASSERT_FALSE(**second);
    EXPECT_EQ((*second)->error().code, Errc::timeout);
}

// While a read is handled, the loop's time is the moment of that read: every message of it
// costs no clock read. Nested holds keep the outer time; the clock moves again after.
TEST(Loop, ReadTimeHoldsTheClockWhileAReadIsHandled) {
    Loop loop(0);
    Clock::time_point held;
    {
        Loop::ReadTime read(loop);
        held = loop.now();
        EXPECT_EQ(loop.now(), held);
        {
            Loop::ReadTime nested(loop);
            EXPECT_EQ(loop.now(), held);
        }
        EXPECT_EQ(loop.now(), held);
    }
    bool moved = false;
    for (int i = 0; i < 1000000 && !moved; ++i) moved = loop.now() > held;
    EXPECT_TRUE(moved);
}

TEST(Loop, ExactTimeMovesOnWhileAReadIsHandled) {
    Loop loop(0);
    Loop::ReadTime read(loop);
    auto held = loop.now();
    bool moved = false;
    for (int i = 0; i < 1000000 && !moved; ++i) moved = loop.now_exact() > held;
    EXPECT_TRUE(moved);
    EXPECT_EQ(loop.now(), held);
    // It is the clock's time, not a count of its own: between two reads of the clock.
    auto before = Clock::now();
    auto exact = loop.now_exact();
    auto after = Clock::now();
    EXPECT_GT(exact, before - 1ms);
    EXPECT_LT(exact, after + 100ms);  // a stall between the read's two clock reads puts it ahead
}

TEST(Session, TheConnectionsDefaultCallTimeoutApplies) {
    Settings settings;
    settings.client_timeouts.call = 5s;
    Session s(settings);
    auto r = s.call("hold", "x");
    s.loop.advance(4750ms);
    EXPECT_FALSE(r->has_value());
    s.loop.advance(500ms);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->error().code, Errc::timeout);
}

TEST(Session, SendingKeysRotateAfterTheRekeyInterval) {
    Settings settings;
    settings.client_transport.rekey_interval = 60s;
    settings.server_transport.rekey_interval = 3600s;
    Session s(settings);
    ASSERT_TRUE(s.call("echo", "before")->has_value());
    EXPECT_EQ(s.client_host->loop_counters(0).rekeys.load(), 0u);
    s.loop.advance(59s);
    ASSERT_TRUE(s.call("echo", "still the first key")->has_value());
    EXPECT_EQ(s.client_host->loop_counters(0).rekeys.load(), 0u);
    s.loop.advance(2s);
    auto r = s.call("echo", "after");
    ASSERT_TRUE(r->has_value());
    ASSERT_TRUE(**r);
    EXPECT_EQ(***r, "after");
    // The client rotated its sending key and the server followed; the server's own interval
    // has not passed, so its sending key stayed.
    EXPECT_EQ(s.client_host->loop_counters(0).rekeys.load(), 1u);
    EXPECT_EQ(s.server_host->loop_counters(0).rekeys.load(), 1u);
}

int g_kind10_seen = 0;
std::string g_kind10_payload;

TEST(Session, AMessageKindNobodyRegisteredClosesAsMalformed) {
    Session s({}, false);
    s.server_host->kinds = MessageKinds{};  // without the big-stream kinds
    register_session_kinds(s.server_host->kinds);
    s.connect();
    s.loop.run_here([&] { s.client->send_message(Kind{10}, 0, {}, as_bytes("hi")); });
    EXPECT_FALSE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::malformed), 1u);
}

TEST(Session, AKindRegisteredByAnotherPartIsDispatchedToIt) {
    Session s({}, false);
    s.server_host->kinds = MessageKinds{};  // kind 10 taken back from big streams
    register_session_kinds(s.server_host->kinds);
    s.server_host->kinds.add(Kind{10}, [](Conn&, const MessageView& m) {
        ++g_kind10_seen;
        g_kind10_payload.assign(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
    });
    s.connect();
    g_kind10_seen = 0;
    s.loop.run_here(
        [&] { s.client->send_message(Kind{10}, 7, "part", as_bytes("payload"), false); });
    EXPECT_EQ(g_kind10_seen, 1);
    EXPECT_EQ(g_kind10_payload, "payload");
    EXPECT_TRUE(s.server->is_open());
}

TEST(Session, AHandshakeThatNeverCompletesTimesOut) {
    Session s({}, false);
    s.server_host->handshake_timeout = 5s;
    auto [server_end, silent_peer] = make_memory_pair(s.loop, s.loop);
    auto server = s.accept(std::move(server_end));  // the peer never says hello
    s.loop.advance(4750ms);
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::handshake_timeout), 0u);
    EXPECT_EQ(s.server_host->admission.handshakes(), 1u);
    s.loop.advance(500ms);
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::handshake_timeout), 1u);
    EXPECT_EQ(s.server_host->admission.handshakes(), 0u);  // its slot is free again
}

// A server with a handshake rate: past it, handshakes wait their turn in arrival order and each
// completes; none is refused.
TEST(Session, HandshakesPastTheServersRateWaitTheirTurn) {
    Session s({}, false);
    s.server_host->set_handshake_rate(4);  // one loop: 4 a second, a bucket of one
    std::vector<std::pair<std::shared_ptr<Conn>, std::shared_ptr<Conn>>> pairs;
    for (int i = 0; i < 8; ++i) pairs.push_back(s.another());
    auto open = [&] {
        std::vector<int> which;
        for (int i = 0; i < 8; ++i)
            if (pairs[std::size_t(i)].first->is_open()) which.push_back(i);
        return which;
    };
    EXPECT_EQ(open(), std::vector<int>({0}));  // the bucket's one
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 7u);
    s.loop.advance(250ms);
    EXPECT_EQ(open(), std::vector<int>({0, 1}));
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 6u);
    s.loop.advance(500ms);
    EXPECT_EQ(open(), std::vector<int>({0, 1, 2, 3}));
    s.loop.advance(1s);
    EXPECT_EQ(open().size(), 8u);
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 0u);
    for (auto& [server, client] : pairs) EXPECT_TRUE(client->is_open());
    for (const auto& closed : s.server_host->counters.closed) EXPECT_EQ(closed.load(), 0u);
    s.loop.run_here([&] {
        for (auto& [server, client] : pairs) client->close(CloseReason::local_close);
    });
}

// Four handshakes at one a second (the first goes, the rest wait), then a reload sets
// `new_rate`: after `after`, every one is open.
void RateChangedWhileHandshakesWait(double new_rate, Clock::duration after) {
    Session s({}, false);
    s.server_host->set_handshake_rate(1);
    std::vector<std::pair<std::shared_ptr<Conn>, std::shared_ptr<Conn>>> pairs;
    for (int i = 0; i < 4; ++i) pairs.push_back(s.another());
    EXPECT_TRUE(pairs[0].first->is_open());
    EXPECT_FALSE(pairs[1].first->is_open());
    s.server_host->update_handshake_rate(new_rate);  // from this thread: each loop takes it
    s.loop.advance(after);
    for (auto& [server, client] : pairs) EXPECT_TRUE(server->is_open() && client->is_open());
    s.loop.run_here([&] {
        for (auto& [server, client] : pairs) client->close(CloseReason::local_close);
    });
}

// A reload that lifts the pace lets what waits go at once.
TEST(Session, APaceLiftedWhileHandshakesWaitLetsThemGo) {
    RateChangedWhileHandshakesWait(0, 1ms);
}

// A reload that raises the pace applies it to what waits: the old rate's wake-up (a second
// away) is replaced by the new one's (a bucket of 10).
TEST(Session, APaceRaisedWhileHandshakesWaitAppliesToThem) {
    RateChangedWhileHandshakesWait(1000, 10ms);
}

// A handshake that times out while it waits takes no turn from the ones behind it; one that
// waits longer than the handshake timeout is closed for it.
TEST(Session, AHandshakeClosedWhileItWaitsTakesNoTurn) {
    Session s({}, false);
    s.server_host->handshake_timeout = 2500ms;
    s.server_host->set_handshake_rate(1);
    std::vector<std::pair<std::shared_ptr<Conn>, std::shared_ptr<Conn>>> pairs;
    for (int i = 0; i < 5; ++i) pairs.push_back(s.another());
    EXPECT_TRUE(pairs[0].first->is_open());
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 4u);
    s.loop.run_here([&] { pairs[1].first->close(CloseReason::local_close); });
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 3u);  // queued still, not waiting
    s.loop.advance(1s);  // the turn that #1 would have had goes to #2
    EXPECT_TRUE(pairs[2].first->is_open());
    EXPECT_FALSE(pairs[3].first->is_open());
    s.loop.advance(1s);
    EXPECT_TRUE(pairs[3].first->is_open());
    s.loop.advance(1s);  // #4 waited past 2.5 s
    EXPECT_FALSE(pairs[4].first->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::handshake_timeout), 1u);
    EXPECT_EQ(s.server_host->admission.handshakes(), 0u);
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 0u);
    s.loop.run_here([&] {
        for (auto& [server, client] : pairs) client->close(CloseReason::local_close);
    });
}

// A handshake whose peer went away while it waited (a client's own timeout shorter than the
// wait) is closed when it reaches the head, unread, and its turn goes to the next.
TEST(Session, AHandshakeWhosePeerLeftWhileItWaitedTakesNoTurn) {
    Session s({}, false);
    s.server_host->set_handshake_rate(1);
    std::vector<std::pair<std::shared_ptr<Conn>, std::shared_ptr<Conn>>> pairs;
    for (int i = 0; i < 3; ++i) pairs.push_back(s.another());
    EXPECT_TRUE(pairs[0].first->is_open());
    s.loop.run_here([&] { pairs[1].second->close(CloseReason::handshake_timeout); });
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 2u);
    s.loop.advance(1s);  // the turn that #1 would have had goes to #2
    EXPECT_TRUE(pairs[1].first->is_closed());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::peer_closed), 1u);
    EXPECT_TRUE(pairs[2].first->is_open());
    EXPECT_EQ(s.server_host->stats().handshakes_waiting, 0u);
    EXPECT_EQ(s.server_host->admission.handshakes(), 0u);
    s.loop.run_here([&] {
        for (auto& [server, client] : pairs) client->close(CloseReason::local_close);
    });
}

TEST(Session, BackpressureAcrossATinyPipeLosesNothing) {
    Settings settings;
    settings.pipe_capacity = 4096;  // far below one message: every write waits for the reader
    Session s(settings);
    std::string big(300 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = char('a' + i * 7 % 26);
    auto r = s.call("echo", big, CallOptions{.compress = false});
    s.loop.advance(250ms);
    ASSERT_TRUE(r->has_value());
    ASSERT_TRUE(**r) << (*r)->error().message;
    EXPECT_EQ(***r, big);
}

TEST(Session, PipelinedMessagesShareFramesWhateverTheFrameLimit) {
    // Encrypted frames are Noise messages of up to 65,535 bytes whatever max_frame_bytes says:
    // the limit applies to each message. 20 calls of 300 bytes travel in one 6 KB piece.
    Settings settings;
    settings.limits.max_frame_bytes = 4096;
    Session s(settings);
    std::vector<std::shared_ptr<std::optional<Result<std::string>>>> results;
    s.loop.run_here([&] {
        for (int i = 0; i < 20; ++i) {
            auto out = std::make_shared<std::optional<Result<std::string>>>();
            s.client->start_call(s.client->reserve_call_id(), Kind::call_console, "echo",
                                 std::string(300, char('a' + i)), CallOptions{.compress = false},
                                 [out](Result<std::string> r) { *out = std::move(r); });
            results.push_back(out);
        }
    });
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(results[i]->has_value()) << i;
        ASSERT_TRUE(**results[i]) << (*results[i])->error().message;
        EXPECT_EQ(***results[i], std::string(300, char('a' + i)));
    }
    // A message of exactly the limit passes.
    auto header = header_size(21, "echo");
    auto r = s.call("echo", std::string(4096 - header, 'x'), CallOptions{.compress = false});
    ASSERT_TRUE(r->has_value());
    EXPECT_TRUE(**r) << (*r)->error().message;
    EXPECT_TRUE(s.server->is_open());
    // One byte more is refused by the sender itself.
    r = s.call("echo", std::string(4096 - header + 1, 'x'), CallOptions{.compress = false});
    ASSERT_TRUE(r->has_value());
    ASSERT_FALSE(**r);
    EXPECT_EQ((*r)->error().code, Errc::limit_exceeded);
    EXPECT_TRUE(s.server->is_open());
}

TEST(Session, AHandshakeEndingAfterShutdownClosedTheGateIsRefusedUnannounced) {
    Session s({}, false);
    int connects = 0, disconnects = 0;
    s.server_host->hooks.on_connect = [&](const Connection&) { ++connects; };
    s.server_host->hooks.on_disconnect = [&](const Connection&, CloseReason) { ++disconnects; };
    s.server_host->connections.close();  // shutdown has begun
    s.connect();
    s.loop.advance(1s);
    EXPECT_FALSE(s.server->is_open());
    EXPECT_EQ(s.closed(*s.server_host, CloseReason::shutdown), 1u);
    EXPECT_EQ(s.server_host->count(), 0u);  // never registered
    EXPECT_EQ(connects, 0);
    EXPECT_EQ(disconnects, 0);
    // Shutdown has nothing of it to wait for.
    EXPECT_TRUE(s.server_host->connections.wait_until(Clock::now()));
    // The client learned why.
    EXPECT_FALSE(s.client->is_open());
    EXPECT_EQ(s.closed(*s.client_host, CloseReason::shutdown), 1u);
}

TEST(Session, ABigMessageIsWrittenWhileItIsBeingSealed) {
    Settings settings;
    settings.pipe_capacity = 256 * 1024;  // room for one slice until the peer reads
    Session s(settings);
    std::string big(4u << 20, '\0');
    std::uint32_t x = 7;
    for (auto& c : big) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
    std::shared_ptr<std::optional<Result<std::string>>> before, whole, after;
    std::uint64_t queued_at_most = 0, held_at_most = 0;
    s.loop.run_here([&] {
        auto call = [&](std::string payload) {
            auto out = std::make_shared<std::optional<Result<std::string>>>();
            s.client->start_call(s.client->reserve_call_id(), Kind::call_console, "echo",
                                 std::move(payload), CallOptions{.compress = false},
                                 [out](Result<std::string> r) { *out = std::move(r); });
            return out;
        };
        before = call("before");
        whole = call(big);
        // The first slice went to the transport as soon as it was sealed: the queue never
        // held the whole message.
        queued_at_most = s.client_host->loop_counters(0).send_queue_bytes.load();
        held_at_most = s.client_host->loop_counters(0).send_buffer_bytes.load();
        after = call("after");
    });
    EXPECT_LT(queued_at_most, big.size() - 200 * 1024);
    // The rest waits in slices of their own, not in one buffer grown by copying.
    EXPECT_LE(held_at_most, queued_at_most + queued_at_most / 10);
    s.loop.advance(250ms);
    for (auto* r : {&before, &whole, &after}) {
        ASSERT_TRUE((*r)->has_value());
        ASSERT_TRUE(***r) << (**r)->error().message;
    }
    EXPECT_EQ(***before, "before");
    EXPECT_EQ(***whole, big);
    EXPECT_EQ(***after, "after");
}

// Two loops, run one at a time: the client's stream data (and end), then a call, are in the
// pipe before the server reads. The server's "bulk" handler reads all it is sent and gives the
// verdict; its "mark" command notes what the server had not hashed yet when the call came.
class BulkBehindCall {
  public:
    explicit BulkBehindCall(std::uint32_t window) : s(settings(window), false) {
        s.server_host->commands.console("mark", [this](const Request&, std::string_view) {
            unhashed_at_call = s.server->streams().unhashed_bytes();
            end_read_at_call = last_read.has_value();
            return std::string("marked");
        });
        s.server_host->commands.stream("bulk", [this](const Request&, IncomingStream in) {
            source = in.accept().value();
            read_on();
        });
        s.connect();
    }

    // Opens the stream, lets the client send what the first window allows, then the call,
    // and runs the server once: one read, then its hash turns.
    void run(const std::string& content) {
        s.client_loop.run_here([&] {
            StreamTable::Outgoing out;
            out.name = "bulk";
            out.options.size = content.size();
            out.feed = std::make_shared<MemoryFeed>(content);
            out.done = [this](Result<void> r) { verdict = r; };
            ASSERT_TRUE(s.client->streams().open(std::move(out)));
        });
        s.loop.run_here([] {});         // the server accepts: the first window goes back
        s.client_loop.run_here([] {});  // a window of data goes out, and no more
        marked = s.call("mark", "");    // behind it
        s.loop.run_here([] {});
    }

    void finish() {
        for (int round = 0; round < 64 && !verdict; ++round) s.pump();
    }

    std::size_t unhashed_at_call = 0;
    bool end_read_at_call = false;
    std::string received;
    std::optional<Result<std::string>> last_read;  // the end, or why not
    std::optional<Result<void>> verdict;           // the sender's
    std::shared_ptr<std::optional<Result<std::string>>> marked;

  private:
    static Settings settings(std::uint32_t window) {
        Settings settings;
        settings.client_loop = true;
        settings.limits.stream_window_bytes = window;
        return settings;
    }
    void read_on() {
        source.read([this](Result<std::string> r) {
            if (r && !r->empty()) {
                received += *r;
                return read_on();
            }
            last_read = std::move(r);
            if (*last_read) source.finish();  // the verdict
        });
    }

    StreamSource source;

  public:
    Session s;  // last: it goes first, with the callbacks that use the members above
};

std::string patterned(std::size_t size) {
    std::string content(size, 0);
    for (std::size_t i = 0; i < size; ++i) content[i] = char(i * 131 % 251);
    return content;
}

TEST(Session, ACallBehindStreamDataIsAnsweredBeforeThatDataIsHashed) {
    // The receiver decrypts and buffers stream data as it reads it and hashes it in background
    // turns afterwards: a call that came in the same read behind a window of it goes first.
    BulkBehindCall t(64 * 1024);
    auto content = patterned(256 * 1024);  // four windows
    t.run(content);
    EXPECT_EQ(t.unhashed_at_call, 64u * 1024);
    EXPECT_EQ(t.s.server->streams().unhashed_bytes(), 0u);
    EXPECT_EQ(t.received.size(), 64u * 1024);  // hashed, then read
    t.finish();
    ASSERT_TRUE(t.marked->has_value() && **t.marked);
    EXPECT_EQ(***t.marked, "marked");
    ASSERT_TRUE(t.verdict.has_value());
    EXPECT_TRUE(*t.verdict) << t.verdict->error().message;
    EXPECT_EQ(t.received, content);
    ASSERT_TRUE(t.last_read.has_value());
    EXPECT_TRUE(*t.last_read);  // the end, its hash checked
}

TEST(Session, TheEndsHashCheckWaitsForTheHashTurnsNotTheCallBehindIt) {
    // The whole content and its end fit in the window: the end's check waits for the hash
    // turns too, so the call behind it is answered before any of it is hashed.
    BulkBehindCall t(64 * 1024);
    auto content = patterned(48 * 1024);
    t.run(content);
    EXPECT_EQ(t.unhashed_at_call, 48u * 1024);
    EXPECT_FALSE(t.end_read_at_call);
    t.finish();
    ASSERT_TRUE(t.marked->has_value() && **t.marked);
    ASSERT_TRUE(t.verdict.has_value());
    EXPECT_TRUE(*t.verdict) << t.verdict->error().message;
    EXPECT_EQ(t.received, content);
    ASSERT_TRUE(t.last_read.has_value());
    EXPECT_TRUE(*t.last_read);
}

}  // namespace
}  // namespace hawser::detail
