// What the file commands read from a request: who is calling, and a path argument in its
// normal form (hawser/relative_path.hpp). Thread affinity: the connection's IO thread.
#pragma once

#include <cstdint>
#include <string>

#include "cloud/signed_in.hpp"
#include "hawser/connection.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/relative_path.hpp"

namespace hawser::cloud::detail {

// The caller's user id; 0 for a connection that is gone or not logged in.
inline std::uint64_t user_of(const Connection& c) {
    return c.connected() ? c.service_context<SignedIn>().user : 0;
}

// A path argument in its normal form; "" (the top) only where `top` allows it.
inline Result<std::string> read_path(DataFrame& arg, bool top = false) {
    auto s = arg.read_string();
    if (!s) return Error{Errc::invalid_argument, "expected a path (a string)"};
    if (top && (s->empty() || *s == "/")) return std::string();
    auto normal = normalise_relative_path(*s);
    if (!normal) return Error{normal.error().code, "path: " + normal.error().message};
    return normal;
}

}  // namespace hawser::cloud::detail
