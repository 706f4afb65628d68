#include "wire/noise.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

using namespace hawser::detail::noise;

namespace {

std::vector<std::uint8_t> unhex(const std::string& s) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
    return out;
}

Key key(const std::string& hex) {
    auto v = unhex(hex);
    Key k{};
    std::copy(v.begin(), v.end(), k.begin());
    return k;
}

std::vector<std::map<std::string, std::string>> load_vectors() {
    std::ifstream in(std::string(HAWSER_TEST_DATA) + "/noise_vectors.txt");
    std::vector<std::map<std::string, std::string>> out;
    std::map<std::string, std::string> cur;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') {
            if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
            continue;
        }
        auto eq = line.find('=');
        cur[line.substr(0, eq)] = line.substr(eq + 1);
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

}  // namespace

TEST(Noise, PublicTestVectors) {
    auto vectors = load_vectors();
    ASSERT_EQ(vectors.size(), 8u);  // four NK and four XX blocks
    for (auto& v : vectors) {
        SCOPED_TRACE(v["handshake"] + (v.count("prologue") ? " with prologue" : ""));
        bool xx = v["handshake"].find("_XX_") != std::string::npos;
        HandshakeState::Config ic, rc;
        ic.pattern = rc.pattern = xx ? Pattern::xx : Pattern::nk;
        ic.initiator = true;
        rc.initiator = false;
        ic.prologue = rc.prologue = unhex(v["prologue"]);
        auto resp_static = KeyPair::from_private(key(v["resp_static"]));
        rc.static_keys = resp_static;
        if (xx)
            ic.static_keys = KeyPair::from_private(key(v["init_static"]));
        else
            ic.remote_static = resp_static.public_key;
        ic.fixed_ephemeral = KeyPair::from_private(key(v["gen_init_ephemeral"]));
        rc.fixed_ephemeral = KeyPair::from_private(key(v["gen_resp_ephemeral"]));
        HandshakeState init(ic), resp(rc);
        std::size_t steps = xx ? 3 : 2;
        std::optional<std::pair<CipherState, CipherState>> ic_ciphers, rc_ciphers;
        for (std::size_t i = 0; v.count("msg_" + std::to_string(i) + "_payload"); ++i) {
            auto payload = unhex(v["msg_" + std::to_string(i) + "_payload"]);
            auto expected = unhex(v["msg_" + std::to_string(i) + "_ciphertext"]);
            // Handshake messages alternate; the vectors' transport messages are initiator ->
            // responder first, then responder -> initiator, whoever sent the last handshake
            // message.
            bool from_init = i < steps ? i % 2 == 0 : (i - steps) % 2 == 0;
            if (i < steps) {
                auto& w = from_init ? init : resp;
                auto& r = from_init ? resp : init;
                std::vector<std::uint8_t> msg;
                ASSERT_TRUE(w.write_message(payload, msg)) << "message " << i;
                EXPECT_EQ(msg, expected) << "message " << i;
                auto got = r.read_message(msg);
                ASSERT_TRUE(got) << got.error().message;
                EXPECT_EQ(*got, payload);
                if (i + 1 == steps) {
                    ASSERT_TRUE(init.finished() && resp.finished());
                    EXPECT_EQ(init.handshake_hash(), resp.handshake_hash());
                    ic_ciphers = init.split();
                    rc_ciphers = resp.split();
                    if (xx) {
                        EXPECT_EQ(*resp.remote_static(), ic.static_keys->public_key);
                    }
                }
            } else {
                auto& send = from_init ? ic_ciphers->first : rc_ciphers->first;
                auto& recv = from_init ? rc_ciphers->second : ic_ciphers->second;
                std::vector<std::uint8_t> ct(payload.size() + tag_len), pt(payload.size());
                ASSERT_TRUE(send.encrypt_with_ad({}, payload, ct.data()));
                EXPECT_EQ(ct, expected) << "transport message " << i;
                ASSERT_TRUE(recv.decrypt_with_ad({}, ct, pt.data()));
                EXPECT_EQ(pt, payload);
            }
        }
    }
}

TEST(Noise, WrongPinnedKeyFailsTheHandshake) {
    auto server = KeyPair::generate(), impostor = KeyPair::generate();
    HandshakeState init(
        {.pattern = Pattern::nk, .initiator = true, .remote_static = impostor.public_key});
    HandshakeState resp({.pattern = Pattern::nk, .initiator = false, .static_keys = server});
    std::vector<std::uint8_t> m1;
    ASSERT_TRUE(init.write_message({}, m1));
    EXPECT_FALSE(resp.read_message(m1));
}

TEST(Noise, MismatchedProloguesFail) {
    auto server = KeyPair::generate();
    HandshakeState init({.pattern = Pattern::nk,
                         .initiator = true,
                         .prologue = {1},
                         .remote_static = server.public_key});
    HandshakeState resp(
        {.pattern = Pattern::nk, .initiator = false, .prologue = {2}, .static_keys = server});
    std::vector<std::uint8_t> m1;
    ASSERT_TRUE(init.write_message({}, m1));
    EXPECT_FALSE(resp.read_message(m1));
}

TEST(Noise, RekeyChangesTheKeyAndOldCiphertextIsRejected) {
    CipherState a, b;
    Key k{};
    k[0] = 7;
    a.initialize_key(k);
    b.initialize_key(k);
    std::vector<std::uint8_t> msg{'h', 'i'}, ct(2 + tag_len), pt(2);
    ASSERT_TRUE(a.encrypt_with_ad({}, msg, ct.data()));
    ASSERT_TRUE(b.decrypt_with_ad({}, ct, pt.data()));
    auto old_ct = ct;  // sealed with nonce 0 under the old key
    a.rekey();
    b.rekey();
    ASSERT_TRUE(a.encrypt_with_ad({}, msg, ct.data()));
    EXPECT_NE(ct, old_ct);
    b.set_nonce(0);  // even with the old nonce, the old key's ciphertext fails
    EXPECT_FALSE(b.decrypt_with_ad({}, old_ct, pt.data()));
    b.set_nonce(1);
    EXPECT_TRUE(b.decrypt_with_ad({}, ct, pt.data()));
    EXPECT_EQ(pt, msg);
}

TEST(Noise, FlippedBitFailsAndDoesNotAdvanceTheNonce) {
    CipherState a, b;
    Key k{};
    a.initialize_key(k);
    b.initialize_key(k);
    std::vector<std::uint8_t> msg(100, 'x'), ct(100 + tag_len), pt(100);
    ASSERT_TRUE(a.encrypt_with_ad({}, msg, ct.data()));
    ct[50] ^= 1;
    EXPECT_FALSE(b.decrypt_with_ad({}, ct, pt.data()));
    EXPECT_EQ(b.nonce(), 0u);
    ct[50] ^= 1;
    EXPECT_TRUE(b.decrypt_with_ad({}, ct, pt.data()));
}
