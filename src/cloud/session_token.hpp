// Session tokens: what a login hands the client so that a reconnect skips the password hash.
// "v1." then base64url (no padding) of version(1) | user(8) | session(8) | expires(8, Unix ms),
// all big-endian, followed by a 32-byte keyed BLAKE2b MAC of those 25 bytes under the cloud's
// secret key. The MAC makes a token unforgeable and its expiry binding; the session record it
// names makes it revocable (no record, no session).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "hawser/error.hpp"

namespace hawser::cloud::detail {

using TokenKey = std::array<std::uint8_t, 32>;

struct TokenClaims {
    std::uint64_t user = 0;
    std::uint64_t session = 0;
    std::int64_t expires_ms = 0;  // Unix time
};

std::string sign_token(const TokenClaims& claims, const TokenKey& key);
// unauthenticated for anything but an intact, unexpired token made with `key`.
Result<TokenClaims> verify_token(std::string_view token, const TokenKey& key, std::int64_t now_ms);

// The key in `path` (64 hex digits), or a new random one written there with mode 0600 (and its
// directory created) when the file does not exist.
Result<TokenKey> load_or_create_token_key(const std::string& path);

}  // namespace hawser::cloud::detail
