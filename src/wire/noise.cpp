#include "wire/noise.hpp"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

#include "wire/chacha_poly.hpp"

namespace hawser::detail::noise {

namespace {

constexpr std::size_t block_len = 128;

struct SodiumInit {
    SodiumInit() {
        if (sodium_init() < 0) std::abort();     // no safe randomness: nothing secure can run
        (void)chacha_poly::openssl_available();  // loaded now, not during an IO thread's read
    }
};
void ensure_sodium() {
    static SodiumInit once;
}

Hash blake2b(std::initializer_list<std::span<const std::uint8_t>> parts) {
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, nullptr, 0, hash_len);
    for (auto p : parts) crypto_generichash_blake2b_update(&st, p.data(), p.size());
    Hash out;
    crypto_generichash_blake2b_final(&st, out.data(), out.size());
    return out;
}

// HMAC-HASH as in RFC 2104 with HASH = BLAKE2b-512 and a 128-byte block (Noise spec 4.3).
Hash hmac(std::span<const std::uint8_t> key,
          std::initializer_list<std::span<const std::uint8_t>> data) {
    std::array<std::uint8_t, block_len> ipad{}, opad{};
    std::memcpy(ipad.data(), key.data(), key.size());  // keys here are at most 64 bytes
    std::memcpy(opad.data(), key.data(), key.size());
    for (auto& b : ipad) b ^= 0x36;
    for (auto& b : opad) b ^= 0x5c;
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, nullptr, 0, hash_len);
    crypto_generichash_blake2b_update(&st, ipad.data(), ipad.size());
    for (auto p : data) crypto_generichash_blake2b_update(&st, p.data(), p.size());
    Hash inner;
    crypto_generichash_blake2b_final(&st, inner.data(), inner.size());
    Hash out = blake2b({opad, inner});
    sodium_memzero(ipad.data(), ipad.size());
    sodium_memzero(opad.data(), opad.size());
    return out;
}

// HKDF(chaining_key, input_key_material, 2) (Noise spec 4.3).
std::pair<Hash, Hash> hkdf2(const Hash& ck, std::span<const std::uint8_t> ikm) {
    Hash temp = hmac(ck, {ikm});
    const std::uint8_t one = 1, two = 2;
    Hash out1 = hmac(temp, {std::span(&one, 1)});
    Hash out2 = hmac(temp, {out1, std::span(&two, 1)});
    sodium_memzero(temp.data(), temp.size());
    return {out1, out2};
}

Key truncate(const Hash& h) {
    Key k;
    std::memcpy(k.data(), h.data(), k.size());
    return k;
}

void nonce_bytes(std::uint64_t n, std::uint8_t out[12]) {
    std::memset(out, 0, 4);
    for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
}

}  // namespace

std::string to_hex(const Key& key) {
    char out[2 * 32 + 1];
    sodium_bin2hex(out, sizeof out, key.data(), key.size());
    return out;
}

