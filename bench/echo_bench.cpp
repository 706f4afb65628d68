// Echo round trips through Hawser against a minimal asio echo server and client, in one process,
// with the same message size, interleaved runs, medians. Three contenders: raw asio, Hawser in
// plaintext mode, Hawser encrypted (Noise transport). Prints rates, latency percentiles and the
// ratios plaintext/raw, encrypted/raw and encrypted/plaintext. Compression is off: payloads are
// random bytes. Also the AEAD bound: the round trips per second if a round trip cost nothing but
// sealing and opening its bytes each way with ChaCha20-Poly1305 in 64 KiB pieces (the code the
// secure transport uses, measured in the same run), and the encrypted rate against it. A fourth
// contender is the encrypted connection carried in WebSocket frames (the browser's way), against
// encrypted TCP.
//   echo_bench [--seconds S] [--runs N] [--size BYTES] [--depth IN_FLIGHT] [--only
//   raw|plaintext|encrypted|websocket]
// --only runs one contender alone (for a profiler or strace); it prints no ratios.
#include <algorithm>
#include <array>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <sodium.h>

#include "hawser/hawser.hpp"
#include "wire/chacha_poly.hpp"

using namespace std::chrono;
using asio::ip::tcp;

namespace {

struct Result {
    double rate = 0;                    // round trips per second
    double p50 = 0, p99 = 0, p999 = 0;  // microseconds
};

Result summarize(std::vector<std::uint32_t>& ns, double seconds) {
    Result r;
    r.rate = double(ns.size()) / seconds;
    if (ns.empty()) return r;
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) {
        return ns[std::min(ns.size() - 1, std::size_t(q * double(ns.size())))] / 1e3;
    };
    r.p50 = at(0.5), r.p99 = at(0.99), r.p999 = at(0.999);
    return r;
}

// --- baseline: the classic asio echo server, and a client speaking length-prefixed messages ---

class RawEchoSession : public std::enable_shared_from_this<RawEchoSession> {
  public:
    explicit RawEchoSession(tcp::socket s) : socket_(std::move(s)) {}
    void start() { read(); }

  private:
    void read() {
        socket_.async_read_some(asio::buffer(buf_),
                                [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                    if (ec) return;
                                    asio::async_write(self->socket_, asio::buffer(self->buf_, n),
                                                      [self](std::error_code ec, std::size_t) {
                                                          if (!ec) self->read();
                                                      });
                                });
    }
    tcp::socket socket_;
    std::array<char, 65536> buf_;
};

void raw_accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](std::error_code ec, tcp::socket s) {
        if (ec) return;
        s.set_option(tcp::no_delay(true));
        std::make_shared<RawEchoSession>(std::move(s))->start();
        raw_accept(acceptor);
    });
}

// Keeps `depth` length-prefixed messages in flight; replies are parsed from the stream.
class RawClient {
  public:
    RawClient(asio::io_context& ctx, std::uint16_t port, std::size_t size, std::size_t depth,
              steady_clock::time_point end)
        : socket_(ctx), size_(size), depth_(depth), end_(end) {
        socket_.connect({asio::ip::make_address("127.0.0.1"), port});
        socket_.set_option(tcp::no_delay(true));
        message_.resize(4 + size, 'x');
        std::uint32_t n = static_cast<std::uint32_t>(size);
        std::memcpy(message_.data(), &n, 4);
    }
    void start() {
        send(depth_);
        read();
    }
    std::vector<std::uint32_t> latencies;

  private:
    void send(std::size_t count) {
        auto now = steady_clock::now();
        for (std::size_t i = 0; i < count; ++i) {
            pending_.append(message_);
            sent_at_.push_back(now);
        }
        flush();
    }
    void flush() {
        if (writing_ || pending_.empty()) return;
        writing_ = true;
        out_.swap(pending_);
        pending_.clear();
        asio::async_write(socket_, asio::buffer(out_), [this](std::error_code ec, std::size_t) {
            writing_ = false;
            if (!ec) flush();
        });
    }
    void read() {
        socket_.async_read_some(asio::buffer(buf_), [this](std::error_code ec, std::size_t n) {
            if (ec) return;
            in_.append(buf_.data(), n);
            std::size_t done = 0, at = 0;
            auto now = steady_clock::now();
            while (in_.size() - at >= 4 + size_) {
                at += 4 + size_;
                latencies.push_back(
                    std::uint32_t(duration_cast<nanoseconds>(now - sent_at_[received_++]).count()));
                ++done;
            }
            in_.erase(0, at);
            if (now < end_)
                send(done);
            else if (received_ == sent_at_.size())
                return;  // drained
            read();
        });
    }
    tcp::socket socket_;
    std::size_t size_, depth_;
    steady_clock::time_point end_;
    std::string message_, pending_, out_, in_;
    std::vector<steady_clock::time_point> sent_at_;
    std::size_t received_ = 0;
    bool writing_ = false;
    std::array<char, 65536> buf_;
};

