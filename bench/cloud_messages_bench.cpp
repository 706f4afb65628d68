// The cloud's offline mailbox: how fast messages to a user who is away are stored, and how fast
// that user drains them after logging in, each against its floor measured in the same run:
// the ZDB work a message cannot avoid (one insert with sync durability to keep it; one read and
// one synced delete to drain it), done directly on a database of the same store, with as many
// threads as there are senders. Prints
//   sends/s ÷ raw synced inserts/s     drained/s ÷ raw scan-and-delete/s
//   cloud_messages_bench [--messages N] [--clients C] [--body BYTES]
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
    std::size_t messages = 4000, clients = 8, body = 200;
};

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Runs body(thread, i) for i in [0, per_thread) on `threads` threads; returns runs per second.
template <class Body>
double in_threads(std::size_t threads, std::size_t per_thread, Body body) {
    std::atomic<bool> failed{false};
    auto t = Clock::now();
    std::vector<std::thread> pool;
    for (std::size_t c = 0; c < threads; ++c)
        pool.emplace_back([&, c] {
            for (std::size_t i = 0; i < per_thread && !failed; ++i)
                if (!body(c, i)) failed = true;
        });
    for (auto& th : pool) th.join();
    if (failed) {
        std::fprintf(stderr, "an operation failed\n");
        std::exit(1);
    }
    return double(threads * per_thread) / seconds_since(t);
}

Map record(std::uint64_t to, const std::string& body) {
    return Map{{"to", Value(to)},
               {"from", Value(std::uint64_t(1))},
               {"from_name", Value(std::string("sender"))},
               {"body", Value(body)},
               {"sent_ms", Value(std::int64_t(1))},
               {"expires_ms", Value(std::int64_t(2))}};
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    if (!bench::read_numeric_flags<std::size_t>(
            argc, argv,
            {{"--messages", &a.messages}, {"--clients", &a.clients}, {"--body", &a.body}}))
        return 2;
    if (a.clients == 0 || a.messages < a.clients) return 2;
    auto dir = std::filesystem::temp_directory_path() /
               ("hawser_messages_bench_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::size_t per_client = a.messages / a.clients;
    std::size_t total = per_client * a.clients;
    std::string body(a.body, 'm');

    auto store = zdb::Store::open({.path = (dir / "store").string()}).value();
    // The floor: the same records in a database of the same store, written and drained directly.
    double raw_inserts = 0, raw_drain = 0;
    {
        auto db = store->create("raw", {.durability = zdb::Durability::sync}).value();
        db->create_index("to").value();
        raw_inserts = in_threads(a.clients, per_client, [&](std::size_t, std::size_t) {
            return bool(db->insert(record(7, body)));
        });
        std::vector<zdb::RecordId> ids;
        auto t = Clock::now();
        (void)db->scan([&](zdb::RecordId id, const Map&) {
            ids.push_back(id);
            return true;
        });
        for (auto id : ids)
            if (!db->remove(id)) return 1;
        raw_drain = double(ids.size()) / seconds_since(t);
    }

    double sends = 0, drained = 0;
    {
        ServerOptions so;
        so.listen = {"127.0.0.1:0"};
        so.io_threads = 1;
        so.worker_threads = 2;
        so.data_dir = "";
        Server server(so);
        cloud::CloudOptions co;
        co.secret_key_file = (dir / "cloud.key").string();
        co.password_ops = 1;
        co.password_memory = 8192;  // logins are not what is measured
        co.registrations_per_address = 1u << 30;
        co.login_attempts_per_address = 1u << 30;
        co.max_queued_messages = total + 1;
        co.messages_per_minute = 1u << 30;
        cloud::Cloud cloud(server, *store, co);
        server.start().value();
        ClientOptions client_options;
        client_options.endpoints = {"127.0.0.1:" + std::to_string(server.ports().at(0))};
        client_options.server_public_key = server.public_key();
        auto connect_as = [&](const std::string& name) {
            auto c = std::make_unique<Client>(client_options);
            c->connect().value();
            DataFrame reg;
            reg << name << "correct horse battery";
            c->connection().call("cloud.register", reg, use_wait).value();
            c->connection().call("cloud.login", reg, use_wait).value();
            return c;
        };
        auto reader = connect_as("reader");
        DataFrame logout;
        reader->connection().call("cloud.logout", logout, use_wait).value();  // away
        std::vector<std::unique_ptr<Client>> senders;
        for (std::size_t c = 0; c < a.clients; ++c)
            senders.push_back(connect_as("sender" + std::to_string(c)));
        sends = in_threads(a.clients, per_client, [&](std::size_t c, std::size_t) {
            DataFrame m;
            m << "reader" << body;
            return bool(senders[c]->connection().call("cloud.send", m, use_wait));
        });
        DataFrame login;
        login << "reader"
              << "correct horse battery";
        reader->connection().call("cloud.login", login, use_wait).value();
        std::size_t read = 0;
        auto t = Clock::now();
        for (;;) {
            DataFrame none;
            none << std::uint64_t(0);
            auto page = reader->connection().call("cloud.inbox", none, use_wait).value();
            auto list = page.get<Value>();
            auto& messages = list.as<Array>();
            if (messages.empty()) break;
            read += messages.size();
            DataFrame ack;
            auto& id = messages.back().as<Map>().at("id");
            ack << (id.is<std::uint64_t>() ? id.as<std::uint64_t>()
                                           : std::uint64_t(id.as<std::int64_t>()));
            reader->connection().call("cloud.ack", ack, use_wait).value();
        }
        drained = double(read) / seconds_since(t);
        if (read != total) {
            std::fprintf(stderr, "drained %zu of %zu\n", read, total);
            return 1;
        }
    }
    store.reset();
    std::filesystem::remove_all(dir);
    std::printf("%zu messages of %zu bytes, %zu senders, ZDB with sync durability\n", total, a.body,
                a.clients);
    std::printf("  raw synced inserts     %10.1f /s\n", raw_inserts);
    std::printf("  sends to an offline user %8.1f /s   ratio %.2f\n", sends, sends / raw_inserts);
    std::printf("  raw scan and delete    %10.1f /s\n", raw_drain);
    std::printf("  drained (inbox + ack)  %10.1f /s   ratio %.2f\n", drained, drained / raw_drain);
    return 0;
}
