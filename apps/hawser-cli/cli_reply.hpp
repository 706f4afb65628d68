// What hawser-cli's commands share to call and report: a blocking call with a timeout, the
// error line and exit status, and reading a number from a reply (MessagePack keeps no sign for
// a non-negative integer). Plain functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "hawser/connection.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"

namespace hawser::app {

inline constexpr int exit_ok = 0, exit_call_failed = 1, exit_usage = 2;

// Prints "error: <code>: <message>" on stderr; the exit status of a failed call.
inline int call_error(const Error& e) {
    std::fprintf(stderr, "error: %s: %s\n", std::string(to_string(e.code)).c_str(),
                 e.message.c_str());
    return exit_call_failed;
}

inline Result<DataFrame> call(const Connection& conn, std::string_view command, DataFrame arg,
                              std::chrono::milliseconds timeout) {
    return conn.call(command, std::move(arg), use_wait, CallOptions{.timeout = timeout});
}

inline std::uint64_t number(const Value& v) {
    if (v.is<std::uint64_t>()) return v.as<std::uint64_t>();
    if (v.is<std::int64_t>()) return std::uint64_t(v.as<std::int64_t>());
    return 0;
}

}  // namespace hawser::app
