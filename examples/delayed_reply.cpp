// Delayed reply: a handler keeps the Responder and answers later from another thread, while the
// connection keeps serving other calls (ZServer4D's PauseResultSend/ContinueResultSend).
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "hawser/hawser.hpp"

using namespace hawser;

int main() {
    ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.data_dir = "";  // this demo keeps its server key in memory
    Server server(so);
    std::vector<std::thread> jobs;
    server.commands().console(
        "slow", [&](const Request&, std::string job, Responder<std::string> reply) {
            jobs.emplace_back([job, reply] {
                std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a slow back end
                reply.reply("done: " + job);
            });
        });
    server.commands().console("fast",
                              [](const Request&, std::string_view) { return std::string("fast"); });
    server.start().value();

    ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();  // pin the server's key
    Client client(co);
    client.connect().value();
    auto conn = client.connection();
    std::promise<void> slow_done;
    conn.call("slow", "report", [&](Result<std::string> r) {
        std::printf("%s\n", r.value().c_str());
        slow_done.set_value();
    });
    std::printf("%s (answered while 'slow' waits)\n",
                conn.call("fast", "", use_wait).value().c_str());
    slow_done.get_future().wait();
    for (auto& j : jobs) j.join();
    return 0;
}
