// JSON text <-> hawser::Value for the command-line tools, hawser-zdb and hawser-cli
// (nlohmann/json underneath). Plain functions: any thread.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "hawser/dataframe.hpp"

namespace hawser::app {

// Parses one JSON text without recursion: objects become Maps, arrays Arrays; integers keep
// their sign; null is nil. Text nested deeper than `max_depth` objects and arrays stops the
// parse there (limit_exceeded), so a line of a million '[' costs no stack; anything else that
// is not JSON is bad_payload.
Result<Value> parse_json(std::string_view text, std::size_t max_depth);
// Bytes (which JSON lacks) come out as {"$hex": "..."}.
nlohmann::json to_json(const Value& v);
// The JSON text of `j`. A string that is not UTF-8 (DataFrames and ZDB records do not check)
// gets U+FFFD for its bad bytes instead of stopping the program.
std::string json_text(const nlohmann::json& j);

}  // namespace hawser::app
