// Noise NK handshakes per second, client side and server side, against the raw libsodium bound
// measured in the same run: the X25519 work each side of NK cannot avoid (one key generation and
// two Diffie-Hellman operations). Prints Hawser's rate as a fraction of that bound.
//   handshake_bench [--count N] [--runs R]
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "wire/secure_channel.hpp"

using namespace hawser::detail;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// The floor for one side of NK: e = keygen; two DH.
double raw_bound(int n) {
    noise::Key priv{}, pub{}, shared{}, peer = noise::KeyPair::generate().public_key;
    auto t = Clock::now();
    for (int i = 0; i < n; ++i) {
        randombytes_buf(priv.data(), priv.size());
        crypto_scalarmult_curve25519_base(pub.data(), priv.data());
        if (crypto_scalarmult_curve25519(shared.data(), priv.data(), peer.data()) != 0)
            std::abort();
        if (crypto_scalarmult_curve25519(shared.data(), priv.data(), pub.data()) != 0) std::abort();
    }
    return n / seconds_since(t);
}

// Full handshakes in memory; time spent on each side measured separately.
std::pair<double, double> hawser_rates(int n, const noise::KeyPair& server_keys) {
    double client_s = 0, server_s = 0;
    for (int i = 0; i < n; ++i) {
        auto t0 = Clock::now();
        ClientHandshake client({hawser::ProtocolMark{}, false, server_keys.public_key});
        auto hello = client.hello();
        client_s += seconds_since(t0);
        auto t1 = Clock::now();
        ServerHandshake server(hawser::ProtocolMark{}, false, server_keys);
        auto step = server.on_frame(hello);
        auto st = server.transport(Clock::now());
        server_s += seconds_since(t1);
        auto t2 = Clock::now();
        auto done = client.on_frame(step->reply);
        auto ct = client.transport(Clock::now());
        client_s += seconds_since(t2);
        if (!done || !done->done || !st || !ct) std::abort();
    }
    return {n / client_s, n / server_s};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int n = 2000, runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--count")
            n = std::stoi(argv[i + 1]);
        else if (a == "--runs")
            runs = std::stoi(argv[i + 1]);
    }
    if (sodium_init() < 0) return 1;
    auto server_keys = noise::KeyPair::generate();
    raw_bound(200);
    hawser_rates(200, server_keys);
    std::vector<double> raw, client, server;
    for (int r = 0; r < runs; ++r) {
        raw.push_back(raw_bound(n));
        auto [c, s] = hawser_rates(n, server_keys);
        client.push_back(c);
        server.push_back(s);
    }
    double b = median(raw), c = median(client), s = median(server);
    std::printf(
        "handshake_bench: Noise_NK_25519_ChaChaPoly_BLAKE2b, %d handshakes x %d interleaved runs, "
        "medians, one core\n",
        n, runs);
    std::printf("  raw libsodium bound (keygen + 2 DH): %8.0f /s\n", b);
    std::printf("  hawser client side:                  %8.0f /s  ratio %.2f\n", c, c / b);
    std::printf("  hawser server side:                  %8.0f /s  ratio %.2f\n", s, s / b);
    return 0;
}
