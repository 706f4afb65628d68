// ChaCha20-Poly1305, the IETF variant (RFC 8439) that Noise's ChaChaPoly names: every seal and
// open of the secure transport. Two libraries compute it. libsodium's is the quicker for short
// messages; OpenSSL's libcrypto (linked already for WebSocket's SHA-1) has vectorised code that is
// 1.4 times quicker at 1 KiB and 2.3 times at 64 KiB on these machines; below about 768 bytes
// its fixed cost per message (about 0.6 µs) makes it no quicker (docs/performance.md). Each
// message goes to the quicker one; both give the same bytes, which the tests check. Pure code,
// any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hawser::detail::chacha_poly {

inline constexpr std::size_t key_len = 32;
inline constexpr std::size_t nonce_len = 12;
inline constexpr std::size_t tag_len = 16;
// Messages of at least this many bytes go to OpenSSL's code when it is available.
inline constexpr std::size_t long_message = 768;

using KeyView = std::span<const std::uint8_t, key_len>;
using NonceView = std::span<const std::uint8_t, nonce_len>;

enum class Library { any, libsodium, openssl };

// Writes plaintext.size() + 16 bytes (ciphertext, then tag) to out, which may be
// plaintext.data() itself. False if the library failed; out is then unspecified and must not
// be sent.
[[nodiscard]] bool seal(KeyView key, NonceView nonce, std::span<const std::uint8_t> ad,
                        std::span<const std::uint8_t> plaintext, std::uint8_t* out,
                        Library library = Library::any);
// Writes ciphertext.size() - 16 bytes of plaintext to out, which may be ciphertext.data()
// itself. False if the message is not authentic (or shorter than a tag); then out holds zeros.
[[nodiscard]] bool open(KeyView key, NonceView nonce, std::span<const std::uint8_t> ad,
                        std::span<const std::uint8_t> ciphertext, std::uint8_t* out,
                        Library library = Library::any);
// Whether OpenSSL's ChaCha20-Poly1305 could be loaded (a FIPS-only build may lack it; then
// every message goes to libsodium). The first call loads it: made early, it keeps that off an
// IO thread's first big message.
bool openssl_available() noexcept;

}  // namespace hawser::detail::chacha_poly
