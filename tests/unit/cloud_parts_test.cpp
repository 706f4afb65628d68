// The cloud service's pure parts: session tokens, attempt limits, client sources, passwords.
#include <gtest/gtest.h>

#include "cloud/attempt_limiter.hpp"
#include "cloud/client_source.hpp"
#include "cloud/password.hpp"
#include "cloud/session_token.hpp"

using namespace hawser;
using namespace hawser::cloud::detail;

namespace {
TokenKey key_of(std::uint8_t fill) {
    TokenKey k;
    k.fill(fill);
    return k;
}
}  // namespace

TEST(CloudToken, RoundTripsItsClaims) {
    auto key = key_of(7);
    TokenClaims claims{42, 99, 1'900'000'000'000};
    auto token = sign_token(claims, key);
    EXPECT_EQ(token.substr(0, 3), "v1.");
    auto back = verify_token(token, key, 1'800'000'000'000);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->user, 42u);
    EXPECT_EQ(back->session, 99u);
    EXPECT_EQ(back->expires_ms, claims.expires_ms);
}

TEST(CloudToken, EveryAlteredCharacterAnotherKeyAndExpiryAreRefused) {
    auto key = key_of(7);
    auto token = sign_token({1, 2, 5000}, key);
    for (std::size_t i = 0; i < token.size(); ++i) {
        for (char c : {'A', 'z', '-', '_', '.', '='}) {
            if (token[i] == c) continue;
            auto t = token;
            t[i] = c;
            auto r = verify_token(t, key, 1000);
            ASSERT_FALSE(r) << "position " << i << " as " << c;
            EXPECT_EQ(r.error().code, Errc::unauthenticated);
        }
    }
    EXPECT_FALSE(verify_token(token, key_of(8), 1000));
    EXPECT_FALSE(verify_token(token.substr(0, token.size() - 1), key, 1000));
    EXPECT_FALSE(verify_token(token + "A", key, 1000));
    EXPECT_FALSE(verify_token("", key, 1000));
    auto expired = verify_token(token, key, 5000);
    ASSERT_FALSE(expired);
    EXPECT_NE(expired.error().message.find("expired"), std::string::npos);
    // Claims naming no user or no session are never valid, even correctly MAC'd.
    EXPECT_FALSE(verify_token(sign_token({0, 2, 5000}, key), key, 1000));
    EXPECT_FALSE(verify_token(sign_token({1, 0, 5000}, key), key, 1000));
}

TEST(CloudLimiter, CountsInWindowsAndStaysBounded) {
    using namespace std::chrono_literals;
    AttemptLimiter limits(2, 1000ms, 2);
    auto t0 = AttemptLimiter::Clock::time_point{} + 1h;
    EXPECT_TRUE(limits.try_count("a", t0));
    EXPECT_TRUE(limits.try_count("a", t0));
    EXPECT_FALSE(limits.try_count("a", t0 + 10ms));
    EXPECT_TRUE(limits.over("a", t0 + 10ms));
    EXPECT_FALSE(limits.over("a", t0 + 1000ms));  // the window ended
    EXPECT_TRUE(limits.try_count("a", t0 + 1000ms));
    // Two keys tracked at most: a third is refused while both windows last...
    EXPECT_TRUE(limits.try_count("b", t0 + 1000ms));
    EXPECT_FALSE(limits.try_count("c", t0 + 1500ms));
    EXPECT_EQ(limits.tracked(), 2u);
    // ...and taken once an old window ended.
    EXPECT_TRUE(limits.try_count("c", t0 + 2500ms));
    EXPECT_LE(limits.tracked(), 2u);
    // count() records a failure even over the limit; over() then says so.
    limits.count("c", t0 + 2600ms);
    limits.count("c", t0 + 2600ms);
    EXPECT_TRUE(limits.over("c", t0 + 2600ms));
}

TEST(CloudLimiter, AFullTableTakesANewKeySoonAfterAWindowEnds) {
    using namespace std::chrono_literals;
    AttemptLimiter limits(5, 1000ms, 2);
    auto t0 = AttemptLimiter::Clock::time_point{} + 1h;
    EXPECT_TRUE(limits.try_count("a", t0));
    EXPECT_TRUE(limits.try_count("b", t0 + 600ms));
    // Full: this sweeps, and finds neither window ended.
    EXPECT_FALSE(limits.try_count("c", t0 + 700ms));
    // "a"'s ended 300 ms after that sweep: a new key is taken then, not a window later.
    EXPECT_TRUE(limits.try_count("c", t0 + 1000ms + 200ms));
    EXPECT_EQ(limits.tracked(), 2u);
    // Both live again ("b" until 1600 ms, "c" until 2200 ms): refused, and not swept each time.
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(limits.try_count("d", t0 + 1300ms + i * 10ms));
    EXPECT_TRUE(limits.try_count("d", t0 + 1700ms));  // "b"'s ended
}

TEST(CloudSource, IPv4IsTheAddressAndIPv6TheSlash64) {
    EXPECT_EQ(client_source("192.0.2.7:5000"), "192.0.2.7");
    EXPECT_EQ(client_source("[2001:db8:1:2:3:4:5:6]:443"), "2001:db8:1:2::/64");
    EXPECT_EQ(client_source("[2001:db8:1:2:ffff::9]:1"), "2001:db8:1:2::/64");
    EXPECT_EQ(client_source("[::ffff:192.0.2.7]:80"), "192.0.2.7");
    EXPECT_EQ(client_source("[::1]:80"), "::/64");
}

TEST(CloudPassword, HashesVerifyAndCarryTheirCost) {
    PasswordCost cheap{1, 8192};
    auto hash = hash_password("correct horse", cheap).value();
    EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u);
    EXPECT_NE(hash.find("m=8,t=1"), std::string::npos);
    EXPECT_TRUE(verify_password(hash, "correct horse"));
    EXPECT_FALSE(verify_password(hash, "correct horsE"));
    EXPECT_FALSE(verify_password("", "x"));
    EXPECT_FALSE(verify_password("not a hash", "x"));
    // Passwords are bytes: a NUL inside counts.
    auto with_nul = hash_password(std::string("a\0b", 3), cheap).value();
    EXPECT_FALSE(verify_password(with_nul, "a"));
    EXPECT_TRUE(verify_password(with_nul, std::string("a\0b", 3)));
    EXPECT_FALSE(hash_password("x", {0, 8192}));
    EXPECT_FALSE(hash_password("x", {1, 100}));
}
