#include "hawser/zdb/declarative_filter.hpp"

#include <cmath>
#include <optional>

namespace hawser::zdb {

namespace {

using Predicate = std::function<bool(const Map&)>;

Error bad(const std::string& why) {
    return Error{Errc::invalid_argument, "filter: " + why};
}

// The value at a dotted path, or nothing.
const Value* lookup(const Map& record, const std::string& path) {
    const Map* map = &record;
    std::size_t start = 0;
    for (;;) {
        auto dot = path.find('.', start);
        auto key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        auto it = map->find(key);
        if (it == map->end()) return nullptr;
        if (dot == std::string::npos) return &it->second;
        if (!it->second.is<Map>()) return nullptr;
        map = &it->second.as<Map>();
        start = dot + 1;
    }
}

std::optional<double> number(const Value& v) {
    if (v.is<std::int64_t>()) return double(v.as<std::int64_t>());
    if (v.is<std::uint64_t>()) return double(v.as<std::uint64_t>());
    if (v.is<double>()) return v.as<double>();
    return std::nullopt;
}

// -1, 0, 1, or nothing when the two cannot be ordered (different kinds).
std::optional<int> compare(const Value& a, const Value& b) {
    auto x = number(a), y = number(b);
    if (x && y) return *x < *y ? -1 : (*x > *y ? 1 : 0);
    if (a.is<std::string>() && b.is<std::string>())
        return a.as<std::string>().compare(b.as<std::string>()) < 0 ? -1 : (a == b ? 0 : 1);
    if (a.is<bool>() && b.is<bool>()) return int(a.as<bool>()) - int(b.as<bool>());
    if (a.v.index() == b.v.index()) return a == b ? std::optional(0) : std::nullopt;
    return std::nullopt;
}

bool equal(const Value& a, const Value& b) {
    auto c = compare(a, b);
    return c && *c == 0;
}

Result<Predicate> compile(const Map& filter);

Result<Predicate> compile_list(const Value& v, const std::string& op, bool any) {
    if (!v.is<Array>() || v.as<Array>().empty())
        return bad(op + " takes a non-empty array of filters");
    std::vector<Predicate> parts;
    for (const auto& item : v.as<Array>()) {
        if (!item.is<Map>()) return bad(op + " takes an array of filter maps");
        auto p = compile(item.as<Map>());
        if (!p) return p.error();
        parts.push_back(std::move(*p));
    }
    return Predicate([parts, any](const Map& r) {
        for (const auto& p : parts)
            if (p(r) == any) return any;
        return !any;
    });
}

Result<Predicate> compile_field(const std::string& path, const Value& condition) {
    if (path.empty()) return bad("empty field name");
    if (!condition.is<Map>() || condition.as<Map>().empty() ||
        condition.as<Map>().begin()->first[0] != '$') {
        return Predicate([path, condition](const Map& r) {  // a plain value: equality
            auto v = lookup(r, path);
            return v && equal(*v, condition);
        });
    }
    std::vector<Predicate> checks;
    for (const auto& entry : condition.as<Map>()) {
        // Named copies, not structured bindings: lambdas below capture them (clang 14 cannot).
        const std::string& op = entry.first;
        const Value& arg = entry.second;
        auto ordered = [&](auto accept) -> Predicate {
            return [path, arg, accept](const Map& r) {
                auto v = lookup(r, path);
                if (!v) return false;
                auto c = compare(*v, arg);
                return c && accept(*c);
            };
        };
        if (op == "$eq")
            checks.push_back([path, arg](const Map& r) {
                auto v = lookup(r, path);
                return v && equal(*v, arg);
            });
        else if (op == "$ne")
            checks.push_back([path, arg](const Map& r) {
                auto v = lookup(r, path);
                return !v || !equal(*v, arg);
            });
        else if (op == "$gt")
            checks.push_back(ordered([](int c) { return c > 0; }));
        else if (op == "$gte")
            checks.push_back(ordered([](int c) { return c >= 0; }));
        else if (op == "$lt")
            checks.push_back(ordered([](int c) { return c < 0; }));
        else if (op == "$lte")
            checks.push_back(ordered([](int c) { return c <= 0; }));
        else if (op == "$in" || op == "$nin") {
            if (!arg.is<Array>()) return bad(op + " on '" + path + "' takes an array");
            bool in = op == "$in";
            checks.push_back([path, arg, in](const Map& r) {
                auto v = lookup(r, path);
                bool found = false;
                if (v)
                    for (const auto& candidate : arg.as<Array>())
                        found = found || equal(*v, candidate);
                return found == in;
            });
        } else if (op == "$exists") {
            if (!arg.is<bool>()) return bad("$exists on '" + path + "' takes true or false");
            bool want = arg.as<bool>();
            checks.push_back(
                [path, want](const Map& r) { return (lookup(r, path) != nullptr) == want; });
        } else if (op == "$prefix") {
            if (!arg.is<std::string>()) return bad("$prefix on '" + path + "' takes a string");
            checks.push_back([path, arg](const Map& r) {
                auto v = lookup(r, path);
                return v && v->is<std::string>() &&
                       v->as<std::string>().rfind(arg.as<std::string>(), 0) == 0;
            });
        } else if (op == "$contains") {
            checks.push_back([path, arg](const Map& r) {
                auto v = lookup(r, path);
                if (!v) return false;
                if (v->is<std::string>() && arg.is<std::string>())
                    return v->as<std::string>().find(arg.as<std::string>()) != std::string::npos;
                if (v->is<Array>())
                    for (const auto& e : v->as<Array>())
                        if (equal(e, arg)) return true;
                return false;
            });
        } else {
            return bad("unknown operator '" + op + "' on '" + path + "'");
        }
    }
    return Predicate([checks](const Map& r) {
        for (const auto& c : checks)
            if (!c(r)) return false;
        return true;
    });
}

Result<Predicate> compile(const Map& filter) {
    std::vector<Predicate> parts;
    for (const auto& [key, value] : filter) {
        Result<Predicate> p = Error{};
        if (key == "$and")
            p = compile_list(value, key, false);
        else if (key == "$or")
            p = compile_list(value, key, true);
        else if (key == "$not") {
            if (!value.is<Map>()) return bad("$not takes a filter map");
            auto inner = compile(value.as<Map>());
            if (!inner) return inner.error();
            p = Predicate([inner = std::move(*inner)](const Map& r) { return !inner(r); });
        } else if (!key.empty() && key[0] == '$') {
            return bad("unknown operator '" + key + "' at the top of a filter");
        } else {
            p = compile_field(key, value);
        }
        if (!p) return p.error();
        parts.push_back(std::move(*p));
    }
    return Predicate([parts](const Map& r) {
        for (const auto& p : parts)
            if (!p(r)) return false;
        return true;
    });
}

}  // namespace

Result<Filter> compile_filter(const Map& filter) {
    auto p = compile(filter);
    if (!p) return p.error();
    return Filter(
        [p = std::move(*p)](RecordId, const Map& record, const Map&) { return p(record); });
}

}  // namespace hawser::zdb
