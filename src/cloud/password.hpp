// Password hashes: Argon2id in libsodium's self-describing string form ("$argon2id$v=19$m=...,
// t=...,p=1$salt$hash"), so every stored hash keeps the cost it was made with. Slow on purpose:
// call from the worker pool, never from an IO thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hawser/error.hpp"

namespace hawser::cloud::detail {

struct PasswordCost {
    std::uint64_t ops = 2;
    std::size_t memory = 64u << 20;
};

// The cost is checked against libsodium's bounds (invalid_argument outside them).
Result<void> check_cost(const PasswordCost& cost);
Result<std::string> hash_password(std::string_view password, const PasswordCost& cost);
// False for a wrong password and for a stored string that is not an Argon2 hash.
bool verify_password(const std::string& stored, std::string_view password);

}  // namespace hawser::cloud::detail
