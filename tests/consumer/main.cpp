// Built against an installed Hawser: a server and a client that exchange one call.
#include <hawser/hawser.hpp>

int main() {
    hawser::ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.data_dir = "";  // this demo keeps its server key in memory
    hawser::Server server(so);
    server.commands().console(
        "ping", [](const hawser::Request&, std::string_view) { return std::string("pong"); });
    if (!server.start()) return 1;
    hawser::ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();  // pin the server's key
    hawser::Client client(co);
    if (!client.connect()) return 2;
    auto r = client.connection().wait_console("ping", "");
    return r && *r == "pong" ? 0 : 3;
}
