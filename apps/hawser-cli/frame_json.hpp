// DataFrame <-> JSON text for hawser-cli: a JSON array is a frame's values in order; any other
// JSON value (an object, a number, a string) is a frame of that one value. Plain functions.
#pragma once

#include <string>

#include "hawser/dataframe.hpp"

namespace hawser::app {

// Invalid JSON is Errc::invalid_argument naming the position, never an exception.
Result<DataFrame> frame_from_json(const std::string& text);
// Always a JSON array, one element per value; bytes come out as {"$hex": "..."}.
Result<std::string> frame_to_json(DataFrame frame);

}  // namespace hawser::app
