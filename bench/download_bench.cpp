// Many concurrent downloads of one file from one server process, encrypted: the server's RSS
// against clients x window + 100 MB, every download's rate (the slowest against the median),
// and small calls on another connection, idle and while the downloads run (p99 ratio). The
// server runs in a child process so its memory is measured alone; the file is sparse, so the
// disk is not what is measured. Bounded in time by default; --full waits for every download.
// --known-hash: the server hashes the file once at start and gives each send_file the hash.
//   download_bench [--clients N (1000)] [--size BYTES (2 GiB)] [--seconds S (60)] [--full]
//                  [--known-hash]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "hawser/hawser.hpp"

using namespace std::chrono;

namespace {

std::int64_t now_ns() {
    return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

std::uint64_t rss_bytes(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    while (f >> key) {
        if (key == "VmRSS:") {
            std::uint64_t kb = 0;
            f >> kb;
            return kb * 1024;
        }
        f.ignore(1 << 10, '\n');
    }
    return 0;
}

// The server process: "download" starts a send_file of `path` to the caller; "ping" answers.
// With `known_hash` the file is hashed once, before serving, as a store that keeps its files'
// hashes does: each download then only reads and seals.
[[noreturn]] void serve(const std::string& path, bool known_hash, int report_fd, int stop_fd) {
    hawser::StreamOptions options;
    if (known_hash) {
        hawser::ContentHasher hash;
        std::ifstream in(path, std::ios::binary);
        std::vector<char> block(1 << 20);
        while (in.read(block.data(), std::streamsize(block.size())) || in.gcount() > 0)
            hash.update(std::string_view(block.data(), std::size_t(in.gcount())));
        options.content_hash = hash.digest();
    }
    hawser::ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.io_threads = 1;
    so.data_dir = "";
    so.admission.connections_per_second_per_ip = 1e6;
    so.admission.connection_burst_per_ip = 1e6;
    hawser::Server server(so);
    server.commands().console(
        "ping", [](const hawser::Request&, std::string_view) { return std::to_string(now_ns()); });
    server.commands().console("download",
                              [path, options](const hawser::Request& req, std::string_view) {
                                  req.connection().send_file(
                                      "file", path, [](hawser::Result<void>) {}, options);
                                  return std::string("started");
                              });
    server.start().value();
    std::string hello = std::to_string(server.ports()[0]) + " " + server.public_key() + "\n";
    if (::write(report_fd, hello.data(), hello.size()) < 0) std::_Exit(1);
    char c;
    while (::read(stop_fd, &c, 1) > 0) {
    }  // the parent closes the pipe when done
    std::_Exit(0);
}

struct Download {
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<bool> done{false};
};

struct Latency {
    double p50 = 0, p99 = 0;
    std::size_t n = 0;
    // Where the slowest 1% spent their time: from the call to the server's handler (the
    // request's way and the server's turn), and from the handler back to the caller.
    double tail_to_server = 0, tail_back = 0;
};

// The ping's reply is the server's clock when its handler ran: steady_clock is the machine's
// monotonic clock, the same in both processes.
Latency ping_for(const hawser::Connection& c, duration<double> how_long) {
    struct Sample {
        double total, to_server;
    };
    std::vector<Sample> samples;
    auto end = steady_clock::now() + how_long;
    while (steady_clock::now() < end) {
        auto t = now_ns();
        auto reply = c.call("ping", "", hawser::use_wait);
        auto back = now_ns();
        std::int64_t at_server = 0;
        if (!reply || std::from_chars(reply->data(), reply->data() + reply->size(), at_server).ec !=
                          std::errc{})
            break;
        samples.push_back({double(back - t) / 1e3, double(at_server - t) / 1e3});
        std::this_thread::sleep_for(milliseconds(2));  // a sample every few ms, not a flood
    }
    if (samples.empty()) return {};
    std::sort(samples.begin(), samples.end(),
              [](const Sample& a, const Sample& b) { return a.total < b.total; });
    auto n = samples.size();
    Latency l{samples[n / 2].total, samples[std::min(n - 1, n * 99 / 100)].total, n};
    std::size_t tail = 0;
    for (auto i = n * 99 / 100; i < n; ++i, ++tail) {
        l.tail_to_server += samples[i].to_server;
        l.tail_back += samples[i].total - samples[i].to_server;
    }
    l.tail_to_server /= double(tail);
    l.tail_back /= double(tail);
    return l;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t clients = 1000;
    std::uint64_t size = std::uint64_t(2) << 30;
    double seconds = 60;
    bool full = false, known_hash = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--full") full = true;
        if (a == "--known-hash") known_hash = true;
        if (i + 1 >= argc) continue;
        if (a == "--clients") clients = std::stoul(argv[i + 1]);
        if (a == "--size") size = std::stoull(argv[i + 1]);
        if (a == "--seconds") seconds = std::stod(argv[i + 1]);
    }
    hawser::raise_file_limit();
    std::string path = "/tmp/hawser-download-bench-" + std::to_string(::getpid());
    {
        std::ofstream(path).flush();
        if (::truncate(path.c_str(), off_t(size)) != 0) return 1;  // sparse: zeros, no disk
    }
    int report[2], stop[2];
    if (::pipe(report) != 0 || ::pipe(stop) != 0) return 1;
    pid_t child = ::fork();
    if (child == 0) {
        ::close(report[0]);
        ::close(stop[1]);
        serve(path, known_hash, report[1], stop[0]);
    }
    ::close(report[1]);
    ::close(stop[0]);
    std::string hello;
    for (char c; ::read(report[0], &c, 1) == 1 && c != '\n';) hello += c;
    auto port = hello.substr(0, hello.find(' '));
    auto key = hello.substr(hello.find(' ') + 1);

    hawser::Runtime runtime({.io_threads = 1});
    auto options = [&] {
        hawser::ClientOptions co;
        co.endpoints = {"127.0.0.1:" + port};
        co.server_public_key = key;
        return co;
    };
    std::vector<std::unique_ptr<Download>> downloads;
    std::vector<std::unique_ptr<hawser::Client>> fleet;
    for (std::size_t i = 0; i < clients; ++i) {
        auto d = std::make_unique<Download>();
        auto client = std::make_unique<hawser::Client>(runtime, options());
        client->commands().stream(
            "file",
            [d = d.get()](hawser::Request, hawser::IncomingStream in) -> hawser::Task<void> {
                auto source = in.accept().value();
                for (;;) {
                    auto chunk = co_await source.read();
                    if (!chunk || chunk->empty()) break;
                    d->bytes += chunk->size();
                }
                d->done = true;
            });
        client->connect().value();
        downloads.push_back(std::move(d));
        fleet.push_back(std::move(client));
    }
    // The prober has an IO thread of its own: it measures the server, not the downloaders'
    // client thread.
    hawser::Runtime prober_runtime({.io_threads = 1});
    hawser::Client prober(prober_runtime, options());
    prober.connect().value();
    auto probe = prober.connection();
    auto idle = ping_for(probe, duration<double>(3));
    auto rss_before = rss_bytes(child);

    auto start = steady_clock::now();
    for (auto& c : fleet) c->connection().call("download", "", [](hawser::Result<std::string>) {});
    std::uint64_t rss_max = rss_before;
    Latency busy;
    std::thread prober_thread([&] { busy = ping_for(probe, duration<double>(seconds * 0.8)); });
    for (;;) {
        std::this_thread::sleep_for(milliseconds(500));
        rss_max = std::max(rss_max, rss_bytes(child));
        auto elapsed = duration<double>(steady_clock::now() - start).count();
        bool all =
            std::all_of(downloads.begin(), downloads.end(), [](auto& d) { return d->done.load(); });
        if (all || (!full && elapsed >= seconds)) break;
    }
    double elapsed = duration<double>(steady_clock::now() - start).count();
    prober_thread.join();
    std::vector<double> rates;
    std::size_t complete = 0;
    std::uint64_t total = 0;
    for (auto& d : downloads) {
        rates.push_back(double(d->bytes.load()) / elapsed);
        total += d->bytes.load();
        complete += d->done.load();
    }
    std::sort(rates.begin(), rates.end());
    double median = rates[rates.size() / 2];
    auto window = hawser::Limits{}.stream_window_bytes;
    double budget = double(clients) * window + 100e6;
    std::printf("%zu downloads of a %.2f GiB file, encrypted, %.1f s (%s), %s\n", clients,
                double(size) / double(1 << 30), elapsed, full ? "until all complete" : "bounded",
                known_hash ? "hash known to the server" : "the server hashes each download");
    std::printf("  completed %zu of %zu; %.2f GiB moved, %.1f MiB/s in all\n", complete, clients,
                double(total) / double(1 << 30), double(total) / elapsed / double(1 << 20));
    std::printf("  per download: median %.2f MiB/s, slowest %.2f MiB/s, slowest/median %.2f\n",
                median / double(1 << 20), rates.front() / double(1 << 20),
                median > 0 ? rates.front() / median : 0.0);
    std::printf(
        "  server RSS: %.1f MiB before, %.1f MiB peak; budget clients x window + 100 MB "
        "= %.1f MiB; peak/budget %.2f\n",
        double(rss_before) / double(1 << 20), double(rss_max) / double(1 << 20),
        budget / double(1 << 20), double(rss_max) / budget);
    std::printf(
        "  small calls on another connection: idle p50 %.0f us p99 %.0f us (%zu); during "
        "p50 %.0f us p99 %.0f us (%zu); p99 ratio %.2f\n",
        idle.p50, idle.p99, idle.n, busy.p50, busy.p99, busy.n,
        idle.p99 > 0 ? busy.p99 / idle.p99 : 0.0);
    std::printf(
        "  the slowest 1%% of calls, on average: idle %.0f us to the server's handler, %.0f us "
        "back; during %.0f us to it, %.0f us back\n",
        idle.tail_to_server, idle.tail_back, busy.tail_to_server, busy.tail_back);
    fleet.clear();
    ::close(stop[1]);
    ::waitpid(child, nullptr, 0);
    ::unlink(path.c_str());
}
