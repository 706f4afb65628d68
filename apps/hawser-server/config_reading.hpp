// How hawser-server reads each table of its configuration file: unknown keys are errors (so typos
// show), and numbers are range-checked before they are narrowed (toml11 casts without a check).
// Plain functions; they throw std::runtime_error, which the loaders turn into invalid_argument.
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <toml.hpp>
#include <type_traits>

#include "hawser/options.hpp"

namespace hawser::app {

inline void check_keys(const toml::value& table, const std::set<std::string>& known,
                       const std::string& where) {
    for (const auto& [key, value] : table.as_table())
        if (!known.count(key))
            throw std::runtime_error("unknown key '" + key + "'" +
                                     (where.empty() ? "" : " in [" + where + "]"));
}

template <class T>
void read(const toml::value& table, const char* key, T& out) {
    if (!table.contains(key)) return;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        // toml11 casts without a range check: -1 would silently become 2^64 - 1.
        auto v = toml::find<std::int64_t>(table, key);
        if (v < 0) throw std::runtime_error(std::string(key) + " must not be negative");
        // Beyond this, clock arithmetic in nanoseconds would overflow (and 100 years is never).
        constexpr std::int64_t max_ms = 100LL * 365 * 24 * 3600 * 1000;
        if (v > max_ms)
            throw std::runtime_error(std::string(key) + " is too large (at most 100 years)");
        if (static_cast<std::uint64_t>(v) > std::uint64_t(std::numeric_limits<T>::max()))
            throw std::runtime_error(std::string(key) + " is too large (at most " +
                                     std::to_string(std::numeric_limits<T>::max()) + ")");
        out = static_cast<T>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
        const auto& v = toml::find(table, key);
        out = v.is_integer() ? static_cast<T>(v.as_integer()) : toml::get<T>(v);  // 200 or 200.0
    } else {
        out = toml::find<T>(table, key);
    }
}

// A count of `Unit`s (the key's suffix says which: _ms, _s) into a duration.
template <class Unit, class Duration>
void read_duration(const toml::value& table, const char* key, Duration& out) {
    std::int64_t v = 0;
    read(table, key, v);  // the same range checks: not negative, at most 100 years
    if (table.contains(key)) out = Unit(v);
}

inline void read_ms(const toml::value& table, const char* key, Milliseconds& out) {
    read_duration<Milliseconds>(table, key, out);
}

}  // namespace hawser::app
