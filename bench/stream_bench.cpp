// One big stream, encrypted, against the bound on this machine: the lower of raw loopback TCP
// (a writer thread and a reader thread, 256 KiB writes) and ChaCha20-Poly1305 seal + open of the
// same bytes in 64 KiB pieces (the secure transport's code, one thread), both measured in the same
// run. Then the latency of small calls on the same connection, idle and while a stream of the same
// size runs on it: p50/p99 and the ratio busy/idle. The receiver's window bounds the stream data a
// call can queue behind. The stream runs twice: the sender hashing, and given the hash
// (StreamOptions::content_hash), as a content-addressed store would; --known-hash 1 uses the latter
// for the calls part.
//   stream_bench [--size BYTES (2 GiB)] [--calls N (2000)] [--window BYTES] [--chunk BYTES]
//                [--hash-turn BYTES] [--known-hash 0|1]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "hawser/hawser.hpp"
#include "wire/chacha_poly.hpp"

using namespace std::chrono;

namespace {

double raw_tcp(std::size_t size) {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener, 1);
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    int writer = ::socket(AF_INET, SOCK_STREAM, 0);
    ::connect(writer, reinterpret_cast<sockaddr*>(&a), sizeof a);
    int reader = ::accept(listener, nullptr, nullptr);
    auto start = steady_clock::now();
    std::thread read_thread([&] {
        std::vector<char> buf(256 * 1024);
        for (std::size_t got = 0; got < size;) {
            auto n = ::read(reader, buf.data(), buf.size());
            if (n <= 0) break;
            got += std::size_t(n);
        }
    });
    std::vector<char> buf(256 * 1024, 'x');
    for (std::size_t sent = 0; sent < size;) {
        auto n = ::write(writer, buf.data(), std::min(buf.size(), size - sent));
        if (n <= 0) break;
        sent += std::size_t(n);
    }
    read_thread.join();
    double s = duration<double>(steady_clock::now() - start).count();
    ::close(writer), ::close(reader), ::close(listener);
    return double(size) / s;
}

double aead_bound(std::size_t size) {
    constexpr std::size_t piece = 65535 - 16 - 1;
    namespace aead = hawser::detail::chacha_poly;
    std::array<std::uint8_t, aead::key_len> key;
    key.fill(7);
    std::vector<unsigned char> buf(piece + 16, 1);
    std::array<std::uint8_t, aead::nonce_len> nonce{};
    auto start = steady_clock::now();
    for (std::size_t left = size; left > 0;) {
        std::size_t n = std::min(left, piece);
        if (!aead::seal(key, nonce, {}, std::span(buf.data(), n), buf.data()) ||
            !aead::open(key, nonce, {}, std::span(buf.data(), n + 16), buf.data()))
            std::abort();
        left -= n;
    }
    return double(size) / duration<double>(steady_clock::now() - start).count();
}

// BLAKE2b over the same bytes, one thread: what each end adds to verify the content.
double hash_rate(std::size_t size) {
    std::vector<unsigned char> buf(256 * 1024, 3);
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, 32);
    auto start = steady_clock::now();
    for (std::size_t left = size; left > 0;) {
        auto n = std::min(left, buf.size());
        crypto_generichash_update(&state, buf.data(), n);
        left -= n;
    }
    unsigned char out[32];
    crypto_generichash_final(&state, out, sizeof out);
    return double(size) / duration<double>(steady_clock::now() - start).count();
}

struct Pair {
    std::unique_ptr<hawser::Server> server;
    std::unique_ptr<hawser::Client> client;
};

Pair make_pair(std::uint32_t window, std::uint32_t chunk, std::uint32_t hash_turn) {
    hawser::ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.io_threads = 1;
    so.data_dir = "";
    so.transport.compression = hawser::Compression::none;
    so.limits.stream_window_bytes = window;
    so.limits.stream_chunk_bytes = chunk;
    so.limits.stream_hash_turn_bytes = hash_turn;
    so.limits.stream_connection_window_bytes = std::max(4 * window, 1u << 20);
    Pair p;
    p.server = std::make_unique<hawser::Server>(so);
    p.server->commands().console(
        "ping", [](const hawser::Request&, std::string_view) { return std::string("pong"); });
    p.server->commands().stream(
        "sink", [](hawser::Request, hawser::IncomingStream in) -> hawser::Task<void> {
            auto source = in.accept().value();
            for (;;) {
                auto chunk = co_await source.read();
                if (!chunk || chunk->empty()) break;
            }
        });
    p.server->start().value();
    hawser::ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(p.server->ports()[0])};
    co.server_public_key = p.server->public_key();
    co.transport = so.transport;
    co.limits = so.limits;
    p.client = std::make_unique<hawser::Client>(co);
    p.client->connect().value();
    return p;
}

