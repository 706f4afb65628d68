#include "wire/chacha_poly.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <climits>
#include <cstring>
#include <memory>

namespace hawser::detail::chacha_poly {

namespace {

// Fetched once (an implicit fetch with every message costs more than a short seal) and never
// freed: a loop thread still sealing during static destruction must not find it gone.
const EVP_CIPHER* openssl_cipher() {
    static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
    return cipher;
}

// One context per thread and direction, not per connection: a context is several hundred
// bytes, and idle connections must stay small. Each is bound to the cipher once; a message then
// sets only the key and nonce, which also resets the AEAD state a failed message left.
struct Context {
    explicit Context(int encrypt) {
        if (ctx && EVP_CipherInit_ex2(ctx.get(), openssl_cipher(), nullptr, nullptr, encrypt,
                                      nullptr) != 1)
            ctx.reset();
    }
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx{EVP_CIPHER_CTX_new(),
                                                                        &EVP_CIPHER_CTX_free};
};
EVP_CIPHER_CTX* sealing_context() {
    thread_local Context c(1);
    return c.ctx.get();
}
EVP_CIPHER_CTX* opening_context() {
    thread_local Context c(0);
    return c.ctx.get();
}

bool use_openssl(Library library, std::size_t size, std::size_t ad_size) {
    if (library == Library::libsodium || size > INT_MAX || ad_size > INT_MAX) return false;
    if (library == Library::any && size < long_message) return false;
    return openssl_cipher() != nullptr;
}

bool failed() {
    ERR_clear_error();  // nothing left on this thread's OpenSSL error queue
    return false;
}

bool openssl_seal(KeyView key, NonceView nonce, std::span<const std::uint8_t> ad,
                  std::span<const std::uint8_t> pt, std::uint8_t* out) {
    auto* ctx = sealing_context();
    int len = 0, last = 0;
    if (!ctx || EVP_CipherInit_ex2(ctx, nullptr, key.data(), nonce.data(), 1, nullptr) != 1 ||
        (!ad.empty() && EVP_EncryptUpdate(ctx, nullptr, &len, ad.data(), int(ad.size())) != 1) ||
        EVP_EncryptUpdate(ctx, out, &len, pt.data(), int(pt.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx, out + len, &last) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(tag_len), out + pt.size()) != 1)
        return failed();
    return true;
}

bool openssl_open(KeyView key, NonceView nonce, std::span<const std::uint8_t> ad,
                  std::span<const std::uint8_t> ct, std::uint8_t* out) {
    auto* ctx = opening_context();
    auto size = ct.size() - tag_len;
    // The tag is copied out first: OpenSSL takes it through a non-const pointer.
    std::uint8_t tag[tag_len];
    std::memcpy(tag, ct.data() + size, tag_len);
    int len = 0, last = 0;
    if (!ctx || EVP_CipherInit_ex2(ctx, nullptr, key.data(), nonce.data(), 0, nullptr) != 1 ||
        (!ad.empty() && EVP_DecryptUpdate(ctx, nullptr, &len, ad.data(), int(ad.size())) != 1) ||
        EVP_DecryptUpdate(ctx, out, &len, ct.data(), int(size)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, int(tag_len), tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + len, &last) != 1)
        return failed();
    return true;
}

}  // namespace

bool openssl_available() noexcept {
    return openssl_cipher() != nullptr;
}

bool seal(KeyView key, NonceView nonce, std::span<const std::uint8_t> ad,
          std::span<const std::uint8_t> pt, std::uint8_t* out, Library library) {
    if (use_openssl(library, pt.size(), ad.size())) return openssl_seal(key, nonce, ad, pt, out);
    if (library == Library::openssl) return false;
    unsigned long long len = 0;
    return crypto_aead_chacha20poly1305_ietf_encrypt(out, &len, pt.data(), pt.size(), ad.data(),
                                                     ad.size(), nullptr, nonce.data(),
                                                     key.data()) == 0;
}

bool open(KeyView key, NonceView nonce, std::span<const std::uint8_t> ad,
          std::span<const std::uint8_t> ct, std::uint8_t* out, Library library) {
    if (ct.size() < tag_len) return false;
    auto size = ct.size() - tag_len;
    bool ok = false;
    if (use_openssl(library, size, ad.size())) {
        ok = openssl_open(key, nonce, ad, ct, out);
    } else if (library != Library::openssl) {
        unsigned long long len = 0;
        ok = crypto_aead_chacha20poly1305_ietf_decrypt(out, &len, nullptr, ct.data(), ct.size(),
                                                       ad.data(), ad.size(), nonce.data(),
                                                       key.data()) == 0;
    }
    // OpenSSL writes the plaintext before it checks the tag: nothing unauthentic may remain.
    if (!ok && size > 0) sodium_memzero(out, size);
    return ok;
}

}  // namespace hawser::detail::chacha_poly
