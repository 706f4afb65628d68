// The two libraries behind the secure transport's ChaCha20-Poly1305 give the same bytes, and
// neither accepts a forged message.
#include "wire/chacha_poly.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <vector>

using namespace hawser::detail::chacha_poly;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes random_bytes(std::size_t n) {
    if (sodium_init() < 0) std::abort();
    Bytes b(n);
    if (n) randombytes_buf(b.data(), n);
    return b;
}

struct Inputs {
    std::array<std::uint8_t, key_len> key{};
    std::array<std::uint8_t, nonce_len> nonce{};
    Bytes ad, plaintext;
};

Inputs random_inputs(std::size_t size, std::size_t ad_size) {
    Inputs in;
    randombytes_buf(in.key.data(), in.key.size());
    randombytes_buf(in.nonce.data(), in.nonce.size());
    in.ad = random_bytes(ad_size);
    in.plaintext = random_bytes(size);
    return in;
}

Bytes sealed(const Inputs& in, Library library) {
    Bytes out(in.plaintext.size() + tag_len);
    EXPECT_TRUE(seal(in.key, in.nonce, in.ad, in.plaintext, out.data(), library));
    return out;
}

const std::size_t sizes[] = {0, 1, 15, 16, 17, 63, 64, 65, 511, 767, 768, 769, 1500, 4096, 65519};

}  // namespace

TEST(ChaChaPoly, BothLibrariesSealAndOpenTheSameBytes) {
    ASSERT_EQ(sodium_init() < 0, false);
    if (!openssl_available()) GTEST_SKIP() << "this OpenSSL has no ChaCha20-Poly1305";
    for (auto size : sizes)
        for (std::size_t ad_size : {0, 1, 64}) {
            SCOPED_TRACE(testing::Message() << size << " bytes, " << ad_size << " of AD");
            auto in = random_inputs(size, ad_size);
            auto a = sealed(in, Library::libsodium), b = sealed(in, Library::openssl),
                 c = sealed(in, Library::any);
            EXPECT_EQ(a, b);
            EXPECT_EQ(a, c);
            for (auto library : {Library::libsodium, Library::openssl, Library::any}) {
                Bytes opened(size);
                ASSERT_TRUE(open(in.key, in.nonce, in.ad, a, opened.data(), library));
                EXPECT_EQ(opened, in.plaintext);
            }
        }
}

TEST(ChaChaPoly, SealsAndOpensInPlace) {
    for (auto size : sizes) {
        SCOPED_TRACE(size);
        auto in = random_inputs(size, 0);
        auto expected = sealed(in, Library::libsodium);
        Bytes buffer = in.plaintext;
        buffer.resize(size + tag_len);
        ASSERT_TRUE(seal(in.key, in.nonce, {}, std::span(buffer.data(), size), buffer.data()));
        EXPECT_EQ(buffer, expected);
        ASSERT_TRUE(open(in.key, in.nonce, {}, buffer, buffer.data()));
        EXPECT_TRUE(std::equal(in.plaintext.begin(), in.plaintext.end(), buffer.begin()));
    }
}

TEST(ChaChaPoly, AForgedMessageIsRefusedAndLeavesNothingBehind) {
    std::vector<Library> libraries{Library::libsodium, Library::any};
    if (openssl_available()) libraries.push_back(Library::openssl);
    for (std::size_t size : {0, 100, 768, 5000}) {
        auto in = random_inputs(size, 8);
        auto good = sealed(in, Library::libsodium);
        auto other_nonce = in.nonce;
        other_nonce[4] ^= 1;
        auto other_ad = in.ad;
        other_ad[0] ^= 1;
        for (auto library : libraries) {
            SCOPED_TRACE(testing::Message() << size << " bytes, library " << int(library));
            auto refused = [&](const Bytes& message, const std::array<std::uint8_t, 12>& nonce,
                               const Bytes& ad) {
                Bytes out(message.size() - tag_len, 0xAA);
                bool ok = open(in.key, nonce, ad, message, out.data(), library);
                EXPECT_EQ(out, Bytes(out.size(), 0)) << "unauthentic plaintext left in out";
                return !ok;
            };
            for (std::size_t at : {std::size_t{0}, size / 2, good.size() - 1}) {
                auto forged = good;
                forged[at] ^= 0x01;  // a byte of the ciphertext, or of the tag
                EXPECT_TRUE(refused(forged, in.nonce, in.ad)) << "flipped byte " << at;
            }
            EXPECT_TRUE(refused(good, other_nonce, in.ad));
            EXPECT_TRUE(refused(good, in.nonce, other_ad));
            // In place, as the secure transport opens: the forged bytes are not left as text.
            auto forged = good;
            forged[size / 3] ^= 0x80;
            EXPECT_FALSE(open(in.key, in.nonce, in.ad, forged, forged.data(), library));
            EXPECT_TRUE(std::all_of(forged.begin(), forged.begin() + std::ptrdiff_t(size),
                                    [](std::uint8_t b) { return b == 0; }));
            std::uint8_t out[tag_len];
            EXPECT_FALSE(
                open(in.key, in.nonce, in.ad, std::span(good.data(), tag_len - 1), out, library));
        }
    }
}

TEST(ChaChaPoly, AFailedMessageLeavesTheNextOnesWhole) {
    // The per-thread contexts are reused: what a failure leaves in them must not reach the next.
    std::vector<Library> libraries{Library::libsodium, Library::any};
    if (openssl_available()) libraries.push_back(Library::openssl);
    for (auto library : libraries) {
        SCOPED_TRACE(int(library));
        auto in = random_inputs(4000, 0);
        auto good = sealed(in, Library::libsodium);
        auto forged = good;
        forged.back() ^= 1;
        Bytes out(in.plaintext.size());
        EXPECT_FALSE(open(in.key, in.nonce, {}, forged, out.data(), library));
        ASSERT_TRUE(open(in.key, in.nonce, {}, good, out.data(), library));
        EXPECT_EQ(out, in.plaintext);
        EXPECT_EQ(sealed(in, library), good);  // and a seal after the failed open
    }
}
