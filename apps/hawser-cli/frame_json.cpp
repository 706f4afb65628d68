#include "frame_json.hpp"

#include "json_value.hpp"

namespace hawser::app {

// DataFrame's own decoder allows 32 levels of nesting; deeper JSON is refused while parsing,
// without recursion.
constexpr std::size_t max_depth = 32;

Result<DataFrame> frame_from_json(const std::string& text) {
    DataFrame frame;
    if (text.empty()) return frame;
    auto parsed = parse_json(text, max_depth);
    if (!parsed) {
        if (parsed.error().code == Errc::limit_exceeded)
            return Error{Errc::limit_exceeded, "JSON nested deeper than 32 levels"};
        return Error{Errc::invalid_argument, "not valid JSON: " + parsed.error().message};
    }
    if (parsed->is<Array>())
        for (const auto& e : parsed->as<Array>()) frame << e;
    else
        frame << *parsed;
    return frame;
}

Result<std::string> frame_to_json(DataFrame frame) {
    auto out = nlohmann::json::array();
    frame.rewind();
    while (!frame.at_end()) {
        auto v = frame.read_value();
        if (!v) return v.error();
        out.push_back(to_json(*v));
    }
    return json_text(out);
}

}  // namespace hawser::app
