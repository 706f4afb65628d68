// Calls of every kind, in both directions, over real loopback connections.
#include <sys/socket.h>
#include <array>
#include <atomic>
#include <future>
#include <latch>
#include <random>
#include <set>

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

TEST(Calls, ConsoleAndDataFrameFromClientToServer) {
    Fixture f([](Commands& c) { echo_commands(c); });
    EXPECT_EQ(f.to_server.call("echo", "hi", use_wait).value(), "hi");
    DataFrame df;
    df << "x" << 1 << 2.5;
    auto r = f.to_server.call("echo.frame", df, use_wait).value();
    EXPECT_EQ(r.get<std::string>(), "x");
    EXPECT_EQ(r.get<int>(), 1);
    EXPECT_EQ(r.get<double>(), 2.5);
}

TEST(Calls, ConsoleAndDataFrameFromServerToClient) {
    Fixture f({}, [](Commands& c) { echo_commands(c); });
    EXPECT_EQ(f.to_client.call("echo", "push", use_wait).value(), "push");
    DataFrame df;
    df << std::vector<std::int64_t>{1, 2, 3};
    EXPECT_EQ(f.to_client.call("echo.frame", df, use_wait).value().get<std::vector<std::int64_t>>(),
              (std::vector<std::int64_t>{1, 2, 3}));
}

TEST(Calls, DirectCommandsBothWaysArriveInOrder) {
    std::mutex mu;
    std::vector<std::string> at_server, at_client;
    Slot<bool> server_done, client_done;
    Fixture f(
        [&](Commands& c) {
            c.direct_console("note", [&](const Request&, std::string_view s) {
                std::lock_guard l(mu);
                at_server.emplace_back(s);
                if (at_server.size() == 100) server_done.set(true);
            });
        },
        [&](Commands& c) {
            c.direct_dataframe("note.frame", [&](const Request&, DataFrame& in) {
                std::lock_guard l(mu);
                at_client.push_back(in.get<std::string>());
                if (at_client.size() == 100) client_done.set(true);
            });
        });
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(f.to_server.send("note", std::to_string(i)));
        DataFrame df;
        df << std::to_string(i);
        ASSERT_TRUE(f.to_client.send("note.frame", df));
    }
    server_done.get();
    client_done.get();
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(at_server[i], std::to_string(i));
        EXPECT_EQ(at_client[i], std::to_string(i));
    }
}

TEST(Calls, ManyInFlightRepliesMatchedInAnyOrder) {
    // The server holds every reply, then answers in a shuffled order.
    constexpr int n = 500;
    std::mutex mu;
    std::vector<std::pair<std::string, Responder<std::string>>> held;
    Fixture f([&](Commands& c) {
        c.console("later", [&](const Request&, std::string arg, Responder<std::string> r) {
            std::lock_guard l(mu);
            held.emplace_back(std::move(arg), std::move(r));
        });
    });
    std::atomic<int> ok{0};
    std::latch done(n);
    for (int i = 0; i < n; ++i) {
        f.to_server.call("later", std::to_string(i), [&, i](Result<std::string> r) {
            if (r && *r == "re:" + std::to_string(i)) ++ok;
            done.count_down();
        });
    }
    ASSERT_TRUE(eventually([&] {
        std::lock_guard l(mu);
        return held.size() == n;
    }));
    std::shuffle(held.begin(), held.end(), std::mt19937(7));
    for (auto& [arg, r] : held) r.reply("re:" + arg);
    done.wait();
    EXPECT_EQ(ok.load(), n);
}

