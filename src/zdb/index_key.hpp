// Order-preserving encoding of indexed values. An index entry's key is
//   index number (2 bytes) | value key | record id (8 bytes)
// where the value key keeps the order the declarative filter compares in: numbers of any kind
// as one ordered double, strings byte-wise, booleans; each kind under its own tag, since values
// of different kinds never compare. Other kinds (nil, binary, arrays, maps) are not indexed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hawser/dataframe.hpp"
#include "zdb/record_view.hpp"

namespace hawser::zdb {

enum class IndexTag : char { boolean = 1, number = 2, string = 3 };

// The value key, or nothing for a value an index does not hold.
std::optional<std::string> index_value_key(const Field& field);
std::optional<std::string> index_value_key(const Value& value);

// The keys of every string that starts with `prefix`, up to prefix_end of this.
std::string index_string_prefix_key(std::string_view prefix);

// The key prefix of one index (its number), and of every entry of one value in it.
std::string index_prefix(std::uint16_t index);

}  // namespace hawser::zdb