Result run_raw(std::uint16_t port, std::size_t size, std::size_t depth, double seconds) {
    asio::io_context ctx;
    auto start = steady_clock::now();
    auto end = start + duration_cast<steady_clock::duration>(duration<double>(seconds));
    RawClient c(ctx, port, size, depth, end);
    c.start();
    ctx.run();
    return summarize(c.latencies, duration<double>(steady_clock::now() - start).count());
}

// --- Hawser: the same traffic as console calls ---

Result run_hawser(hawser::Connection conn, std::size_t size, std::size_t depth, double seconds) {
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 2654435761u >> 13);
    std::vector<std::uint32_t> latencies;
    latencies.reserve(1 << 20);
    std::promise<void> finished;
    auto start = steady_clock::now();
    auto end = start + duration_cast<steady_clock::duration>(duration<double>(seconds));
    std::size_t outstanding = depth;
    // One callback per slot: each completion records and issues the next call on the IO thread.
    std::function<void()> issue;
    issue = [&] {
        auto sent = steady_clock::now();
        conn.call("echo", payload, [&, sent](hawser::Result<std::string> r) {
            auto now = steady_clock::now();
            if (!r) std::fprintf(stderr, "call failed: %s\n", r.error().message.c_str());
            latencies.push_back(std::uint32_t(duration_cast<nanoseconds>(now - sent).count()));
            if (now < end)
                issue();
            else if (--outstanding == 0)
                finished.set_value();
        });
    };
    for (std::size_t i = 0; i < depth; ++i) issue();
    finished.get_future().wait();
    return summarize(latencies, duration<double>(steady_clock::now() - start).count());
}

// --- the AEAD bound: seal + open of `size` bytes, both ways, nothing else ---

Result run_aead_bound(std::size_t size, double seconds) {
    constexpr std::size_t piece = 65535 - 16 - 1;
    namespace aead = hawser::detail::chacha_poly;
    std::array<std::uint8_t, aead::key_len> key;
    key.fill(7);
    std::vector<unsigned char> buf(piece + 16, 1);
    std::array<std::uint8_t, aead::nonce_len> nonce{};
    auto start = steady_clock::now();
    auto end = start + duration_cast<steady_clock::duration>(duration<double>(seconds));
    std::size_t trips = 0;
    while (steady_clock::now() < end) {
        for (int way = 0; way < 2; ++way)
            for (std::size_t left = size;;) {
                std::size_t n = std::min(left, piece);
                if (!aead::seal(key, nonce, {}, std::span(buf.data(), n), buf.data()) ||
                    !aead::open(key, nonce, {}, std::span(buf.data(), n + 16), buf.data()))
                    std::abort();
                left -= n;
                if (left == 0) break;
            }
        ++trips;
    }
    Result r;
    r.rate = double(trips) / duration<double>(steady_clock::now() - start).count();
    return r;
}

Result median(std::vector<Result> v) {
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.rate < b.rate; });
    return v[v.size() / 2];
}

