#include "cloud/password.hpp"

#include <sodium.h>

namespace hawser::cloud::detail {

Result<void> check_cost(const PasswordCost& cost) {
    if (cost.ops < crypto_pwhash_OPSLIMIT_MIN || cost.ops > crypto_pwhash_OPSLIMIT_MAX)
        return Error{Errc::invalid_argument,
                     "password_ops must be from " + std::to_string(crypto_pwhash_OPSLIMIT_MIN) +
                         " to " + std::to_string(crypto_pwhash_OPSLIMIT_MAX)};
    if (cost.memory < crypto_pwhash_MEMLIMIT_MIN || cost.memory > (std::size_t(4) << 30))
        return Error{Errc::invalid_argument, "password_memory must be from " +
                                                 std::to_string(crypto_pwhash_MEMLIMIT_MIN) +
                                                 " bytes to 4 GiB"};
    return {};
}

Result<std::string> hash_password(std::string_view password, const PasswordCost& cost) {
    if (auto ok = check_cost(cost); !ok) return ok.error();
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), cost.ops, cost.memory,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return Error{Errc::overloaded, "not enough memory to hash the password"};
    return std::string(out);
}

bool verify_password(const std::string& stored, std::string_view password) {
    if (stored.empty() || stored.size() >= crypto_pwhash_STRBYTES) return false;
    return crypto_pwhash_str_verify(stored.c_str(), password.data(), password.size()) == 0;
}

}  // namespace hawser::cloud::detail