TEST(Calls, UnknownCommandWrongKindAndThrowingHandlerAreTypedErrors) {
    Fixture f([](Commands& c) {
        echo_commands(c);
        c.console("throws", [](const Request&, std::string_view) -> std::string {
            throw std::runtime_error("kaput");
        });
        c.dataframe("bad.read", [](const Request&, DataFrame& in) {
            in.get<std::string>();  // the caller sends a number
            return DataFrame{};
        });
    });
    auto unknown = f.to_server.call("nope", "", use_wait);
    EXPECT_EQ(unknown.error().code, Errc::unknown_command);
    EXPECT_NE(unknown.error().message.find("nope"), std::string::npos);
    EXPECT_EQ(f.to_server.call("echo", DataFrame{}, use_wait).error().code, Errc::wrong_kind);
    auto thrown = f.to_server.call("throws", "", use_wait);
    EXPECT_EQ(thrown.error().code, Errc::handler_error);
    EXPECT_NE(thrown.error().message.find("error id"), std::string::npos);
    DataFrame number;
    number << 5;
    EXPECT_EQ(f.to_server.call("bad.read", number, use_wait).error().code, Errc::handler_error);
    // The connection survives all of it.
    EXPECT_EQ(f.to_server.call("echo", "still here", use_wait).value(), "still here");
    auto stats = f.server->stats();
    auto it = std::find_if(stats.commands.begin(), stats.commands.end(),
                           [](auto& c) { return c.name == "throws"; });
    ASSERT_NE(it, stats.commands.end());
    EXPECT_EQ(it->calls, 1u);
    EXPECT_EQ(it->errors, 1u);
}