std::optional<Key> key_from_hex(std::string_view hex) {
    ensure_sodium();
    Key k;
    std::size_t len = 0;
    const char* end = nullptr;
    if (hex.size() != 64 ||
        sodium_hex2bin(k.data(), k.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
        len != 32)
        return std::nullopt;
    return k;
}

KeyPair KeyPair::generate() {
    ensure_sodium();
    Key priv;
    randombytes_buf(priv.data(), priv.size());
    return from_private(priv);
}

KeyPair KeyPair::from_private(const Key& private_key) {
    ensure_sodium();
    KeyPair kp;
    kp.private_key = private_key;
    crypto_scalarmult_curve25519_base(kp.public_key.data(), private_key.data());
    return kp;
}

bool CipherState::encrypt_with_ad(std::span<const std::uint8_t> ad,
                                  std::span<const std::uint8_t> pt, std::uint8_t* out) {
    if (!has_key_) {
        if (!pt.empty()) std::memmove(out, pt.data(), pt.size());
        return true;
    }
    if (n_ == ~std::uint64_t{0}) return false;  // 2^64-1 is reserved for rekey
    std::uint8_t nonce[12];
    nonce_bytes(n_, nonce);
    if (!chacha_poly::seal(k_, nonce, ad, pt, out)) return false;
    ++n_;
    return true;
}

bool CipherState::decrypt_with_ad(std::span<const std::uint8_t> ad,
                                  std::span<const std::uint8_t> ct, std::uint8_t* out) {
    if (!has_key_) {
        if (!ct.empty()) std::memmove(out, ct.data(), ct.size());
        return true;
    }
    if (ct.size() < tag_len || n_ == ~std::uint64_t{0}) return false;
    std::uint8_t nonce[12];
    nonce_bytes(n_, nonce);
    if (!chacha_poly::open(k_, nonce, ad, ct, out)) return false;  // the nonce stays
    ++n_;
    return true;
}

void CipherState::rekey() {
    std::uint8_t nonce[12];
    nonce_bytes(~std::uint64_t{0}, nonce);
    std::array<std::uint8_t, 32> zeros{};
    std::array<std::uint8_t, 32 + tag_len> out;
    if (!chacha_poly::seal(k_, nonce, {}, zeros, out.data(), chacha_poly::Library::libsodium))
        std::abort();  // libsodium cannot fail here; a key left unchanged would be worse
    std::memcpy(k_.data(), out.data(), k_.size());
    sodium_memzero(out.data(), out.size());
}

SymmetricState::SymmetricState(std::string_view name) {
    ensure_sodium();
    if (name.size() <= hash_len) {
        std::memcpy(h_.data(), name.data(), name.size());
    } else {
        h_ = blake2b({std::span(reinterpret_cast<const std::uint8_t*>(name.data()), name.size())});
    }
    ck_ = h_;
}

void SymmetricState::mix_key(std::span<const std::uint8_t> ikm) {
    auto [ck, temp_k] = hkdf2(ck_, ikm);
    ck_ = ck;
    cipher_.initialize_key(truncate(temp_k));
    sodium_memzero(temp_k.data(), temp_k.size());
}

void SymmetricState::mix_hash(std::span<const std::uint8_t> data) {
    h_ = blake2b({h_, data});
}

bool SymmetricState::encrypt_and_hash(std::span<const std::uint8_t> pt,
                                      std::vector<std::uint8_t>& out) {
    std::size_t at = out.size();
    out.resize(at + pt.size() + (cipher_.has_key() ? tag_len : 0));
    if (!cipher_.encrypt_with_ad(h_, pt, out.data() + at)) return false;
    mix_hash(std::span(out).subspan(at));
    return true;
}

bool SymmetricState::decrypt_and_hash(std::span<const std::uint8_t> ct,
                                      std::vector<std::uint8_t>& out) {
    std::size_t len =
        cipher_.has_key() ? (ct.size() < tag_len ? 0 : ct.size() - tag_len) : ct.size();
    if (cipher_.has_key() && ct.size() < tag_len) return false;
    out.resize(len);
    if (!cipher_.decrypt_with_ad(h_, ct, out.data())) return false;
    mix_hash(ct);
    return true;
}

std::pair<CipherState, CipherState> SymmetricState::split() const {
    auto [k1, k2] = hkdf2(ck_, {});
    CipherState c1, c2;
    c1.initialize_key(truncate(k1));
    c2.initialize_key(truncate(k2));
    return {c1, c2};
}

std::string protocol_name(Pattern p) {
    return p == Pattern::nk ? "Noise_NK_25519_ChaChaPoly_BLAKE2b"
                            : "Noise_XX_25519_ChaChaPoly_BLAKE2b";
}

HandshakeState::HandshakeState(Config c)
    : pattern_(c.pattern),
      initiator_(c.initiator),
      symmetric_(protocol_name(c.pattern)),
      s_(c.static_keys),
      fixed_e_(c.fixed_ephemeral),
      rs_(c.remote_static) {
    symmetric_.mix_hash(c.prologue);
    if (pattern_ == Pattern::nk) {  // pre-message: <- s
        if (initiator_ && rs_) symmetric_.mix_hash(*rs_);
        if (!initiator_ && s_) symmetric_.mix_hash(s_->public_key);
    }
}

bool HandshakeState::my_turn() const noexcept {
    return !finished() && ((step_ % 2 == 0) == initiator_);
}

bool HandshakeState::dh(const std::optional<KeyPair>& local, const std::optional<Key>& remote) {
    if (!local || !remote) return false;
    Key shared;
    if (crypto_scalarmult_curve25519(shared.data(), local->private_key.data(), remote->data()) != 0)
        return false;  // a low-order point: all-zero output
    symmetric_.mix_key(shared);
    sodium_memzero(shared.data(), shared.size());
    return true;
}

bool HandshakeState::mix_dh(Token t) {
    switch (t) {
        case Token::ee:
            return dh(e_, re_);
        case Token::es:
            return initiator_ ? dh(e_, rs_) : dh(s_, re_);
        case Token::se:
            return initiator_ ? dh(s_, re_) : dh(e_, rs_);
        default:
            return false;
    }
}

// Tokens of each message, for both patterns (Noise spec 7.4).
namespace {
using Tok = HandshakeState::Token;
std::span<const Tok> tokens(Pattern p, std::size_t step) {
    static constexpr Tok nk0[] = {Tok::e, Tok::es}, nk1[] = {Tok::e, Tok::ee};
    static constexpr Tok xx0[] = {Tok::e}, xx1[] = {Tok::e, Tok::ee, Tok::s, Tok::es},
                         xx2[] = {Tok::s, Tok::se};
    if (p == Pattern::nk) return step == 0 ? std::span<const Tok>(nk0) : std::span<const Tok>(nk1);
    if (step == 0) return xx0;
    if (step == 1) return xx1;
    return xx2;
}
Error fail(std::string why) {
    return Error{Errc::invalid_argument, "handshake: " + why};
}
}  // namespace

Result<void> HandshakeState::write_message(std::span<const std::uint8_t> payload,
                                           std::vector<std::uint8_t>& out) {
    if (!my_turn()) return fail("not this side's turn");
    for (Tok t : tokens(pattern_, step_)) {
        switch (t) {
            case Tok::e:
                e_ = fixed_e_ ? *fixed_e_ : KeyPair::generate();
                out.insert(out.end(), e_->public_key.begin(), e_->public_key.end());
                symmetric_.mix_hash(e_->public_key);
                break;
            case Tok::s:
                if (!s_) return fail("no static key");
                if (!symmetric_.encrypt_and_hash(s_->public_key, out))
                    return fail("nonce exhausted");
                break;
            case Tok::ee:
            case Tok::es:
            case Tok::se:
                if (!mix_dh(t)) return fail("bad DH");
                break;
        }
    }
    if (!symmetric_.encrypt_and_hash(payload, out)) return fail("nonce exhausted");
    ++step_;
    return {};
}

Result<std::vector<std::uint8_t>> HandshakeState::read_message(std::span<const std::uint8_t> msg) {
    if (finished() || my_turn()) return fail("unexpected message");
    for (Tok t : tokens(pattern_, step_)) {
        switch (t) {
            case Tok::e: {
                if (msg.size() < dh_len) return fail("message too short");
                Key re;
                std::memcpy(re.data(), msg.data(), dh_len);
                re_ = re;
                symmetric_.mix_hash(re);
                msg = msg.subspan(dh_len);
                break;
            }
            case Tok::s: {
                std::size_t len = dh_len + (symmetric_.has_key() ? tag_len : 0);
                if (msg.size() < len) return fail("message too short");
                std::vector<std::uint8_t> rs;
                if (!symmetric_.decrypt_and_hash(msg.first(len), rs))
                    return fail("bad static key (MAC)");
                Key k;
                std::memcpy(k.data(), rs.data(), dh_len);
                rs_ = k;
                msg = msg.subspan(len);
                break;
            }
            case Tok::ee:
            case Tok::es:
            case Tok::se:
                if (!mix_dh(t)) return fail("bad DH");
                break;
        }
    }
    std::vector<std::uint8_t> payload;
    if (!symmetric_.decrypt_and_hash(msg, payload)) return fail("bad payload (MAC)");
    ++step_;
    return payload;
}

std::pair<CipherState, CipherState> HandshakeState::split() const {
    auto [c1, c2] = symmetric_.split();  // c1: initiator -> responder
    return initiator_ ? std::pair{c1, c2} : std::pair{c2, c1};
}

}  // namespace hawser::detail::noise
