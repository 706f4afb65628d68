// Shared by the ZDB tests: scratch directories and a plain, independent evaluation of
// declarative filters over in-memory maps, to check query results against.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "hawser/dataframe.hpp"

namespace zdb_test {

using hawser::Array;
using hawser::Map;
using hawser::Value;

struct ScratchDir {
    std::string path;
    explicit ScratchDir(const std::string& name)
        : path(::testing::TempDir() + "zdb_" + name + "_" + std::to_string(::getpid())) {
        std::filesystem::remove_all(path);
    }
    ~ScratchDir() { std::filesystem::remove_all(path); }
};

// Waits for a condition that other threads make true (RocksDB deletes files from its own
// threads); false at the deadline.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

// Bytes in the store's table and blob files: what holds records and attachments on disk.
inline std::uint64_t data_file_bytes(const std::string& store) {
    std::uint64_t total = 0;
    std::error_code ec;  // files may go while we look: RocksDB deletes them in the background
    for (std::filesystem::recursive_directory_iterator it(store, ec), end; !ec && it != end;
         it.increment(ec)) {
        auto ext = it->path().extension();
        if (ext != ".sst" && ext != ".blob") continue;
        auto size = std::filesystem::file_size(it->path(), ec);
        if (!ec) total += size;
        ec.clear();
    }
    return total;
}

// The reference: walks maps, compares numbers as doubles, strings byte-wise; nothing shared
// with the library's compiled filters.
inline const Value* at_path(const Map& record, const std::string& path) {
    const Map* map = &record;
    std::size_t start = 0;
    for (;;) {
        auto dot = path.find('.', start);
        auto it = map->find(path.substr(start, dot == std::string::npos ? dot : dot - start));
        if (it == map->end()) return nullptr;
        if (dot == std::string::npos) return &it->second;
        if (!it->second.is<Map>()) return nullptr;
        map = &it->second.as<Map>();
        start = dot + 1;
    }
}

inline std::optional<double> as_number(const Value& v) {
    if (v.is<std::int64_t>()) return double(v.as<std::int64_t>());
    if (v.is<std::uint64_t>()) return double(v.as<std::uint64_t>());
    if (v.is<double>()) return v.as<double>();
    return std::nullopt;
}

// <0, 0, >0, or nothing when the two do not compare.
inline std::optional<int> reference_compare(const Value& a, const Value& b) {
    auto x = as_number(a), y = as_number(b);
    if (x && y) {
        if (std::isnan(*x) || std::isnan(*y)) return std::nullopt;
        return *x < *y ? -1 : *x > *y;
    }
    if (a.is<std::string>() && b.is<std::string>())
        return a.as<std::string>() < b.as<std::string>()
                   ? -1
                   : a.as<std::string>() > b.as<std::string>();
    if (a.is<bool>() && b.is<bool>()) return int(a.as<bool>()) - int(b.as<bool>());
    if (a.v.index() == b.v.index() && a == b) return 0;
    return std::nullopt;
}

inline bool reference_match(const Map& record, const Map& filter);

inline bool reference_condition(const Value* v, const std::string& op, const Value& arg) {
    auto cmp = [&] { return v ? reference_compare(*v, arg) : std::nullopt; };
    if (op == "$eq") return cmp() == 0;
    if (op == "$ne") return cmp() != 0;
    if (op == "$gt") return cmp() && *cmp() > 0;
    if (op == "$gte") return cmp() && *cmp() >= 0;
    if (op == "$lt") return cmp() && *cmp() < 0;
    if (op == "$lte") return cmp() && *cmp() <= 0;
    if (op == "$in" || op == "$nin") {
        bool found = false;
        for (const auto& a : arg.as<Array>()) found = found || (v && reference_compare(*v, a) == 0);
        return found == (op == "$in");
    }
    if (op == "$exists") return (v != nullptr) == arg.as<bool>();
    if (op == "$prefix")
        return v && v->is<std::string>() &&
               v->as<std::string>().rfind(arg.as<std::string>(), 0) == 0;
    if (op == "$contains") {
        if (!v) return false;
        if (v->is<std::string>() && arg.is<std::string>())
            return v->as<std::string>().find(arg.as<std::string>()) != std::string::npos;
        if (v->is<Array>())
            for (const auto& e : v->as<Array>())
                if (reference_compare(e, arg) == 0) return true;
        return false;
    }
    ADD_FAILURE() << "reference: unknown operator " << op;
    return false;
}

inline bool reference_match(const Map& record, const Map& filter) {
    for (const auto& [key, value] : filter) {
        bool ok;
        if (key == "$and" || key == "$or") {
            bool any = key == "$or";
            ok = !any;
            for (const auto& f : value.as<Array>())
                if (reference_match(record, f.as<Map>()) == any) ok = any;
        } else if (key == "$not") {
            ok = !reference_match(record, value.as<Map>());
        } else if (value.is<Map>() && !value.as<Map>().empty() &&
                   value.as<Map>().begin()->first[0] == '$') {
            ok = true;
            for (const auto& [op, arg] : value.as<Map>())
                ok = ok && reference_condition(at_path(record, key), op, arg);
        } else {
            ok = reference_condition(at_path(record, key), "$eq", value);
        }
        if (!ok) return false;
    }
    return true;
}

// One operator on one field: {field: {name: arg}}.
inline hawser::Map op(const char* field, const char* name, hawser::Value arg) {
    return hawser::Map{{field, hawser::Value(hawser::Map{{name, std::move(arg)}})}};
}

}  // namespace zdb_test