// Sends `size` bytes from memory (filled before the clock starts); returns bytes per second.
// CPU time of the whole process, all threads.
double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

double transfer(const hawser::Connection& c, std::size_t size, bool known_hash,
                double* cores_busy = nullptr) {
    std::string content(size, 'y');
    hawser::StreamOptions options;
    if (known_hash) {
        hawser::ContentHasher h;
        h.update(content);
        options.content_hash = h.digest();
    }
    auto cpu = cpu_seconds();
    auto start = steady_clock::now();
    c.send_stream("sink", std::move(content), hawser::use_wait, options).value();
    double seconds = duration<double>(steady_clock::now() - start).count();
    if (cores_busy) *cores_busy = (cpu_seconds() - cpu) / seconds;
    return double(size) / seconds;
}

struct Latency {
    double p50, p99;
    std::size_t n;
};

Latency calls(const hawser::Connection& c, std::size_t count, const std::atomic<bool>* until) {
    std::vector<double> us;
    for (std::size_t i = 0; i < count || (until && !until->load()); ++i) {
        if (until && until->load()) break;
        auto t = steady_clock::now();
        c.call("ping", "", hawser::use_wait).value();
        us.push_back(duration<double, std::micro>(steady_clock::now() - t).count());
    }
    std::sort(us.begin(), us.end());
    if (us.empty()) return {0, 0, 0};
    return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)], us.size()};
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t size = std::size_t(2) << 30, call_count = 2000;
    std::uint32_t window = hawser::Limits{}.stream_window_bytes;
    std::uint32_t chunk = hawser::Limits{}.stream_chunk_bytes;
    std::uint32_t hash_turn = hawser::Limits{}.stream_hash_turn_bytes;
    bool known = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--size") size = std::stoull(argv[i + 1]);
        if (a == "--calls") call_count = std::stoull(argv[i + 1]);
        if (a == "--window") window = std::uint32_t(std::stoul(argv[i + 1]));
        if (a == "--chunk") chunk = std::uint32_t(std::stoul(argv[i + 1]));
        if (a == "--hash-turn") hash_turn = std::uint32_t(std::stoul(argv[i + 1]));
        if (a == "--known-hash") known = argv[i + 1] == std::string("1");
    }
    if (sodium_init() < 0) return 1;
    double gib = double(1 << 30);
    double tcp = raw_tcp(size);
    double aead = aead_bound(size);
    double bound = std::min(tcp, aead);
    double hash = hash_rate(size);
    auto p = make_pair(window, chunk, hash_turn);
    auto c = p.client->connection();
    double busy_cores = 0, known_cores = 0;
    double hawser_rate = transfer(c, size, false, &busy_cores);
    double known_rate = transfer(c, size, true, &known_cores);
    std::printf(
        "one stream of %.2f GiB, encrypted, window %u KiB, chunk %u KiB, hash turn %u KiB\n",
        double(size) / gib, window / 1024, chunk / 1024, hash_turn / 1024);
    std::printf("  raw loopback TCP        %8.2f GiB/s\n", tcp / gib);
    std::printf("  AEAD seal+open bound    %8.2f GiB/s\n", aead / gib);
    std::printf(
        "  BLAKE2b (each end)      %8.2f GiB/s   seal+open+2 hashes on one core: %.2f GiB/s\n",
        hash / gib, 1 / (1 / aead + 2 / hash) / gib);
    std::printf(
        "  hawser stream           %8.2f GiB/s   ratio to the bound %.2f   cores busy %.2f\n",
        hawser_rate / gib, hawser_rate / bound, busy_cores);
    std::printf(
        "  ... hash known (content_hash) %.2f GiB/s   ratio to the bound %.2f   cores busy %.2f\n",
        known_rate / gib, known_rate / bound, known_cores);

    auto idle = calls(c, call_count, nullptr);
    std::atomic<bool> done{false};
    double busy_rate = 0;
    auto before = p.server->stats().bytes_in;
    std::thread t([&] {
        busy_rate = transfer(c, size, known);
        done = true;
    });
    while (!done && p.server->stats().bytes_in < before + (std::uint64_t(4) << 20))
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // (stats() is not free)
    auto busy = calls(c, 0, &done);
    t.join();
    std::printf("small calls on the same connection (%zu idle, %zu during the stream)\n", idle.n,
                busy.n);
    std::printf("  idle     p50 %7.1f us   p99 %7.1f us\n", idle.p50, idle.p99);
    std::printf("  busy     p50 %7.1f us   p99 %7.1f us   p99 ratio busy/idle %.2f\n", busy.p50,
                busy.p99, busy.p99 / idle.p99);
    std::printf("  stream rate while calls ran %.2f GiB/s\n", busy_rate / gib);
}
