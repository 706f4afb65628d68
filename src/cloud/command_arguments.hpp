// What the cloud's account and session commands share: reading a command's string arguments,
// and the one answer a wrong password and an unknown name both get.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"

namespace hawser::cloud::detail {

inline Error wrong_credentials() {
    return {Errc::unauthenticated, "wrong username or password"};
}

// Reads the expected strings of a command's argument; invalid_argument naming the first missing.
inline Result<std::vector<std::string>> read_strings(
    DataFrame& argument, std::initializer_list<std::string_view> names) {
    std::vector<std::string> out;
    for (auto name : names) {
        auto s = argument.read_string();
        if (!s)
            return Error{Errc::invalid_argument,
                         "expected a string argument '" + std::string(name) + "'"};
        out.push_back(std::move(*s));
    }
    return out;
}

}  // namespace hawser::cloud::detail
