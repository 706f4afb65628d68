// The raw baseline's sealed variant (raw_seal.hpp).
#include "raw_seal.hpp"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

#include "raw_wire.hpp"
#include "wire/chacha_poly.hpp"

namespace hawser::bench::raw {

namespace cp = hawser::detail::chacha_poly;

namespace {

struct StaticKey {
    std::array<std::uint8_t, 32> secret{}, public_key{};
    StaticKey() {
        if (::sodium_init() < 0) throw std::runtime_error("raw baseline: libsodium cannot start");
        static constexpr std::string_view seed = "hawser-bench raw baseline server key";
        crypto_generichash(secret.data(), secret.size(),
                           reinterpret_cast<const unsigned char*>(seed.data()), seed.size(),
                           nullptr, 0);
        crypto_scalarmult_base(public_key.data(), secret.data());
    }
};

const StaticKey& server_static() {
    static const StaticKey key;
    return key;
}

// Noise's: four zero bytes, then the counter, little-endian.
std::array<std::uint8_t, cp::nonce_len> nonce(std::uint64_t n) {
    std::array<std::uint8_t, cp::nonce_len> out{};
    for (int i = 0; i < 8; ++i) out[std::size_t(4 + i)] = std::uint8_t(n >> (8 * i));
    return out;
}

const std::uint8_t* bytes(std::string_view s) {
    return reinterpret_cast<const std::uint8_t*>(s.data());
}

}  // namespace

Sealer Sealer::client() {
    server_static();  // libsodium is ready
    Sealer s;
    crypto_box_keypair(s.public_.data(), s.secret_.data());
    return s;
}

std::optional<Sealer> Sealer::server(std::string_view client_hello) {
    if (client_hello.size() != hello_bytes) return std::nullopt;
    const auto& static_key = server_static();
    Sealer s;
    crypto_box_keypair(s.public_.data(), s.secret_.data());
    std::uint8_t ee[32], es[32];
    if (crypto_scalarmult(ee, s.secret_.data(), bytes(client_hello)) != 0 ||
        crypto_scalarmult(es, static_key.secret.data(), bytes(client_hello)) != 0)
        return std::nullopt;
    s.derive(ee, es, bytes(client_hello), s.public_.data(), false);
    return s;
}

std::string_view Sealer::hello() const {
    return {reinterpret_cast<const char*>(public_.data()), public_.size()};
}

std::optional<std::string_view> Sealer::hello_at(std::string_view in) {
    if (in.size() >= 5) {
        std::uint32_t len = 0;
        std::memcpy(&len, in.data(), 4);
        if (len != 1 + hello_bytes || std::uint8_t(in[4]) != raw::hello) return std::nullopt;
    }
    if (in.size() < hello_frame_bytes) return std::string_view();
    return in.substr(5, hello_bytes);
}

void Sealer::append_hello(std::string& out) const {
    append_frame(out, raw::hello, hello());
}

bool Sealer::finish(std::string_view server_hello) {
    if (server_hello.size() != hello_bytes) return false;
    std::uint8_t ee[32], es[32];
    if (crypto_scalarmult(ee, secret_.data(), bytes(server_hello)) != 0 ||
        crypto_scalarmult(es, secret_.data(), server_static().public_key.data()) != 0)
        return false;
    derive(ee, es, public_.data(), bytes(server_hello), true);
    return true;
}

void Sealer::derive(const std::uint8_t* ee, const std::uint8_t* es, const std::uint8_t* client_e,
                    const std::uint8_t* server_e, bool is_client) {
    std::uint8_t input[128], keys[64];
    std::memcpy(input, ee, 32);
    std::memcpy(input + 32, es, 32);
    std::memcpy(input + 64, client_e, 32);
    std::memcpy(input + 96, server_e, 32);
    crypto_generichash(keys, sizeof keys, input, sizeof input, nullptr, 0);
    std::memcpy((is_client ? send_key_ : receive_key_).data(), keys, 32);
    std::memcpy((is_client ? receive_key_ : send_key_).data(), keys + 32, 32);
    sodium_memzero(input, sizeof input);
    sodium_memzero(keys, sizeof keys);
    sodium_memzero(secret_.data(), secret_.size());  // ephemeral: done with
}

void Sealer::seal(std::string_view plain, std::string& out) {
    for (std::size_t at = 0; at < plain.size(); at += max_record) {
        auto piece = plain.substr(at, max_record);
        auto len = std::uint32_t(piece.size() + cp::tag_len);
        auto start = out.size();
        out.resize(start + 4 + len);
        auto* p = reinterpret_cast<std::uint8_t*>(out.data() + start);
        std::memcpy(p, &len, 4);  // little-endian hosts only, as raw_wire.hpp
        auto n = nonce(sent_++);
        if (!cp::seal(send_key_, n, {}, {bytes(piece), piece.size()}, p + 4))
            throw std::runtime_error("raw baseline: ChaCha20-Poly1305 failed");
    }
}

long Sealer::open(std::string_view in, std::string& plain) {
    std::size_t used = 0;
    while (in.size() - used >= 4) {
        std::uint32_t len = 0;
        std::memcpy(&len, in.data() + used, 4);
        if (len < cp::tag_len || len > max_record + cp::tag_len) return -1;
        if (in.size() - used - 4 < len) break;
        auto start = plain.size();
        plain.resize(start + len - cp::tag_len);
        auto n = nonce(received_++);
        if (!cp::open(receive_key_, n, {}, {bytes(in.substr(used + 4)), len},
                      reinterpret_cast<std::uint8_t*>(plain.data() + start)))
            return -1;
        used += 4 + len;
    }
    return long(used);
}

}  // namespace hawser::bench::raw
