// The cloud service's logins and resumptions per second over loopback, against the Argon2id
// bound measured in the same run: as many threads as the server has workers, each verifying a
// password hash of the same cost in a loop (what a login cannot avoid). Prints
//   logins/s ÷ bound        (the target: >= 0.8)
//   resumptions/s ÷ logins/s (the target: >= 10)
//   cloud_bench [--workers W] [--clients C] [--logins N] [--resumes N] [--ops T] [--memory BYTES]
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "hawser/cloud/cloud.hpp"
#include "hawser/hawser.hpp"
#include "hawser/zdb/store.hpp"
#include "numeric_flags.hpp"

using namespace hawser;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
    std::size_t workers = 2, clients = 8, logins = 64, resumes = 4000;
    std::size_t ops = 2;
    std::size_t memory = 64u << 20;  // libsodium's interactive level, the cloud's default
};

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// `threads` threads verifying one hash of the given cost, `count` verifications in all.
double argon2_bound(const Args& a, std::size_t count) {
    char hash[crypto_pwhash_STRBYTES];
    const std::string password = "correct horse battery";
    if (crypto_pwhash_str_alg(hash, password.data(), password.size(), a.ops, a.memory,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        std::abort();
    std::atomic<std::size_t> next{0};
    auto t = Clock::now();
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < a.workers; ++i)
        threads.emplace_back([&] {
            while (next.fetch_add(1) < count)
                if (crypto_pwhash_str_verify(hash, password.data(), password.size()) != 0)
                    std::abort();
        });
    for (auto& th : threads) th.join();
    return double(count) / seconds_since(t);
}

// Runs `per_client` calls on each of `clients` connections at once; returns calls per second.
template <class Call>
double run_clients(std::vector<std::unique_ptr<Client>>& clients, std::size_t per_client,
                   Call call) {
    std::atomic<bool> failed{false};
    auto t = Clock::now();
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < clients.size(); ++c)
        threads.emplace_back([&, c] {
            for (std::size_t i = 0; i < per_client && !failed; ++i)
                if (!call(c, i)) failed = true;
        });
    for (auto& th : threads) th.join();
    if (failed) {
        std::fprintf(stderr, "a call failed\n");
        std::exit(1);
    }
    return double(clients.size() * per_client) / seconds_since(t);
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    if (!bench::read_numeric_flags<std::size_t>(argc, argv,
                                                {{"--workers", &a.workers},
                                                 {"--clients", &a.clients},
                                                 {"--logins", &a.logins},
                                                 {"--resumes", &a.resumes},
                                                 {"--ops", &a.ops},
                                                 {"--memory", &a.memory}}))
        return 2;
    if (sodium_init() < 0 || a.clients == 0 || a.workers == 0) return 2;
    auto dir = std::filesystem::temp_directory_path() /
               ("hawser_cloud_bench_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);

    auto bound = argon2_bound(a, std::max<std::size_t>(a.logins, 2 * a.workers));
    double logins_per_s = 0, resumes_per_s = 0;
    {
        auto store = zdb::Store::open({.path = (dir / "store").string()}).value();
        ServerOptions so;
        so.listen = {"127.0.0.1:0"};
        so.io_threads = 1;
        so.worker_threads = a.workers;
        so.data_dir = "";
        Server server(so);
        cloud::CloudOptions co;
        co.secret_key_file = (dir / "cloud.key").string();
        co.password_ops = a.ops;
        co.password_memory = a.memory;
        co.login_attempts_per_address = 1u << 30;  // every client comes from 127.0.0.1
        co.registrations_per_address = 1u << 30;
        co.max_sessions_per_user = a.logins + 1;
        cloud::Cloud cloud(server, *store, co);
        server.start().value();

        ClientOptions client_options;
        client_options.endpoints = {"127.0.0.1:" + std::to_string(server.ports().at(0))};
        client_options.server_public_key = server.public_key();
        std::vector<std::unique_ptr<Client>> clients;
        for (std::size_t c = 0; c < a.clients; ++c) {
            clients.push_back(std::make_unique<Client>(client_options));
            clients.back()->connect().value();
            DataFrame reg;
            reg << ("user" + std::to_string(c)) << "correct horse battery";
            clients.back()->connection().call("cloud.register", reg, use_wait).value();
        }
        std::vector<std::string> tokens(a.clients);
        std::size_t per_client = std::max<std::size_t>(1, a.logins / a.clients);
        logins_per_s = run_clients(clients, per_client, [&](std::size_t c, std::size_t) {
            DataFrame login;
            login << ("user" + std::to_string(c)) << "correct horse battery";
            auto r = clients[c]->connection().call("cloud.login", login, use_wait);
            if (!r) return false;
            tokens[c] = r->get<std::string>();
            return true;
        });
        per_client = std::max<std::size_t>(1, a.resumes / a.clients);
        resumes_per_s = run_clients(clients, per_client, [&](std::size_t c, std::size_t) {
            DataFrame resume;
            resume << tokens[c];
            return bool(clients[c]->connection().call("cloud.resume", resume, use_wait));
        });
    }
    std::filesystem::remove_all(dir);
    std::printf("Argon2id t=%llu m=%zu MiB, %zu worker threads, %zu clients\n",
                static_cast<unsigned long long>(a.ops), a.memory >> 20, a.workers, a.clients);
    std::printf("  bound (verify only)    %10.1f /s\n", bound);
    std::printf("  logins                 %10.1f /s   ratio to bound %.2f (target >= 0.8)\n",
                logins_per_s, logins_per_s / bound);
    std::printf("  resumptions            %10.1f /s   ratio to logins %.0f (target >= 10)\n",
                resumes_per_s, resumes_per_s / logins_per_s);
    return 0;
}