double spread(const std::vector<Result>& v) {
    auto [lo, hi] =
        std::minmax_element(v.begin(), v.end(), [](auto& a, auto& b) { return a.rate < b.rate; });
    return (hi->rate - lo->rate) / median(v).rate * 100;
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 1.0;
    int runs = 5;
    std::size_t size = 64;
    std::vector<std::size_t> depths{1, 64};
    std::string only;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--seconds")
            seconds = std::stod(argv[i + 1]);
        else if (a == "--runs")
            runs = std::stoi(argv[i + 1]);
        else if (a == "--size")
            size = std::stoul(argv[i + 1]);
        else if (a == "--depth")
            depths = {std::stoul(argv[i + 1])};
        else if (a == "--only")
            only = argv[i + 1];
    }

    // Raw server: one IO thread.
    asio::io_context raw_ctx;
    tcp::acceptor acceptor(raw_ctx, {asio::ip::make_address("127.0.0.1"), 0});
    raw_accept(acceptor);
    std::thread raw_thread([&] { raw_ctx.run(); });
    auto raw_port = acceptor.local_endpoint().port();

    // Hawser servers and clients: one IO thread each, compression off, plaintext and encrypted.
    struct Side {
        std::unique_ptr<hawser::Server> server;
        std::unique_ptr<hawser::Client> client;
    };
    auto make_side = [](bool encrypted, bool websocket = false) {
        hawser::ServerOptions so;
        so.listen = {"127.0.0.1:0"};
        so.websocket.on_native_ports = websocket;
        so.io_threads = 1;
        so.data_dir = "";
        so.transport.insecure_plaintext = !encrypted;
        so.transport.compression = hawser::Compression::none;
        Side side;
        side.server = std::make_unique<hawser::Server>(so);
        side.server->commands().console(
            "echo", [](const hawser::Request&, std::string_view s) { return std::string(s); });
        side.server->start().value();
        hawser::ClientOptions co;
        co.endpoints = {"127.0.0.1:" + std::to_string(side.server->ports()[0])};
        co.server_public_key = side.server->public_key();
        co.transport = so.transport;
        co.websocket.enabled = websocket;
        co.limits.max_frame_bytes = so.limits.max_frame_bytes;
        side.client = std::make_unique<hawser::Client>(co);
        side.client->connect().value();
        return side;
    };
    auto plain = make_side(false);
    auto secure = make_side(true);
    auto ws = make_side(true, true);

    std::printf("echo_bench: %zu-byte messages, %d interleaved runs of %.1fs each, medians\n", size,
                runs, seconds);
    auto line = [](const char* who, std::size_t depth, const std::vector<Result>& v) {
        auto m = median(v);
        std::printf(
            "in flight %3zu  %-10s %9.0f rt/s  p50 %7.1fus p99 %7.1fus p999 %7.1fus  (spread "
            "%4.1f%%)\n",
            depth, who, m.rate, m.p50, m.p99, m.p999, spread(v));
        return m.rate;
    };
    if (sodium_init() < 0) return 1;
    for (auto depth : depths) {
        if (!only.empty()) {
            std::vector<Result> v;
            for (int r = 0; r < runs; ++r)
                v.push_back(only == "raw" ? run_raw(raw_port, size, depth, seconds)
                            : only == "plaintext"
                                ? run_hawser(plain.client->connection(), size, depth, seconds)
                            : only == "websocket"
                                ? run_hawser(ws.client->connection(), size, depth, seconds)
                                : run_hawser(secure.client->connection(), size, depth, seconds));
            line(only.c_str(), depth, v);
            continue;
        }
        std::vector<Result> raw, hp, hs, hw, bound;
        run_raw(raw_port, size, depth, 0.2);  // warm-up
        run_hawser(plain.client->connection(), size, depth, 0.2);
        run_hawser(secure.client->connection(), size, depth, 0.2);
        run_hawser(ws.client->connection(), size, depth, 0.2);
        for (int r = 0; r < runs; ++r) {
            raw.push_back(run_raw(raw_port, size, depth, seconds));
            hp.push_back(run_hawser(plain.client->connection(), size, depth, seconds));
            hs.push_back(run_hawser(secure.client->connection(), size, depth, seconds));
            hw.push_back(run_hawser(ws.client->connection(), size, depth, seconds));
            bound.push_back(run_aead_bound(size, std::min(seconds, 0.3)));
        }
        double a = line("raw asio", depth, raw), b = line("plaintext", depth, hp),
               c = line("encrypted", depth, hs), e = line("websocket", depth, hw),
               d = median(bound).rate;
        std::printf("in flight %3zu  AEAD bound %9.0f rt/s\n", depth, d);
        std::printf(
            "in flight %3zu  ratio plaintext/raw: %.2f   encrypted/raw: %.2f   "
            "encrypted/plaintext: %.2f   encrypted/AEAD bound: %.2f   websocket/encrypted: %.2f\n",
            depth, b / a, c / a, c / b, c / d, e / c);
    }
    raw_ctx.stop();
    raw_thread.join();
    return 0;
}
