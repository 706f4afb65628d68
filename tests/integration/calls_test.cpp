// Calls of every kind, in both directions, over real loopback connections.
#include <atomic>
#include <latch>
#include <random>
#include <set>

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

TEST(Calls, ConsoleAndStreamFromClientToServer) {
    Fixture f([](Commands& c) { echo_commands(c); });
    EXPECT_EQ(f.to_server.wait_console("echo", "hi").value(), "hi");
    DataFrame df;
    df << "x" << 1 << 2.5;
    auto r = f.to_server.wait_stream("echo.frame", df).value();
    EXPECT_EQ(r.get<std::string>(), "x");
    EXPECT_EQ(r.get<int>(), 1);
    EXPECT_EQ(r.get<double>(), 2.5);
}

TEST(Calls, ConsoleAndStreamFromServerToClient) {
    Fixture f({}, [](Commands& c) { echo_commands(c); });
    EXPECT_EQ(f.to_client.wait_console("echo", "push").value(), "push");
    DataFrame df;
    df << std::vector<std::int64_t>{1, 2, 3};
    EXPECT_EQ(f.to_client.wait_stream("echo.frame", df).value().get<std::vector<std::int64_t>>(),
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
            c.direct_stream("note.frame", [&](const Request&, DataFrame& in) {
                std::lock_guard l(mu);
                at_client.push_back(in.get<std::string>());
                if (at_client.size() == 100) client_done.set(true);
            });
        });
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(f.to_server.send_console("note", std::to_string(i)));
        DataFrame df;
        df << std::to_string(i);
        ASSERT_TRUE(f.to_client.send_stream("note.frame", df));
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
        f.to_server.call_console("later", std::to_string(i), [&, i](Result<std::string> r) {
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
        c.stream("bad.read", [](const Request&, DataFrame& in) {
            in.get<std::string>();  // the caller sends a number
            return DataFrame{};
        });
    });
    auto unknown = f.to_server.wait_console("nope", "");
    EXPECT_EQ(unknown.error().code, Errc::unknown_command);
    EXPECT_NE(unknown.error().message.find("nope"), std::string::npos);
    EXPECT_EQ(f.to_server.wait_stream("echo", DataFrame{}).error().code, Errc::wrong_kind);
    auto thrown = f.to_server.wait_console("throws", "");
    EXPECT_EQ(thrown.error().code, Errc::handler_error);
    EXPECT_EQ(thrown.error().message, "kaput");
    DataFrame number;
    number << 5;
    EXPECT_EQ(f.to_server.wait_stream("bad.read", number).error().code, Errc::handler_error);
    // The connection survives all of it.
    EXPECT_EQ(f.to_server.wait_console("echo", "still here").value(), "still here");
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
    auto r = f.to_server.wait_console("stall", "", CallOptions{200ms});
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
    EXPECT_EQ(f.to_server.wait_console("stall", "").error().code, Errc::timeout);
}

TEST(Calls, CancelCompletesOnceWithCancelled) {
    Slot<Responder<std::string>> held;
    Fixture f([&](Commands& c) {
        c.console("stall",
                  [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
    });
    std::atomic<int> completions{0};
    Slot<Errc> code;
    auto handle = f.to_server.call_console("stall", "", [&](Result<std::string> r) {
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

TEST(Calls, DisconnectMidCallCompletesEveryPendingCallOnce) {
    HeldReplies held;
    Fixture f([&](Commands& c) { c.console("stall", held.handler()); });
    constexpr int n = 50;
    std::atomic<int> disconnected{0}, other{0};
    std::latch done(n);
    for (int i = 0; i < n; ++i)
        f.to_server.call_console("stall", "", [&](Result<std::string> r) {
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
                auto name = co_await req.connection().call_console("name", "");
                co_return "hello, " + name.value();
            });
        },
        [](Commands& c) {
            c.console("name", [](const Request&, std::string_view) { return std::string("ada"); });
        });
    EXPECT_EQ(f.to_server.wait_console("greet", "").value(), "hello, ada");
}

TEST(Calls, CoroutineClientStyle) {
    Fixture f([](Commands& c) { echo_commands(c); });
    Slot<std::string> out;
    spawn([](Connection conn, Slot<std::string>& out) -> Task<void> {
        auto a = co_await conn.call_console("echo", "a");
        DataFrame df;
        df << "b";
        auto b = co_await conn.call_stream("echo.frame", df);
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
    EXPECT_EQ(f.to_server.wait_console("where", "").value(), "worker");
    EXPECT_EQ(f.to_server.wait_console("where.io", "").value(), "io");
}

TEST(Calls, BlockingCallOnAnIOThreadFailsInsteadOfDeadlocking) {
    Fixture f([](Commands& c) {
        echo_commands(c);
        c.console("nested", [](const Request& req, std::string_view) {
            auto r = req.connection().wait_console("anything", "");
            return std::string(to_string(r.error().code));
        });
    });
    EXPECT_EQ(f.to_server.wait_console("nested", "").value(), "would_deadlock");
}

TEST(Calls, DroppedResponderRepliesHandlerError) {
    Fixture f([](Commands& c) {
        c.console("drop", [](const Request&, std::string, Responder<std::string>) {});
    });
    auto r = f.to_server.wait_console("drop", "");
    EXPECT_EQ(r.error().code, Errc::handler_error);
}

TEST(Calls, BigPayloadsAndTheFrameLimit) {
    auto so = loopback_server();
    so.limits.max_frame_bytes = 8u << 20;
    Fixture f([](Commands& c) { echo_commands(c); }, {}, so,
              [](ClientOptions& o) { o.limits.max_frame_bytes = 8u << 20; });
    std::string big(6u << 20, 'z');
    big[12345] = 'a';
    EXPECT_EQ(f.to_server.wait_console("echo", big).value(), big);
    auto over = f.to_server.wait_console("echo", std::string(9u << 20, 'z'));
    EXPECT_EQ(over.error().code, Errc::limit_exceeded);
    EXPECT_EQ(f.to_server.wait_console("echo", "after").value(), "after");
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
    EXPECT_EQ(f.to_server.wait_console("count", "").value(), "1");
    EXPECT_EQ(f.to_server.wait_console("count", "").value(), "2");
}

TEST(Calls, StatisticsCountCallsBytesAndTimes) {
    Fixture f([](Commands& c) { echo_commands(c); });
    for (int i = 0; i < 20; ++i) f.to_server.wait_console("echo", "12345").value();
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
