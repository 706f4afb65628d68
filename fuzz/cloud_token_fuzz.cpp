// Session tokens arrive from clients (cloud.resume): any text must verify as the token it is, or
// fail with unauthenticated, never read out of bounds. Half the inputs are real tokens with
// bytes changed, so the MAC check itself is reached, not only the length check.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cloud/session_token.hpp"

using namespace hawser::cloud::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    TokenKey key;
    key.fill(0x5a);
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto direct = verify_token(text, key, 0);
    if (direct && (direct->user == 0 || direct->session == 0)) std::abort();
    if (size < 2) return 0;
    // A genuine token with the input's bytes laid over it from a chosen position.
    auto token = sign_token({1, 2, 1000}, key);
    std::size_t at = data[0] % token.size();
    for (std::size_t i = 1; i < size && at < token.size(); ++i, ++at) token[at] = char(data[i]);
    auto changed = verify_token(token, key, 0);
    if (changed && token != sign_token({changed->user, changed->session, changed->expires_ms}, key))
        std::abort();  // anything that verifies is exactly what the key signs
    return 0;
}
