#include "zdb/index_key.hpp"

#include <bit>
#include <cmath>

namespace hawser::zdb {

namespace {

std::optional<std::string> number_key(double d) {
    if (std::isnan(d)) return std::nullopt;  // NaN equals nothing and orders with nothing
    if (d == 0) d = 0;                       // -0.0 == 0.0
    auto bits = std::bit_cast<std::uint64_t>(d);
    // Flip so that unsigned byte order is numeric order: negatives reversed, below positives.
    bits = bits >> 63 ? ~bits : bits | (std::uint64_t(1) << 63);
    std::string k(1, char(IndexTag::number));
    for (int i = 0; i < 8; ++i) k.push_back(static_cast<char>(bits >> (56 - 8 * i)));
    return k;
}

// 0x00 is written 0x00 0xff and the end is 0x00 0x01, so that a string sorts before its
// extensions and the id after it cannot be mistaken for more of the string.
std::string escaped(std::string_view s) {
    std::string k(1, char(IndexTag::string));
    k.reserve(s.size() + 3);
    for (char c : s) {
        k.push_back(c);
        if (c == '\0') k.push_back('\xff');
    }
    return k;
}

std::string string_key(std::string_view s) {
    return escaped(s).append("\0\x01", 2);
}

std::string boolean_key(bool b) {
    return std::string{char(IndexTag::boolean), char(b ? 1 : 0)};
}

}  // namespace

std::optional<std::string> index_value_key(const Field& field) {
    if (field.is_number()) return number_key(field.number());
    if (field.kind == Field::Kind::string) return string_key(field.text);
    if (field.kind == Field::Kind::boolean) return boolean_key(field.boolean);
    return std::nullopt;
}

std::optional<std::string> index_value_key(const Value& value) {
    if (value.is<std::int64_t>()) return number_key(double(value.as<std::int64_t>()));
    if (value.is<std::uint64_t>()) return number_key(double(value.as<std::uint64_t>()));
    if (value.is<double>()) return number_key(value.as<double>());
    if (value.is<std::string>()) return string_key(value.as<std::string>());
    if (value.is<bool>()) return boolean_key(value.as<bool>());
    return std::nullopt;
}

std::string index_string_prefix_key(std::string_view prefix) {
    return escaped(prefix);
}

std::string index_prefix(std::uint16_t index) {
    return std::string{static_cast<char>(index >> 8), static_cast<char>(index & 0xff)};
}

}  // namespace hawser::zdb
