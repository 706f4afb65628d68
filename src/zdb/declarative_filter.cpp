// Declarative filters compile into predicates over the stored MessagePack bytes: each condition
// looks its field up in place (RecordView), so a record that does not match is never decoded.
#include "hawser/zdb/declarative_filter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>

#include "zdb/compiled_filter.hpp"
#include "zdb/index_key.hpp"
#include "zdb/keys.hpp"

namespace hawser::zdb {

namespace {

constexpr std::size_t max_contains_bytes = 4096;  // a $contains text

using Predicate = std::function<bool(RecordView&)>;
using Check = std::function<bool(const std::optional<Field>&)>;
using Kind = Field::Kind;

Error bad(const std::string& why) {
    return Error{Errc::invalid_argument, "filter: " + why};
}

std::optional<double> number(const Value& v) {
    if (v.is<std::int64_t>()) return double(v.as<std::int64_t>());
    if (v.is<std::uint64_t>()) return double(v.as<std::uint64_t>());
    if (v.is<double>()) return v.as<double>();
    return std::nullopt;
}

// -1, 0, 1, or nothing when the two cannot be ordered (different kinds, NaN).
std::optional<int> order(double x, double y) {
    if (std::isnan(x) || std::isnan(y)) return std::nullopt;
    return x < y ? -1 : (x > y ? 1 : 0);
}

std::optional<int> compare_values(const Value& a, const Value& b) {
    auto x = number(a), y = number(b);
    if (x && y) return order(*x, *y);
    if (a.is<std::string>() && b.is<std::string>()) {
        auto c = a.as<std::string>().compare(b.as<std::string>());
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (a.is<bool>() && b.is<bool>()) return int(a.as<bool>()) - int(b.as<bool>());
    if (a.v.index() == b.v.index()) return a == b ? std::optional(0) : std::nullopt;
    return std::nullopt;
}

std::optional<int> compare(const Field& a, const Value& b) {
    if (a.is_number()) {
        auto y = number(b);
        return y ? order(a.number(), *y) : std::nullopt;
    }
    switch (a.kind) {
        case Kind::string: {
            if (!b.is<std::string>()) return std::nullopt;
            auto c = a.text.compare(b.as<std::string>());
            return c < 0 ? -1 : (c > 0 ? 1 : 0);
        }
        case Kind::boolean:
            if (!b.is<bool>()) return std::nullopt;
            return int(a.boolean) - int(b.as<bool>());
        case Kind::nil:
            return b.is<std::nullptr_t>() ? std::optional(0) : std::nullopt;
        case Kind::binary:
        case Kind::array:
        case Kind::map: {
            auto v = a.decode();
            return v ? compare_values(*v, b) : std::nullopt;
        }
        default:
            return std::nullopt;
    }
}

bool equal(const Field& a, const Value& b) {
    auto c = compare(a, b);
    return c && *c == 0;
}

// The index ranges for one operator and argument, or nothing when no index can help.
std::optional<std::vector<IndexRange>> ranges_for(const std::string& op, const Value& arg) {
    if (op == "$in") {
        if (!arg.is<Array>()) return std::nullopt;
        std::vector<IndexRange> out;
        for (const auto& v : arg.as<Array>()) {
            auto r = ranges_for("$eq", v);
            if (!r) return std::nullopt;
            out.push_back(r->front());
        }
        return out;
    }
    if (op == "$prefix") {
        if (!arg.is<std::string>()) return std::nullopt;
        auto p = index_string_prefix_key(arg.as<std::string>());
        return std::vector<IndexRange>{{p, prefix_end(p)}};
    }
    auto key = index_value_key(arg);
    if (!key) return std::nullopt;
    std::string kind_begin(1, key->front()), kind_end(1, char(key->front() + 1));
    if (op == "$eq") return std::vector<IndexRange>{{*key, prefix_end(*key)}};
    if (op == "$gt") return std::vector<IndexRange>{{prefix_end(*key), kind_end}};
    if (op == "$gte") return std::vector<IndexRange>{{*key, kind_end}};
    if (op == "$lt") return std::vector<IndexRange>{{kind_begin, *key}};
    if (op == "$lte") return std::vector<IndexRange>{{kind_begin, prefix_end(*key)}};
    return std::nullopt;
}

// Adds what an index could answer for `op` on `field` to the conditions: equalities one each,
// ranges on the same field narrowed into one.
void note_condition(IndexHints* hints, const std::string& field, const std::string& op,
                    const Value& arg) {
    if (!hints) return;
    auto* conditions = &hints->conditions;
    auto ranges = ranges_for(op, arg);
    if (!ranges) return;
    bool equality = op == "$eq" || op == "$in";
    if (!equality) {
        for (auto& c : *conditions) {
            if (c.field != field || c.equality) continue;
            auto& r = c.ranges.front();
            r.from = std::max(r.from, ranges->front().from);
            r.to = std::min(r.to, ranges->front().to);
            if (r.to < r.from) r.to = r.from;  // empty: values of different kinds
            return;
        }
    }
    conditions->push_back({field, equality, std::move(*ranges)});
}

Result<Predicate> compile(const Map& filter, IndexHints* hints);

// $and passes the hints down: its conditions hold for every match. $or notes a union when
// every branch has a condition an index could answer.
Result<Predicate> compile_list(const Value& v, const std::string& op, bool any, IndexHints* hints) {
    if (!v.is<Array>() || v.as<Array>().empty())
        return bad(op + " takes a non-empty array of filters");
    std::vector<Predicate> parts;
    IndexUnion either;
    for (const auto& item : v.as<Array>()) {
        if (!item.is<Map>()) return bad(op + " takes an array of filter maps");
        IndexHints branch;
        auto p = compile(item.as<Map>(), any ? &branch : hints);
        if (!p) return p.error();
        parts.push_back(std::move(*p));
        either.branches.push_back(std::move(branch.conditions));
    }
    if (any && hints &&
        std::none_of(either.branches.begin(), either.branches.end(),
                     [](const auto& b) { return b.empty(); }))
        hints->unions.push_back(std::move(either));
    return Predicate([parts, any](RecordView& r) {
        for (const auto& p : parts)
            if (p(r) == any) return any;
        return !any;
    });
}

Result<Check> compile_operator(const std::string& path, const std::string& op, const Value& arg) {
    auto ordered = [&](auto accept) -> Check {
        return [arg, accept](const std::optional<Field>& v) {
            if (!v) return false;
            auto c = compare(*v, arg);
            return c && accept(*c);
        };
    };
    if (op == "$eq")
        return Check([arg](const std::optional<Field>& v) { return v && equal(*v, arg); });
    if (op == "$ne")
        return Check([arg](const std::optional<Field>& v) { return !v || !equal(*v, arg); });
    if (op == "$gt") return ordered([](int c) { return c > 0; });
    if (op == "$gte") return ordered([](int c) { return c >= 0; });
    if (op == "$lt") return ordered([](int c) { return c < 0; });
    if (op == "$lte") return ordered([](int c) { return c <= 0; });
    if (op == "$in" || op == "$nin") {
        if (!arg.is<Array>()) return bad(op + " on '" + path + "' takes an array");
        bool in = op == "$in";
        return Check([arg, in](const std::optional<Field>& v) {
            bool found = false;
            if (v && (v->kind == Kind::binary || v->kind == Kind::array || v->kind == Kind::map)) {
                // Decoded once, not once for every candidate (a big field and a long list).
                auto whole = v->decode();
                if (whole)
                    for (const auto& candidate : arg.as<Array>())
                        if (auto c = compare_values(*whole, candidate); (found = c && *c == 0))
                            break;
            } else if (v) {
                for (const auto& candidate : arg.as<Array>())
                    if ((found = equal(*v, candidate))) break;
            }
            return found == in;
        });
    }
    if (op == "$exists") {
        if (!arg.is<bool>()) return bad("$exists on '" + path + "' takes true or false");
        bool want = arg.as<bool>();
        return Check([want](const std::optional<Field>& v) { return v.has_value() == want; });
    }
    if (op == "$prefix") {
        if (!arg.is<std::string>()) return bad("$prefix on '" + path + "' takes a string");
        return Check([prefix = arg.as<std::string>()](const std::optional<Field>& v) {
            return v && v->kind == Kind::string && v->text.starts_with(prefix);
        });
    }
    if (op == "$contains") {
        // Boyer-Moore, built once: its search is linear in the text, where a plain find costs
        // text times pattern on a hostile pair (a long run of 'a' and "aaa...ab").
        using Searcher = std::boyer_moore_searcher<std::string::const_iterator>;
        struct Pattern {
            std::string text;
            std::optional<Searcher> searcher;
        };
        auto pattern = std::make_shared<Pattern>();
        // Its tables grow with the pattern (and take longer than linear to build on a
        // repetitive one): a pattern is at most max_contains_bytes.
        if (arg.is<std::string>() && arg.as<std::string>().size() > max_contains_bytes)
            return bad("$contains on '" + path + "' takes at most " +
                       std::to_string(max_contains_bytes) + " bytes of text");
        if (arg.is<std::string>() && !arg.as<std::string>().empty()) {
            pattern->text = arg.as<std::string>();
            pattern->searcher.emplace(pattern->text.begin(), pattern->text.end());
        }
        return Check([arg, pattern](const std::optional<Field>& v) {
            if (!v) return false;
            if (v->kind == Kind::string && arg.is<std::string>()) {
                if (!pattern->searcher) return true;  // "" is in every string
                return std::search(v->text.begin(), v->text.end(), *pattern->searcher) !=
                       v->text.end();
            }
            if (v->kind != Kind::array) return false;
            auto array = v->decode();
            if (!array) return false;
            for (const auto& e : array->as<Array>())
                if (auto c = compare_values(e, arg); c && *c == 0) return true;
            return false;
        });
    }
    return bad("unknown operator '" + op + "' on '" + path + "'");
}

Result<Predicate> compile_field(const std::string& path, const Value& condition,
                                IndexHints* hints) {
    if (path.empty()) return bad("empty field name");
    // No record holds a deeper path (max_document_depth), and splitting a huge one costs.
    if (path.size() > max_field_path_bytes)
        return bad("field paths are at most " + std::to_string(max_field_path_bytes) + " bytes");
    auto field = split_path(path);
    if (field.size() > max_document_depth)
        return bad("field '" + path.substr(0, 80) + "' is deeper than " +
                   std::to_string(max_document_depth) + " levels");
    for (const auto& key : field)
        if (key.empty()) return bad("field '" + path + "' has an empty step");
    std::vector<Check> checks;
    if (!condition.is<Map>() || condition.as<Map>().empty() ||
        condition.as<Map>().begin()->first[0] != '$') {  // a plain value: equality
        auto check = compile_operator(path, "$eq", condition);
        checks.push_back(std::move(*check));
        note_condition(hints, path, "$eq", condition);
    } else {
        for (const auto& entry : condition.as<Map>()) {
            auto check = compile_operator(path, entry.first, entry.second);
            if (!check) return check.error();
            checks.push_back(std::move(*check));
            note_condition(hints, path, entry.first, entry.second);
        }
    }
    return Predicate([field, checks](RecordView& r) {
        auto v = r.find(field);  // once for every operator on this field
        for (const auto& c : checks)
            if (!c(v)) return false;
        return true;
    });
}

Result<Predicate> compile(const Map& filter, IndexHints* hints) {
    std::vector<Predicate> parts;
    for (const auto& [key, value] : filter) {
        Result<Predicate> p = Error{};
        if (key == "$and")
            p = compile_list(value, key, false, hints);
        else if (key == "$or")
            p = compile_list(value, key, true, hints);
        else if (key == "$not") {
            if (!value.is<Map>()) return bad("$not takes a filter map");
            auto inner = compile(value.as<Map>(), nullptr);
            if (!inner) return inner.error();
            p = Predicate([inner = std::move(*inner)](RecordView& r) { return !inner(r); });
        } else if (!key.empty() && key[0] == '$') {
            return bad("unknown operator '" + key + "' at the top of a filter");
        } else {
            p = compile_field(key, value, hints);
        }
        if (!p) return p.error();
        parts.push_back(std::move(*p));
    }
    if (parts.size() == 1) return std::move(parts.front());
    return Predicate([parts](RecordView& r) {
        for (const auto& p : parts)
            if (!p(r)) return false;
        return true;
    });
}

}  // namespace

Result<Filter> compile_filter(const Map& filter) {
    auto compiled = std::make_shared<CompiledFilter>();
    auto p = compile(filter, &compiled->hints);
    if (!p) return p.error();
    compiled->match = std::move(*p);
    compiled->source = filter;
    return Filter(std::shared_ptr<const CompiledFilter>(std::move(compiled)));
}

const Map* source_of(const Filter& filter) {
    return filter.compiled() ? &filter.compiled()->source : nullptr;
}

}  // namespace hawser::zdb
