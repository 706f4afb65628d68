// The ZDB network protocol (docs/zdb.md, "Over the network"): one DataFrame command whose first
// value names the operation, and one that fetches a query's next fragment. What both ends encode
// the same way lives here. Thread affinity: none (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::zdb::net {

// Operations, the first value of a call to StoreService::command.
namespace op {
inline constexpr std::string_view hello = "hello";  // admits this node? (no arguments)
inline constexpr std::string_view list = "list";
inline constexpr std::string_view open = "open";  // name → durability
inline constexpr std::string_view create = "create";
inline constexpr std::string_view drop = "drop";
inline constexpr std::string_view compact = "compact";
inline constexpr std::string_view copy = "copy";
inline constexpr std::string_view replace_database = "replace_database";
inline constexpr std::string_view store_stats = "store_stats";
inline constexpr std::string_view insert = "insert";
inline constexpr std::string_view insert_batch = "insert_batch";
inline constexpr std::string_view insert_unique = "insert_unique";
inline constexpr std::string_view get = "get";
inline constexpr std::string_view replace = "replace";
inline constexpr std::string_view patch = "patch";
inline constexpr std::string_view remove = "remove";
inline constexpr std::string_view exists = "exists";
inline constexpr std::string_view count = "count";
inline constexpr std::string_view scan = "scan";
inline constexpr std::string_view put_attachment = "put_attachment";
inline constexpr std::string_view get_attachment = "get_attachment";
inline constexpr std::string_view remove_attachment = "remove_attachment";
inline constexpr std::string_view attachments = "attachments";
inline constexpr std::string_view create_index = "create_index";
inline constexpr std::string_view drop_index = "drop_index";
inline constexpr std::string_view stats = "stats";
inline constexpr std::string_view query = "query";    // → query id
inline constexpr std::string_view cancel = "cancel";  // query id
}  // namespace op

// A next call's reply starts with one of these.
inline constexpr std::string_view fragment_reply = "fragment";
inline constexpr std::string_view end_reply = "end";

inline void write_progress(DataFrame& out, const QueryProgress& p) {
    out << p.scanned << p.matched << p.seconds << p.index;
}
inline Result<QueryProgress> read_progress(DataFrame& in) {
    QueryProgress p;
    auto scanned = in.read_uint();
    auto matched = in.read_uint();
    auto seconds = in.read_double();
    auto index = in.read_string();
    if (!scanned || !matched || !seconds || !index)
        return Error{Errc::bad_payload, "a query's progress is malformed"};
    p.scanned = *scanned;
    p.matched = *matched;
    p.seconds = *seconds;
    p.index = std::move(*index);
    return p;
}

// The query options that travel (params, output and on_end do not: params travels beside,
// the output as a name, on_end stays with the caller).
inline void write_query_options(DataFrame& out, const QueryOptions& o) {
    out << o.reverse << o.ordered << std::uint64_t(o.ordered_lookahead) << o.max_results
        << o.max_scanned << std::uint64_t(o.time_limit.count()) << std::uint64_t(o.fragment_records)
        << std::uint64_t(o.fragment_bytes) << std::uint64_t(o.fragment_interval.count())
        << std::uint64_t(o.parallelism) << o.use_indexes;
}
inline Result<void> read_query_options(DataFrame& in, QueryOptions& o) {
    auto reverse = in.read_bool();
    auto ordered = in.read_bool();
    auto lookahead = in.read_uint();
    auto max_results = in.read_uint();
    auto max_scanned = in.read_uint();
    auto time_limit = in.read_uint();
    auto fragment_records = in.read_uint();
    auto fragment_bytes = in.read_uint();
    auto fragment_interval = in.read_uint();
    auto parallelism = in.read_uint();
    auto use_indexes = in.read_bool();
    if (!reverse || !ordered || !lookahead || !max_results || !max_scanned || !time_limit ||
        !fragment_records || !fragment_bytes || !fragment_interval || !parallelism || !use_indexes)
        return Error{Errc::invalid_argument, "a query's options are malformed"};
    // Bounds that keep the numbers meaningful; the service bounds the rest.
    constexpr std::uint64_t day_ms = 24ull * 3600 * 1000;
    if (*time_limit > 3650 * day_ms || *fragment_interval > day_ms || *lookahead > 1024 ||
        *parallelism > 256)
        return Error{Errc::invalid_argument, "a query option is out of range"};
    o.reverse = *reverse;
    o.ordered = *ordered;
    o.ordered_lookahead = std::size_t(*lookahead);
    o.max_results = *max_results;
    o.max_scanned = *max_scanned;
    o.time_limit = std::chrono::milliseconds(*time_limit);
    o.fragment_records = std::size_t(*fragment_records);
    o.fragment_bytes = std::size_t(*fragment_bytes);
    o.fragment_interval = std::chrono::milliseconds(*fragment_interval);
    o.parallelism = std::size_t(*parallelism);
    o.use_indexes = *use_indexes;
    return {};
}

}  // namespace hawser::zdb::net
