#include "json_value.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace hawser::app {

namespace {

// Builds a Value from nlohmann's SAX events with an explicit stack of open containers.
class ValueBuilder {
  public:
    using json = nlohmann::json;
    explicit ValueBuilder(std::size_t max_depth) : max_depth_(max_depth) {}

    bool null() { return put(Value(nullptr)); }
    bool boolean(bool b) { return put(Value(b)); }
    bool number_integer(json::number_integer_t i) { return put(Value(std::int64_t(i))); }
    bool number_unsigned(json::number_unsigned_t u) {
        return put(u <= std::uint64_t(INT64_MAX) ? Value(std::int64_t(u))
                                                 : Value(std::uint64_t(u)));
    }
    bool number_float(json::number_float_t d, const json::string_t&) { return put(Value(d)); }
    bool string(json::string_t& s) { return put(Value(std::move(s))); }
    bool binary(json::binary_t&) { return put(Value(nullptr)); }  // never from text
    bool start_object(std::size_t) { return open(Value(Map{})); }
    bool key(json::string_t& k) {
        open_.back().key = std::move(k);
        return true;
    }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(Value(Array{})); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
        return false;
    }

    bool too_deep() const { return too_deep_; }
    Value take() { return std::move(result_); }

  private:
    struct Open {
        Value container;
        std::string key;  // objects: the key of the value being read
    };
    bool put(Value v) {
        if (open_.empty()) {
            result_ = std::move(v);
            return true;
        }
        auto& top = open_.back();
        if (auto* a = std::get_if<Array>(&top.container.v))
            a->push_back(std::move(v));
        else
            std::get<Map>(top.container.v).insert_or_assign(std::move(top.key), std::move(v));
        return true;
    }
    bool open(Value container) {
        if (open_.size() >= max_depth_) return too_deep_ = true, false;
        open_.push_back({std::move(container), {}});
        return true;
    }
    bool close() {
        auto done = std::move(open_.back().container);
        open_.pop_back();
        return put(std::move(done));
    }

    const std::size_t max_depth_;
    std::vector<Open> open_;
    Value result_;
    bool too_deep_ = false;
};

}  // namespace

Result<Value> parse_json(std::string_view text, std::size_t max_depth) {
    ValueBuilder builder(max_depth);
    if (nlohmann::json::sax_parse(text.begin(), text.end(), &builder)) return builder.take();
    if (builder.too_deep())
        return Error{Errc::limit_exceeded, "nested deeper than " + std::to_string(max_depth) +
                                               " levels of objects and arrays"};
    return Error{Errc::bad_payload, "not valid JSON"};
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

std::string json_text(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hawser::app
