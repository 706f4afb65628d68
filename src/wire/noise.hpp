// The Noise Protocol Framework, revision 34, for the two patterns Hawser uses:
//   Noise_NK_25519_ChaChaPoly_BLAKE2b  (clients pin the server's static key)
//   Noise_XX_25519_ChaChaPoly_BLAKE2b  (mutual authentication, for cluster nodes)
// CipherState, SymmetricState and HandshakeState follow the specification's definitions
// (sections 5.1-5.3), with libsodium's X25519, ChaCha20-Poly1305 (IETF) and BLAKE2b; HMAC and
// HKDF are the spec's, over BLAKE2b. Checked against the public test vectors (tests/data/).
// Pure code, no IO; one object per connection, used by its IO thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/error.hpp"

namespace hawser::detail::noise {

inline constexpr std::size_t dh_len = 32;
inline constexpr std::size_t hash_len = 64;
inline constexpr std::size_t tag_len = 16;
inline constexpr std::size_t max_message = 65535;  // a Noise message, tag included

using Key = std::array<std::uint8_t, 32>;
using Hash = std::array<std::uint8_t, hash_len>;

struct KeyPair {
    Key public_key{};
    Key private_key{};
    static KeyPair generate();
    static KeyPair from_private(const Key& private_key);
};

class CipherState {
  public:
    void initialize_key(const Key& k) noexcept {
        k_ = k;
        n_ = 0;
        has_key_ = true;
    }
    bool has_key() const noexcept { return has_key_; }
    std::uint64_t nonce() const noexcept { return n_; }
    void set_nonce(std::uint64_t n) noexcept { n_ = n; }

    // Writes plaintext.size() + 16 bytes to out (or a copy without a key). False once the nonce
    // space is exhausted or the cipher fails; then out must not be sent.
    [[nodiscard]] bool encrypt_with_ad(std::span<const std::uint8_t> ad,
                                       std::span<const std::uint8_t> plaintext, std::uint8_t* out);
    // Writes ciphertext.size() - 16 bytes to out; false if authentication fails.
    bool decrypt_with_ad(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> ciphertext,
                         std::uint8_t* out);
    // REKEY(k): k = ENCRYPT(k, 2^64-1, empty, 32 zero bytes)[0..32]. The nonce is kept.
    void rekey();

  private:
    Key k_{};
    std::uint64_t n_ = 0;
    bool has_key_ = false;
};

class SymmetricState {
  public:
    explicit SymmetricState(std::string_view protocol_name);
    void mix_key(std::span<const std::uint8_t> input_key_material);
    void mix_hash(std::span<const std::uint8_t> data);
    bool encrypt_and_hash(std::span<const std::uint8_t> plaintext, std::vector<std::uint8_t>& out);
    bool decrypt_and_hash(std::span<const std::uint8_t> ciphertext, std::vector<std::uint8_t>& out);
    std::pair<CipherState, CipherState> split() const;
    const Hash& handshake_hash() const noexcept { return h_; }
    bool has_key() const noexcept { return cipher_.has_key(); }

  private:
    CipherState cipher_;
    Hash ck_{};
    Hash h_{};
};

std::string to_hex(const Key& key);
std::optional<Key> key_from_hex(std::string_view hex);  // exactly 64 hex digits

enum class Pattern : std::uint8_t { nk = 1, xx = 2 };
std::string protocol_name(Pattern p);

class HandshakeState {
  public:
    struct Config {
        Pattern pattern = Pattern::nk;
        bool initiator = true;
        std::vector<std::uint8_t> prologue;
        std::optional<KeyPair> static_keys;      // s: the responder's in NK; both in XX
        std::optional<Key> remote_static;        // rs: pinned server key for the NK initiator
        std::optional<KeyPair> fixed_ephemeral;  // tests only: the vectors' generated e
    };
    explicit HandshakeState(Config config);

    bool my_turn() const noexcept;
    bool finished() const noexcept { return step_ == steps(); }
    // Appends one handshake message (with an encrypted payload once a key exists) to out.
    Result<void> write_message(std::span<const std::uint8_t> payload,
                               std::vector<std::uint8_t>& out);
    // Reads one handshake message; returns its payload.
    Result<std::vector<std::uint8_t>> read_message(std::span<const std::uint8_t> message);
    // After the last message: (cipher for sending, cipher for receiving) for this side.
    std::pair<CipherState, CipherState> split() const;
    const std::optional<Key>& remote_static() const noexcept { return rs_; }
    const Hash& handshake_hash() const noexcept { return symmetric_.handshake_hash(); }

    enum class Token { e, s, ee, es, se };

  private:
    std::size_t steps() const noexcept { return pattern_ == Pattern::nk ? 2 : 3; }
    bool dh(const std::optional<KeyPair>& local, const std::optional<Key>& remote);
    bool mix_dh(Token token);  // ee, es, se: the same for writer and reader

    Pattern pattern_;
    bool initiator_;
    SymmetricState symmetric_;
    std::optional<KeyPair> s_, e_, fixed_e_;
    std::optional<Key> rs_, re_;
    std::size_t step_ = 0;
};

}  // namespace hawser::detail::noise
