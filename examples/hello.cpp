// Hello world: a server and a client in one process, all four kinds of command, each called in
// the three styles (callback, coroutine, blocking).
#include <cstdio>
#include <future>

#include "hawser/hawser.hpp"

using namespace hawser;

Task<std::string> greet_twice(Connection conn) {
    // Coroutine style: co_await a call, then another.
    auto a = co_await conn.call("hello", "coroutine");
    auto b = co_await conn.call("hello", "again");
    co_return a.value() + " / " + b.value();
}

int main() {
    ServerOptions so;
    so.listen = {"127.0.0.1:0"};  // any free port
    so.data_dir = "";             // this demo keeps its server key in memory
    Server server(so);
    server.commands()
        .console("hello",
                 [](const Request&, std::string_view who) { return "hello, " + std::string(who); })
        .dataframe("add",
                   [](const Request&, DataFrame& in) {
                       DataFrame out;
                       out << in.get<std::int64_t>() + in.get<std::int64_t>();
                       return out;
                   })
        .direct_console("note",
                        [](const Request&, std::string_view text) {
                            std::printf("server got note: %.*s\n", int(text.size()), text.data());
                        })
        .direct_dataframe("point", [](const Request&, DataFrame& in) {
            auto x = in.get<double>(), y = in.get<double>();
            std::printf("server got point: %g,%g\n", x, y);
        });
    server.start().value();

    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();  // pin the server's key
    Client client(co);
    client.connect().value();
    Connection conn = client.connection();

    // 1. Blocking.
    std::printf("%s\n", conn.call("hello", "blocking", use_wait).value().c_str());
    DataFrame args;
    args << 40 << 2;
    std::printf("40 + 2 = %lld\n",
                (long long)conn.call("add", args, use_wait).value().get<std::int64_t>());

    // 2. Callback.
    std::promise<void> done;
    conn.call("hello", "callback", [&](Result<std::string> r) {
        std::printf("%s\n", r.value().c_str());
        done.set_value();
    });
    done.get_future().wait();

    // 3. Coroutine.
    std::promise<std::string> result;
    spawn([](Connection c, std::promise<std::string>& out) -> Task<void> {
        out.set_value(co_await greet_twice(c));
    }(conn, result));
    std::printf("%s\n", result.get_future().get().c_str());

    // Direct (one-way) commands.
    (void)conn.send("note", "fire and forget");
    DataFrame point;
    point << 1.5 << -2.0;
    (void)conn.send("point", point);
    conn.call("hello", "flush", use_wait).value();  // replies come in order after the directs
    return 0;
}
