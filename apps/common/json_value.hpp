// JSON text <-> hawser::Value for the command-line tools, hawser-zdb and hawser-cli
// (nlohmann/json underneath). Plain functions: any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "hawser/dataframe.hpp"

namespace hawser::app {

// Objects become Maps, arrays Arrays; integers keep their sign; null is nil.
Value from_json(const nlohmann::json& j);
// Bytes (which JSON lacks) come out as {"$hex": "..."}.
nlohmann::json to_json(const Value& v);

}  // namespace hawser::app
