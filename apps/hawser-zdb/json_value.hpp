// JSON text <-> hawser::Value for the hawser-zdb tool (nlohmann/json underneath).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "hawser/dataframe.hpp"

namespace hawser::zdb_tool {

// Objects become Maps, arrays Arrays; integers keep their sign; null is nil.
Value from_json(const nlohmann::json& j);
// Bytes (which JSON lacks) come out as {"$hex": "..."}.
nlohmann::json to_json(const Value& v);

}  // namespace hawser::zdb_tool
