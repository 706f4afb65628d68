// Chat: clients say things, the server broadcasts them to every connection.
#include <atomic>
#include <cstdio>
#include <latch>
#include <memory>

#include "hawser/hawser.hpp"

using namespace hawser;

int main() {
    ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.data_dir = "";  // this demo keeps its server key in memory
    Server server(so);
    server.commands().console("say", [&](const Request& req, std::string_view text) {
        (void)server.broadcast(
            "heard", "#" + std::to_string(req.connection().id()) + ": " + std::string(text));
        return std::string("sent");
    });
    server.start().value();

    constexpr int members = 3;
    std::latch heard(members);
    Runtime runtime;  // the three clients share one IO thread
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < members; ++i) {
        ClientOptions co;
        co.endpoints = {"127.0.0.1:" + std::to_string(server.ports()[0])};
        co.server_public_key = server.public_key();  // pin the server's key
        auto c = std::make_unique<Client>(runtime, co);
        c->commands().direct_console("heard", [i, &heard](const Request&, std::string_view line) {
            std::printf("member %d heard %.*s\n", i, int(line.size()), line.data());
            heard.count_down();
        });
        c->connect().value();
        clients.push_back(std::move(c));
    }
    clients[0]->connection().call("say", "hi all", use_wait).value();
    heard.wait();
    return 0;
}
