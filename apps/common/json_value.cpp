#include "json_value.hpp"

namespace hawser::app {

Value from_json(const nlohmann::json& j) {
    switch (j.type()) {
        case nlohmann::json::value_t::null:
            return Value(nullptr);
        case nlohmann::json::value_t::boolean:
            return Value(j.get<bool>());
        case nlohmann::json::value_t::number_integer:
            return Value(j.get<std::int64_t>());
        case nlohmann::json::value_t::number_unsigned: {
            auto u = j.get<std::uint64_t>();
            return u <= std::uint64_t(INT64_MAX) ? Value(std::int64_t(u)) : Value(u);
        }
        case nlohmann::json::value_t::number_float:
            return Value(j.get<double>());
        case nlohmann::json::value_t::string:
            return Value(j.get<std::string>());
        case nlohmann::json::value_t::array: {
            Array a;
            for (const auto& e : j) a.push_back(from_json(e));
            return Value(std::move(a));
        }
        case nlohmann::json::value_t::object: {
            Map m;
            for (const auto& [k, e] : j.items()) m.insert_or_assign(k, from_json(e));
            return Value(std::move(m));
        }
        default:
            return Value(nullptr);  // binary and discarded values do not come from text
    }
}

nlohmann::json to_json(const Value& v) {
    return std::visit(
        [](const auto& x) -> nlohmann::json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::nullptr_t>)
                return nullptr;
            else if constexpr (std::is_same_v<T, Bytes>) {
                static const char* hex = "0123456789abcdef";
                std::string s;
                for (auto b : x) s += hex[b >> 4], s += hex[b & 15];
                return nlohmann::json{{"$hex", s}};
            } else if constexpr (std::is_same_v<T, Array>) {
                auto a = nlohmann::json::array();
                for (const auto& e : x) a.push_back(to_json(e));
                return a;
            } else if constexpr (std::is_same_v<T, Map>) {
                auto o = nlohmann::json::object();
                for (const auto& [k, e] : x) o[k] = to_json(e);
                return o;
            } else {
                return x;
            }
        },
        v.v);
}

}  // namespace hawser::app
