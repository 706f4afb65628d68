// The cloud's data queries over the wire against the same query run directly on ZDB, in one
// run: a user's collection of N records, queried with a filter that matches about half of them
// and with one that matches all. The floors are zdb::run_query with the same compiled filter,
// parallelism and fragment size, records kept as stored (what the server does) and decoded
// into Maps (what a client gets); the wire adds sealing, loopback, the client's decoding and
// the window's acknowledgements. Prints
//   records/s over the wire ÷ records/s of each direct query     (per filter and window)
//   cloud_data_bench [--records N] [--pad BYTES]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "hawser/cloud/cloud.hpp"
#include "hawser/cloud/data_client.hpp"
#include "hawser/hawser.hpp"
#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/store.hpp"

using namespace hawser;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

Map at_least(std::int64_t n) {
    return Map{{"level", Value(Map{{"$gte", Value(n)}})}};
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t records = 200000, pad = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        auto v = std::strtoull(argv[i + 1], nullptr, 10);
        if (k == "--records")
            records = v;
        else if (k == "--pad")
            pad = v;
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    auto dir = std::filesystem::temp_directory_path() /
               ("hawser_data_bench_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto store = zdb::Store::open({.path = (dir / "store").string()}).value();

    ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.io_threads = 1;
    so.data_dir = "";
    Server server(so);
    cloud::CloudOptions co;
    co.secret_key_file = (dir / "cloud.key").string();
    co.password_ops = 1;
    co.password_memory = 8192;
    co.max_records_per_user = records + 1;
    co.query_time_limit = std::chrono::minutes(10);
    cloud::Cloud cloud(server, *store, co);
    server.start().value();

    ClientOptions client_options;
    client_options.endpoints = {"127.0.0.1:" + std::to_string(server.ports().at(0))};
    client_options.server_public_key = server.public_key();
    client_options.timeouts.call = std::chrono::minutes(10);
    Client client(client_options);
    cloud::DataClient data(client.commands());
    client.connect().value();
    DataFrame reg;
    reg << "reader"
        << "correct horse battery";
    client.connection().call("cloud.register", reg, use_wait).value();
    client.connection().call("cloud.login", reg, use_wait).value();

    // The collection, written straight into the cloud's data database as the service would
    // (after the registration, which clears what an earlier account of the name left).
    auto db = store->database("cloud.data").value();
    {
        std::vector<Map> batch;
        for (std::size_t i = 0; i < records; ++i) {
            batch.push_back(Map{{"_owner", Value("reader")},
                                {"_collection", Value("scores")},
                                {"level", Value(std::int64_t(i % 100))},
                                {"name", Value("player" + std::to_string(i))},
                                {"pad", Value(std::string(pad, 'p'))}});
            if (batch.size() == 10000 || i + 1 == records) {
                db->insert_batch(batch).value();
                batch.clear();
            }
        }
    }

    std::printf("%zu records of ~%zu bytes, fragments of %zu bytes, %zu workers per query\n",
                records, pad + 60, co.query_fragment_bytes, co.query_parallelism);
    for (auto [label, filter] :
         {std::pair<const char*, Map>{"half match (level >= 50)", at_least(50)},
          std::pair<const char*, Map>{"all match", Map{}}}) {
        // The floor: the same filter the service compiles, run directly.
        Map scoped{{"_owner", Value("reader")}, {"_collection", Value("scores")}};
        if (!filter.empty()) scoped.emplace("$and", Value(Array{Value(filter)}));
        zdb::QueryOptions qo;
        qo.parallelism = co.query_parallelism;
        qo.fragment_bytes = co.query_fragment_bytes;
        qo.decode = false;
        std::size_t direct = 0;
        auto t = Clock::now();
        auto q = zdb::run_query(db, zdb::compile_filter(scoped).value(), qo, [&](zdb::Fragment f) {
                     direct += f.size();
                 }).value();
        q->wait().value();
        double direct_rate = double(direct) / seconds_since(t);
        // And with the records decoded into Maps, as the client hands them over.
        qo.decode = true;
        std::size_t decoded = 0;
        t = Clock::now();
        q = zdb::run_query(db, zdb::compile_filter(scoped).value(), qo, [&](zdb::Fragment f) {
                decoded += f.size();
            }).value();
        q->wait().value();
        double decoded_rate = double(decoded) / seconds_since(t);
        for (std::size_t window : {1, 4, 16}) {
            std::size_t got = 0;
            t = Clock::now();
            auto end = data.query(client.connection(), "scores", filter,
                                  [&](cloud::DataFragment f) { got += f.records.size(); }, use_wait,
                                  {.window = window, .timeout = std::chrono::minutes(10)})
                           .value();
            double rate = double(got) / seconds_since(t);
            if (got != direct || end.matched != got) {
                std::fprintf(stderr,
                             "the wire returned %zu records (the server says %llu in %llu "
                             "fragments, %s), the direct query %zu\n",
                             got, static_cast<unsigned long long>(end.matched),
                             static_cast<unsigned long long>(end.fragments), end.end.c_str(),
                             direct);
                return 1;
            }
            std::printf(
                "%-26s window %2zu: %8.0f records/s over the wire; direct %8.0f as stored: "
                "%.2f, %8.0f decoded: %.2f\n",
                label, window, rate, direct_rate, rate / direct_rate, decoded_rate,
                rate / decoded_rate);
        }
    }
    std::filesystem::remove_all(dir);
    return 0;
}