TEST(Calls, DeadlineExpiresAndTheLateReplyIsCounted) {
    Slot<Responder<std::string>> held;
    Fixture f([&](Commands& c) {
        c.console("stall",
                  [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
    });
    auto r = f.to_server.call("stall", "", use_wait, CallOptions{200ms});
    EXPECT_EQ(r.error().code, Errc::timeout);
    held.get().reply("too late");
    EXPECT_TRUE(eventually([&] { return f.client->stats().late_replies == 1; }));
}

TEST(Calls, DefaultDeadlineComesFromOptions) {
    Slot<Responder<std::string>> held;
    Fixture f(
        [&](Commands& c) {
            c.console("stall",
                      [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
        },
        {}, loopback_server(), [](ClientOptions& o) { o.timeouts.call = 150ms; });
    EXPECT_EQ(f.to_server.call("stall", "", use_wait).error().code, Errc::timeout);
}

TEST(Calls, CancelCompletesOnceWithCancelled) {
    Slot<Responder<std::string>> held;
    Fixture f([&](Commands& c) {
        c.console("stall",
                  [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
    });
    std::atomic<int> completions{0};
    Slot<Errc> code;
    auto handle = f.to_server.call("stall", "", [&](Result<std::string> r) {
        ++completions;
        code.set(r ? Errc::ok : r.error().code);
    });
    held.get();
    handle.cancel();
    handle.cancel();
    EXPECT_EQ(code.get(), Errc::cancelled);
    held.get().reply("ignored");
    EXPECT_TRUE(eventually([&] { return f.client->stats().late_replies == 1; }));
    EXPECT_EQ(completions.load(), 1);
}

// A handle cancelled on the connection's IO thread before its call has started there: the
// call was started from another thread, so its start waits in the loop's queue; the cancel
// must come after it, not be lost before it.
TEST(Calls, CancelOnTheLoopBeforeAPostedStartStillCancels) {
    Slot<Responder<std::string>> held;
    Fixture f([&](Commands& c) {
        echo_commands(c);
        c.console("stall",
                  [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
    });
    std::promise<CallHandle> second_handle;
    auto handle = second_handle.get_future();
    Slot<bool> loop_held;
    // The first call's callback holds the IO thread until the second call's handle is known,
    // then cancels it there, ahead of the second call's posted start.
    f.to_server.call("echo", "first", [&](Result<std::string>) {
        loop_held.set(true);
        handle.get().cancel();
    });
    loop_held.get();
    Slot<Errc> code;
    second_handle.set_value(f.to_server.call(
        "stall", "", [&](Result<std::string> r) { code.set(r ? Errc::ok : r.error().code); }));
    EXPECT_EQ(code.get(), Errc::cancelled);
    held.get().reply("");  // the server's handler ends: its shutdown need not wait for it
}

TEST(Calls, DisconnectMidCallCompletesEveryPendingCallOnce) {
    HeldReplies held;
    Fixture f([&](Commands& c) { c.console("stall", held.handler()); });
    constexpr int n = 50;
    std::atomic<int> disconnected{0}, other{0};
    std::latch done(n);
    for (int i = 0; i < n; ++i)
        f.to_server.call("stall", "", [&](Result<std::string> r) {
            (r.ok() ? other : (r.error().code == Errc::disconnected ? disconnected : other))++;
            done.count_down();
        });
    ASSERT_TRUE(eventually([&] { return held.size() == n; }));
    f.to_client.close();  // the server hangs up
    done.wait();
    EXPECT_EQ(disconnected.load(), n);
    EXPECT_EQ(other.load(), 0);
    held.reply_all("x");  // replies to a closed connection go nowhere, harmlessly
}

TEST(Calls, CoroutineHandlerCallsBackIntoTheClient) {
    // The server's handler is a coroutine that asks the client something before answering.
    Fixture f(
        [](Commands& c) {
            c.console("greet", [](Request req, std::string) -> Task<std::string> {
                auto name = co_await req.connection().call("name", "");
                co_return "hello, " + name.value();
            });
        },
        [](Commands& c) {
            c.console("name", [](const Request&, std::string_view) { return std::string("ada"); });
        });
    EXPECT_EQ(f.to_server.call("greet", "", use_wait).value(), "hello, ada");
}

TEST(Calls, CoroutineClientStyle) {
    Fixture f([](Commands& c) { echo_commands(c); });
    Slot<std::string> out;
    spawn([](Connection conn, Slot<std::string>& out) -> Task<void> {
        auto a = co_await conn.call("echo", "a");
        DataFrame df;
        df << "b";
        auto b = co_await conn.call("echo.frame", df);
        out.set(a.value() + b.value().get<std::string>());
    }(f.to_server, out));
    EXPECT_EQ(out.get(), "ab");
}

TEST(Calls, WorkerHandlersRunOffTheIOThreads) {
    Fixture f([](Commands& c) {
        c.console(
            "where",
            [](const Request&, std::string_view) {
                return std::string(Runtime::on_io_thread() ? "io" : "worker");
            },
            CommandOptions{.on_worker = true});
        c.console("where.io", [](const Request&, std::string_view) {
            return std::string(Runtime::on_io_thread() ? "io" : "worker");
        });
    });
    EXPECT_EQ(f.to_server.call("where", "", use_wait).value(), "worker");
    EXPECT_EQ(f.to_server.call("where.io", "", use_wait).value(), "io");
}

TEST(Calls, BlockingCallOnAnIOThreadFailsInsteadOfDeadlocking) {
    Fixture f([](Commands& c) {
        echo_commands(c);
        c.console("nested", [](const Request& req, std::string_view) {
            auto r = req.connection().call("anything", "", use_wait);
            return std::string(to_string(r.error().code));
        });
    });
    EXPECT_EQ(f.to_server.call("nested", "", use_wait).value(), "would_deadlock");
}

TEST(Calls, DroppedResponderRepliesHandlerError) {
    Fixture f([](Commands& c) {
        c.console("drop", [](const Request&, std::string, Responder<std::string>) {});
    });
    auto r = f.to_server.call("drop", "", use_wait);
    EXPECT_EQ(r.error().code, Errc::handler_error);
}

TEST(Calls, BigPayloadsAndTheFrameLimit) {
    auto so = loopback_server();
    so.limits.max_frame_bytes = 8u << 20;
    Fixture f([](Commands& c) { echo_commands(c); }, {}, so,
              [](ClientOptions& o) { o.limits.max_frame_bytes = 8u << 20; });
    std::string big(6u << 20, 'z');
    big[12345] = 'a';
    EXPECT_EQ(f.to_server.call("echo", big, use_wait).value(), big);
    auto over = f.to_server.call("echo", std::string(9u << 20, 'z'), use_wait);
    EXPECT_EQ(over.error().code, Errc::limit_exceeded);
    EXPECT_EQ(f.to_server.call("echo", "after", use_wait).value(), "after");
}

TEST(Calls, PerConnectionContextSlots) {
    struct Session {
        int calls = 0;
    };
    Fixture f([](Commands& c) {
        c.console("count", [](const Request& req, std::string_view) {
            auto& s = req.connection().context<Session>();
            req.connection().service_context<std::string>() = "service state is separate";
            return std::to_string(++s.calls);
        });
    });
    EXPECT_EQ(f.to_server.call("count", "", use_wait).value(), "1");
    EXPECT_EQ(f.to_server.call("count", "", use_wait).value(), "2");
}

TEST(Calls, StatisticsCountCallsBytesAndTimes) {
    Fixture f([](Commands& c) { echo_commands(c); });
    for (int i = 0; i < 20; ++i) f.to_server.call("echo", "12345", use_wait).value();
    auto s = f.server->stats();
    auto it = std::find_if(s.commands.begin(), s.commands.end(),
                           [](auto& c) { return c.name == "echo"; });
    ASSERT_NE(it, s.commands.end());
    EXPECT_EQ(it->calls, 20u);
    EXPECT_EQ(it->bytes_in, 100u);
    EXPECT_EQ(it->bytes_out, 100u);
    EXPECT_GT(it->max_us, 0.0);
    EXPECT_LE(it->p50_us, it->max_us);
    EXPECT_GE(s.frames_in, 20u);
    EXPECT_EQ(f.client->stats().calls_out, 20u);
}

namespace {

// One message read back from a raw socket: what a peer sees on the wire.
struct WireMessage {
    detail::Kind kind{};
    std::uint8_t flags = 0;
    std::string payload;
};

// Reads from a plaintext raw socket until the message with `id` arrives.
WireMessage read_message(RawSocket& s, std::uint64_t id) {
    detail::FrameDecoder decoder;
    std::optional<WireMessage> found;
    char buf[65536];
    while (!found) {
        pollfd p{s.fd(), POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) throw std::runtime_error("no message");
        auto n = ::recv(s.fd(), buf, sizeof buf, 0);
        if (n <= 0) throw std::runtime_error("closed before the message came");
        decoder.feed(std::span(reinterpret_cast<std::uint8_t*>(buf), std::size_t(n)),
                     detail::FrameConfig{}, [&](std::span<const std::uint8_t> body) {
                         auto m = detail::parse_message(body);
                         if (m && m->id == id)
                             found = WireMessage{m->kind, m->flags,
                                                 std::string(m->payload.begin(), m->payload.end())};
                         return true;
                     });
    }
    return *found;
}

}  // namespace

// Compression before encryption leaks secrets through sizes when a message mixes them with text
// an attacker chose (CRIME/BREACH): each command, call and broadcast can turn it off.
TEST(Calls, CompressionIsAPerCommandChoiceForReplies) {
    Server server(plaintext_server());
    const std::string compressible(64u << 10, 'a');
    server.commands().console("packed",
                              [&](const Request&, std::string_view) { return compressible; });
    server.commands().console(
        "secret", [&](const Request&, std::string_view) { return compressible; },
        CommandOptions{.compress = false});
    server.start().value();
    RawSocket s(server.ports()[0]);
    s.plaintext_hello();
    s.send(encode_message(detail::Kind::call_console, 1, "packed", ""));
    auto packed = read_message(s, 1);
    EXPECT_EQ(packed.kind, detail::Kind::reply);
    EXPECT_NE(packed.flags & detail::flag_compression_mask, 0);
    EXPECT_LT(packed.payload.size(), compressible.size());
    s.send(encode_message(detail::Kind::call_console, 2, "secret", ""));
    auto plain = read_message(s, 2);
    EXPECT_EQ(plain.kind, detail::Kind::reply);
    EXPECT_EQ(plain.flags, 0);
    EXPECT_TRUE(plain.payload == compressible);  // sent as it is
}

TEST(Calls, CompressionIsAPerCallAndPerBroadcastChoice) {
    std::atomic<int> received{0};
    static std::atomic<int> sunk_total{0};
    auto sink_count = [] { return sunk_total.load(); };
    Fixture f(
        [](Commands& c) {
            echo_commands(c);
            c.direct_console("sink", [](const Request&, std::string_view) { ++sunk_total; });
        },
        [&](Commands& c) {
            c.direct_console("news", [&](const Request&, std::string_view) { ++received; });
        });
    const std::string compressible(64u << 10, 'a');
    auto in_before = f.server->stats().bytes_in;
    ASSERT_TRUE(f.to_server.call("echo", compressible, use_wait));
    auto packed_in = f.server->stats().bytes_in - in_before;
    in_before = f.server->stats().bytes_in;
    ASSERT_TRUE(f.to_server.call("echo", compressible, use_wait, CallOptions{.compress = false}));
    auto plain_in = f.server->stats().bytes_in - in_before;
    EXPECT_LT(packed_in, compressible.size() / 4);
    EXPECT_GT(plain_in, compressible.size());

    in_before = f.server->stats().bytes_in;
    ASSERT_TRUE(f.to_server.send("sink", compressible, /*compress=*/false));
    ASSERT_TRUE(eventually([&] { return sink_count() == 1; }));
    EXPECT_GT(f.server->stats().bytes_in - in_before, compressible.size());

    auto out_before = f.server->stats().bytes_out;
    ASSERT_TRUE(f.server->broadcast("news", compressible));
    ASSERT_TRUE(eventually([&] { return received == 1; }));
    EXPECT_LT(f.server->stats().bytes_out - out_before, compressible.size() / 4);
    out_before = f.server->stats().bytes_out;
    ASSERT_TRUE(f.server->broadcast("news", compressible, false));
    ASSERT_TRUE(eventually([&] { return received == 2; }));
    EXPECT_TRUE(
        eventually([&] { return f.server->stats().bytes_out - out_before > compressible.size(); }));
}

// A handler's exception text may hold anything (paths, queries, secrets): the peer gets a code,
// a generic text and an error id; the server's log has the text under that id.
TEST(Calls, HandlerFailuresReachThePeerAsAnErrorIdNotTheirText) {
    auto commands = [](Commands& c) {
        c.console("throws", [](const Request&, std::string_view) -> std::string {
            throw std::runtime_error("secret: hunter2");
        });
        c.console("co.throws", [](Request, std::string) -> Task<std::string> {
            throw std::runtime_error("secret: hunter2");
            co_return "";
        });
        c.console("fails", [](const Request&, std::string, Responder<std::string> r) {
            r.fail(Errc::not_found, "no such user");  // the application's own words
        });
    };
    {
        Fixture f(commands);
        for (const char* name : {"throws", "co.throws"}) {
            auto r = f.to_server.call(name, "", use_wait);
            ASSERT_FALSE(r) << name;
            EXPECT_EQ(r.error().code, Errc::handler_error) << name;
            EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
            EXPECT_NE(r.error().message.find("error id "), std::string::npos) << r.error().message;
        }
        auto failed = f.to_server.call("fails", "", use_wait);
        EXPECT_EQ(failed.error().code, Errc::not_found);
        EXPECT_EQ(failed.error().message, "no such user");
        EXPECT_EQ(f.to_server.call("throws", "", use_wait).error().code, Errc::handler_error);
    }
    {
        auto so = loopback_server();
        so.send_error_details = true;  // development
        Fixture f(commands, {}, so);
        for (const char* name : {"throws", "co.throws"}) {
            auto r = f.to_server.call(name, "", use_wait);
            ASSERT_FALSE(r) << name;
            EXPECT_NE(r.error().message.find("secret: hunter2"), std::string::npos)
                << r.error().message;
            EXPECT_NE(r.error().message.find("error id "), std::string::npos) << r.error().message;
        }
    }
}

// A DataFrame payload over Limits::worker_decode_bytes is decoded on a worker; the handler still
// runs where it asked to.
TEST(Calls, BigDataFramesReachTheirHandlersOnTheRightThread) {
    Fixture f([](Commands& c) {
        auto where = [](const Request&, DataFrame& in) {
            DataFrame out;
            out << (Runtime::on_io_thread() ? "io" : "worker") << in.get<std::string>().size();
            return out;
        };
        c.dataframe("where.io", where);
        c.dataframe("where.worker", where, CommandOptions{.on_worker = true});
    });
    for (std::size_t size : {std::size_t(100), std::size_t(1u << 20)}) {
        DataFrame in;
        in << std::string(size, 'x');
        auto io = f.to_server.call("where.io", in, use_wait).value();
        EXPECT_EQ(io.get<std::string>(), "io");
        EXPECT_EQ(io.get<std::size_t>(), size);
        auto worker = f.to_server.call("where.worker", in, use_wait).value();
        EXPECT_EQ(worker.get<std::string>(), "worker");
        EXPECT_EQ(worker.get<std::size_t>(), size);
    }
}

// Big DataFrames waiting for a worker to decode them are bounded per connection.
TEST(Calls, BytesWaitingForAWorkerDecodeAreBounded) {
    auto so = loopback_server();
    so.worker_threads = 1;
    so.limits.worker_decode_bytes = 1024;
    so.limits.max_worker_decode_bytes = 100u << 10;
    auto started = std::make_shared<Slot<bool>>();
    auto release = std::make_shared<Slot<bool>>();
    Fixture f(
        [&](Commands& c) {
            echo_commands(c);
            c.console(
                "block",
                [started, release](const Request&, std::string_view) {
                    started->set(true);
                    release->get(30s);
                    return std::string("done");
                },
                CommandOptions{.on_worker = true});
        },
        {}, so);
    Slot<Result<std::string>> blocked;
    f.to_server.call("block", "", [&](Result<std::string> r) { blocked.set(r); });
    ASSERT_TRUE(started->get());  // the only worker is busy: decodes wait in its queue
    DataFrame big;
    big << std::string(40u << 10, 'x');
    std::array<Slot<Result<DataFrame>>, 3> out;
    for (auto& slot : out)
        f.to_server.call("echo.frame", big, [&slot](Result<DataFrame> r) { slot.set(r); });
    auto third = out[2].get();
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error().code, Errc::overloaded);
    release->set(true);
    EXPECT_EQ(blocked.get().value(), "done");
    EXPECT_EQ(out[0].get().value(), big);
    EXPECT_EQ(out[1].get().value(), big);
    EXPECT_EQ(f.to_server.call("echo.frame", big, use_wait).value(), big);  // budget released
}

// Each IO thread keeps its own figures (connection counters and every command's); stats()
// must add them up, whichever thread ran the handler or sent the reply.
TEST(Calls, FiguresAddUpOverEveryIOThread) {
    auto so = loopback_server(2);
    Server server(so);
    echo_commands(server.commands());
    server.commands().console(
        "slow", [](const Request&, std::string_view s) { return std::string(s) + "!"; },
        {.on_worker = true});
    server.commands().console("bad", [](const Request&, std::string_view) -> std::string {
        throw std::runtime_error("no");
    });
    std::mutex mu;
    std::vector<Responder<std::string>> waiting;  // answered by the test thread
    server.commands().console("later", [&](const Request&, std::string, Responder<std::string> r) {
        std::lock_guard lock(mu);
        waiting.push_back(std::move(r));
    });
    std::set<std::uint8_t> loops;  // a connection id's low byte is its IO thread
    server.on_connect([&](const Connection& c) {
        std::lock_guard lock(mu);
        loops.insert(std::uint8_t(c.id() & 0xff));
    });
    server.start().value();
    constexpr int clients = 4, calls = 25;
    std::vector<std::unique_ptr<Client>> cs;
    std::uint64_t sent = 0;
    for (int i = 0; i < clients; ++i) {
        cs.push_back(std::make_unique<Client>(client_for(server)));
        cs.back()->connect().value();
        auto conn = cs.back()->connection();
        for (int k = 0; k < calls; ++k) {
            std::string arg(std::size_t(k), 'x');
            sent += arg.size();
            EXPECT_EQ(conn.call("echo", arg, use_wait).value(), arg);
            EXPECT_EQ(conn.call("slow", arg, use_wait).value(), arg + "!");
            auto answered = std::make_shared<std::promise<Result<std::string>>>();
            auto result = answered->get_future();
            conn.call("later", arg, [answered](Result<std::string> r) { answered->set_value(r); });
            ASSERT_TRUE(eventually([&] {
                std::lock_guard lock(mu);
                return !waiting.empty();
            }));
            {
                std::lock_guard lock(mu);
                waiting.back().reply(arg);
                waiting.clear();
            }
            EXPECT_EQ(result.get().value(), arg);
        }
        EXPECT_EQ(conn.call("bad", "", use_wait).error().code, Errc::handler_error);
    }
    {
        std::lock_guard lock(mu);
        EXPECT_EQ(loops, (std::set<std::uint8_t>{0, 1}));  // both IO threads served calls
    }
    auto st = server.stats();
    auto figures = [&](std::string_view name) {
        auto it = std::find_if(st.commands.begin(), st.commands.end(),
                               [&](const CommandStats& c) { return c.name == name; });
        EXPECT_NE(it, st.commands.end()) << name;
        return it == st.commands.end() ? CommandStats{} : *it;
    };
    for (const char* name : {"echo", "slow", "later"}) {
        auto c = figures(name);
        EXPECT_EQ(c.calls, std::uint64_t(clients * calls)) << name;
        EXPECT_EQ(c.latency_count, std::uint64_t(clients * calls)) << name;
        EXPECT_EQ(c.bytes_in, sent) << name;
        EXPECT_EQ(c.errors, 0u) << name;
        EXPECT_GT(c.max_us, 0.0) << name;
    }
    EXPECT_EQ(figures("echo").bytes_out, sent);
    EXPECT_EQ(figures("slow").bytes_out, sent + clients * calls);
    EXPECT_EQ(figures("bad").errors, std::uint64_t(clients));
    // Every byte the clients wrote was read by one IO thread or the other.
    std::uint64_t calls_out = 0;
    for (auto& c : cs) calls_out += c->stats().calls_out;
    EXPECT_EQ(calls_out, std::uint64_t(clients * (3 * calls + 1)));
    ASSERT_TRUE(eventually([&] {
        std::uint64_t written = 0;
        for (auto& c : cs) written += c->stats().bytes_out;
        return server.stats().bytes_in == written;
    }));
    EXPECT_GE(server.stats().frames_in, std::uint64_t(clients));
}

// A handler that takes a Responder and answers before it returns, or answers and then throws:
// the caller gets the answer, once.
TEST(Calls, AResponderAnsweredInsideItsHandlerAnswersOnce) {
    Fixture f([](Commands& c) {
        c.console("now", [](const Request&, std::string s, Responder<std::string> r) {
            r.reply(s + " now");
            r.reply("twice");  // ignored: the first answer wins
        });
        c.console("then.throws", [](const Request&, std::string s, Responder<std::string> r) {
            r.reply(s);
            throw std::runtime_error("after the answer");
        });
        // A coroutine declared with a view gets its own copy, as before (it may outlive a view).
        c.console("co.view", [](Request, std::string_view s) -> Task<std::string> {
            co_return std::string(s) + " co";
        });
        // A generic handler is not given a view: it gets the argument as before.
        c.console("generic", [](const Request&, auto s) { return std::string(s) + "?"; });
    });
    EXPECT_EQ(f.to_server.call("now", "a", use_wait).value(), "a now");
    EXPECT_EQ(f.to_server.call("then.throws", "b", use_wait).value(), "b");
    EXPECT_EQ(f.to_server.call("generic", "c", use_wait).value(), "c?");
    EXPECT_EQ(f.to_server.call("co.view", "e", use_wait).value(), "e co");
    EXPECT_EQ(f.to_server.call("now", "d", use_wait).value(), "d now");  // nothing left behind
}
