// Server push: the server calls a command that the client serves, on the same connection.
#include <cstdio>
#include <future>

#include "hawser/hawser.hpp"

using namespace hawser;

int main() {
    ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.data_dir = "";  // this demo keeps its server key in memory
    Server server(so);
    std::promise<ConnectionId> joined;
    server.on_connect([&](const Connection& c) { joined.set_value(c.id()); });
    server.start().value();

    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();  // pin the server's key
    Client client(co);
    client.commands().console(
        "whoami", [](const Request&, std::string_view) { return std::string("client-7"); });
    client.commands().direct_console("notify", [](const Request&, std::string_view text) {
        std::printf("client notified: %.*s\n", int(text.size()), text.data());
    });
    client.connect().value();

    auto id = joined.get_future().get();
    auto conn = server.find(id).value();
    std::printf("the client says it is %s\n", conn.call("whoami", "", use_wait).value().c_str());
    (void)conn.send("notify", "you have mail");
    conn.call("whoami", "", use_wait).value();  // the notify arrived before this reply
    return 0;
}
