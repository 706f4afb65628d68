#include "cloud/session_token.hpp"

#include <sodium.h>

#include "rpc/key_file.hpp"

namespace hawser::cloud::detail {

namespace {

constexpr std::string_view prefix = "v1.";
constexpr std::uint8_t version = 1;
constexpr std::size_t claims_bytes = 25, mac_bytes = 32, raw_bytes = claims_bytes + mac_bytes;

void put64(std::uint8_t* at, std::uint64_t v) {
    for (int i = 7; i >= 0; --i, v >>= 8) at[i] = std::uint8_t(v);
}
std::uint64_t get64(const std::uint8_t* at) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | at[i];
    return v;
}

void mac(const std::uint8_t* claims, const TokenKey& key, std::uint8_t* out) {
    crypto_generichash(out, mac_bytes, claims, claims_bytes, key.data(), key.size());
}

Error invalid() {
    return {Errc::unauthenticated, "the session token is not valid"};
}

}  // namespace

std::string sign_token(const TokenClaims& claims, const TokenKey& key) {
    std::uint8_t raw[raw_bytes];
    raw[0] = version;
    put64(raw + 1, claims.user);
    put64(raw + 9, claims.session);
    put64(raw + 17, std::uint64_t(claims.expires_ms));
    mac(raw, key, raw + claims_bytes);
    char text[sodium_base64_ENCODED_LEN(raw_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(text, sizeof text, raw, raw_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return std::string(prefix) + text;
}

Result<TokenClaims> verify_token(std::string_view token, const TokenKey& key, std::int64_t now_ms) {
    constexpr std::size_t text_bytes =
        sodium_base64_ENCODED_LEN(raw_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
    if (token.size() != prefix.size() + text_bytes || !token.starts_with(prefix)) return invalid();
    token.remove_prefix(prefix.size());
    std::uint8_t raw[raw_bytes];
    std::size_t decoded = 0;
    const char* end = nullptr;
    if (sodium_base642bin(raw, sizeof raw, token.data(), token.size(), nullptr, &decoded, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        decoded != raw_bytes || end != token.data() + token.size())
        return invalid();
    std::uint8_t expected[mac_bytes];
    mac(raw, key, expected);
    if (crypto_verify_32(expected, raw + claims_bytes) != 0 || raw[0] != version) return invalid();
    TokenClaims claims{get64(raw + 1), get64(raw + 9), std::int64_t(get64(raw + 17))};
    if (claims.user == 0 || claims.session == 0) return invalid();
    if (claims.expires_ms <= now_ms)
        return Error{Errc::unauthenticated, "the session expired; log in again"};
    return claims;
}

Result<TokenKey> load_or_create_token_key(const std::string& path) {
    if (sodium_init() < 0) return Error{Errc::storage_error, "libsodium cannot start"};
    auto key = hawser::detail::load_or_create_secret_file(path);
    if (!key) return key.error();
    TokenKey out;
    std::copy(key->begin(), key->end(), out.begin());
    return out;
}

}  // namespace hawser::cloud::detail
