// ClientGroup: many client connections on one Runtime, from several source addresses, calling
// and called; errors at open; closing and destruction.
#include <array>
#include <atomic>
#include <set>

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

struct Opened {
    std::vector<Connection> conns;
    std::vector<std::string> errors;
};

// Opens `n` connections and waits for every result.
Opened open_many(ClientGroup& group, std::size_t n, const std::vector<std::string>& sources = {}) {
    struct Shared {  // outlives a failed wait: callbacks may still come
        std::mutex mu;
        Opened out;
        std::atomic<std::size_t> finished{0};
    };
    auto shared = std::make_shared<Shared>();
    for (std::size_t i = 0; i < n; ++i) {
        GroupOpenOptions o;
        if (!sources.empty()) o.source_address = sources[i % sources.size()];
        group.open(
            [shared](Result<Connection> r) {
                {
                    std::lock_guard l(shared->mu);
                    if (r)
                        shared->out.conns.push_back(*r);
                    else
                        shared->out.errors.push_back(r.error().message);
                }
                shared->finished.fetch_add(1);
            },
            o);
    }
    EXPECT_TRUE(eventually([&] { return shared->finished.load() == n; }, 30s));
    std::lock_guard l(shared->mu);
    return shared->out;
}

Result<Connection> open_one(ClientGroup& group, GroupOpenOptions o = {}) {
    Slot<Result<Connection>> slot;
    group.open([&](Result<Connection> r) { slot.set(std::move(r)); }, o);
    return slot.get(20s);
}

}  // namespace

TEST(ClientGroup, ManyConnectionsFromSeveralSourcesCallAndAreCalled) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();

    Runtime runtime({.io_threads = 2, .worker_threads = 1});
    ClientGroup group(runtime, client_for(server));
    std::atomic<int> notes{0}, connects{0};
    group.commands().direct_console("note", [&](const Request&, std::string_view text) {
        if (text == "to everyone") notes.fetch_add(1);
    });
    group.on_connect([&](const Connection&) { connects.fetch_add(1); });

    constexpr std::size_t n = 300;
    auto opened = open_many(group, n, {"127.0.0.2", "127.0.0.3"});
    ASSERT_TRUE(opened.errors.empty()) << opened.errors.front();
    ASSERT_EQ(opened.conns.size(), n);
    EXPECT_EQ(group.size(), n);
    EXPECT_EQ(group.opening(), 0u);
    EXPECT_EQ(connects.load(), int(n));
    ASSERT_TRUE(eventually([&] { return server.connection_count() == n; }));

    // The server saw both source addresses, half each.
    std::mutex mu;  // for_each visits each IO thread's connections on that thread
    std::map<std::string, int> by_source;
    server.for_each([&](const Connection& c) {
        auto a = c.remote_address();
        std::lock_guard l(mu);
        by_source[a.substr(0, a.rfind(':'))]++;
    });
    EXPECT_EQ(by_source["127.0.0.2"], int(n / 2));
    EXPECT_EQ(by_source["127.0.0.3"], int(n / 2));

    // A call on every connection, then a push from the server to all of them.
    std::atomic<std::size_t> replies{0};
    for (auto& c : opened.conns)
        c.call("echo", "hi", [&](Result<std::string> r) {
            if (r && *r == "hi") replies.fetch_add(1);
        });
    ASSERT_TRUE(eventually([&] { return replies.load() == n; }));
    server.broadcast("note", "to everyone").value();
    ASSERT_TRUE(eventually([&] { return notes.load() == int(n); }));
    EXPECT_EQ(group.stats().calls_out, n);
}

