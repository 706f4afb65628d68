// Talks to a running hawser-server (./scripts/run): the README tour's client.
//   hello_client [host:port [server-public-key]]
// Without the key (hawser-server prints it at start) the client trusts the first server it
// reaches and logs the key it accepted.
#include <cstdio>

#include "hawser/hawser.hpp"

int main(int argc, char** argv) {
    hawser::ClientOptions options;
    options.endpoints = {argc > 1 ? argv[1] : "localhost:7100"};
    if (argc > 2)
        options.server_public_key = argv[2];
    else
        options.trust_on_first_use = true;
    hawser::Client client(options);
    if (auto r = client.connect(); !r) {
        std::fprintf(stderr, "connect: %s\n", r.error().message.c_str());
        return 1;
    }
    auto conn = client.connection();

    // Console command, blocking style.
    auto hello = conn.call("hello", "world", hawser::use_wait);
    if (!hello) return std::fprintf(stderr, "hello: %s\n", hello.error().message.c_str()), 1;
    std::printf("%s\n", hello->c_str());

    // DataFrame command with a DataFrame.
    hawser::DataFrame numbers;
    numbers << 1 << 2 << 3 << 36;
    auto sum = conn.call("sum", numbers, hawser::use_wait);
    if (!sum) return std::fprintf(stderr, "sum: %s\n", sum.error().message.c_str()), 1;
    std::printf("sum = %lld\n", static_cast<long long>(sum->get<std::int64_t>()));

    // A one-way message, and an unknown command to show a typed error.
    (void)conn.send("log", "hello from hello_client");
    auto missing = conn.call("no.such.command", "", hawser::use_wait);
    std::printf("unknown command -> %s\n",
                std::string(hawser::to_string(missing.error().code)).c_str());
    return 0;
}
