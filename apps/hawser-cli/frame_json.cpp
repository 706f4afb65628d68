#include "frame_json.hpp"

#include "json_value.hpp"

namespace hawser::app {

// DataFrame's own decoder allows 32 levels of nesting; deeper JSON is refused while parsing
// (the parser is iterative; the callback drops what lies deeper), before any recursion.
constexpr int max_depth = 32;

Result<DataFrame> frame_from_json(const std::string& text) {
    DataFrame frame;
    if (text.empty()) return frame;
    bool deep = false;
    nlohmann::json parsed;
    try {
        parsed = nlohmann::json::parse(
            text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                if (depth > max_depth) deep = true;
                return !deep;
            });
    } catch (const nlohmann::json::parse_error& e) {
        return Error{Errc::invalid_argument, std::string("not valid JSON: ") + e.what()};
    }
    if (deep) return Error{Errc::limit_exceeded, "JSON nested deeper than 32 levels"};
    if (parsed.is_array())
        for (const auto& e : parsed) frame << from_json(e);
    else
        frame << from_json(parsed);
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
    return out.dump();
}

}  // namespace hawser::app