TEST(ClientGroup, OpenFailsWithAClearError) {
    Server server(loopback_server(1));
    server.start().value();
    Runtime runtime({.io_threads = 1, .worker_threads = 1});

    auto no_key = client_for(server);
    no_key.server_public_key.clear();
    ClientGroup unpinned(runtime, no_key);
    auto r = open_one(unpinned);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find("server_public_key"), std::string::npos);

    auto tofu = client_for(server);
    tofu.trust_on_first_use = true;
    ClientGroup trusting(runtime, tofu);
    EXPECT_EQ(open_one(trusting).error().code, Errc::invalid_argument);

    ClientGroup good(runtime, client_for(server));
    EXPECT_EQ(open_one(good, {.source_address = "not-an-ip"}).error().code, Errc::invalid_argument);
    EXPECT_EQ(open_one(good, {.endpoint = 1}).error().code, Errc::invalid_argument);

    // Another server's key: the handshake fails.
    Server other(loopback_server(1));
    other.start().value();
    auto wrong = client_for(server);
    wrong.server_public_key = other.public_key();
    ClientGroup mistaken(runtime, wrong);
    auto h = open_one(mistaken);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, Errc::not_connected);
    EXPECT_NE(h.error().message.find("handshake"), std::string::npos);

    // Nobody listening.
    auto closed_port = client_for(other);
    other.shutdown();
    ClientGroup refused(runtime, closed_port);
    auto c = open_one(refused);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::not_connected);
    EXPECT_NE(c.error().message.find("connect to 127.0.0.1"), std::string::npos);
    EXPECT_EQ(refused.stats().closed(CloseReason::connect_failed), 1u);
}

TEST(ClientGroup, CloseAllThenOpenAgain) {
    Server server(loopback_server());
    echo_commands(server.commands());
    server.start().value();
    Runtime runtime({.io_threads = 2, .worker_threads = 1});
    ClientGroup group(runtime, client_for(server));
    std::atomic<int> disconnects{0};
    group.on_disconnect([&](const Connection&, CloseReason why) {
        if (why == CloseReason::local_close) disconnects.fetch_add(1);
    });
    ASSERT_TRUE(open_many(group, 50).errors.empty());
    group.close_all();
    // The registry lets a connection go just before its on_disconnect runs.
    ASSERT_TRUE(eventually([&] {
        return group.size() == 0 && server.connection_count() == 0 && disconnects.load() == 50;
    }));
    auto again = open_one(group);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->call("echo", "back", use_wait).value(), "back");
}

TEST(ClientGroup, DestroyingTheGroupClosesItsConnectionsAndRunsNoCallbackAfter) {
    Server server(loopback_server());
    server.start().value();
    Runtime runtime({.io_threads = 2, .worker_threads = 1});
    auto late = std::make_shared<std::atomic<int>>(0);
    auto answered = std::make_shared<std::atomic<int>>(0);
    {
        auto alive = std::make_shared<std::atomic<bool>>(true);
        // `alive` turns false once the group's destructor has returned (destroyed after it).
        struct Flip {
            std::shared_ptr<std::atomic<bool>> a;
            ~Flip() { a->store(false); }
        } flip{alive};
        ClientGroup group(runtime, client_for(server));
        group.on_disconnect([alive, late](const Connection&, CloseReason) {
            if (!alive->load()) late->fetch_add(1);
        });
        ASSERT_TRUE(open_many(group, 40).errors.empty());
        // Opens still under way when the group goes: each callback runs once, before it is gone.
        for (int i = 0; i < 40; ++i)
            group.open([alive, late, answered](Result<Connection> r) {
                if (!alive->load()) late->fetch_add(1);
                if (r || r.error().code == Errc::cancelled) answered->fetch_add(1);
            });
    }
    EXPECT_EQ(answered->load(), 40);
    EXPECT_TRUE(eventually([&] { return server.connection_count() == 0; }));
    EXPECT_EQ(late->load(), 0);
}

TEST(ClientGroup, CloseAllFailsTheOpensUnderWay) {
    Server server(loopback_server());
    server.start().value();
    Runtime runtime({.io_threads = 2, .worker_threads = 1});
    ClientGroup group(runtime, client_for(server));
    auto outcomes = std::make_shared<std::array<std::atomic<int>, 2>>();  // opened, cancelled
    for (int i = 0; i < 200; ++i)
        group.open([outcomes](Result<Connection> r) {
            if (r)
                (*outcomes)[0].fetch_add(1);
            else if (r.error().code == Errc::cancelled)
                (*outcomes)[1].fetch_add(1);
        });
    group.close_all();  // most of them are still posted, connecting or in their handshake
    ASSERT_TRUE(eventually([&] { return (*outcomes)[0] + (*outcomes)[1] == 200; }));
    EXPECT_GT((*outcomes)[1].load(), 0);
    EXPECT_EQ(group.opening(), 0u);
    // Nothing opened after close_all stays open: those that made it before are closed too.
    ASSERT_TRUE(eventually([&] { return group.size() == 0 && server.connection_count() == 0; }));
}
