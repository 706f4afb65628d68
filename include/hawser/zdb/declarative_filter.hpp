// Declarative filters for callers without server code, written as a map (a DataFrame map on the
// wire; JSON text once the tool lands):
//   {"level": {"$gte": 10}, "guild.name": {"$prefix": "north"}, "$or": [{...}, {...}]}
// Operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $prefix $contains, and $and $or $not.
// A field given a plain value means $eq. Dotted names reach into nested maps. Numbers compare
// across int, uint and double; other types compare only with their own kind.
#pragma once

#include "hawser/zdb/query.hpp"

namespace hawser::zdb {

// Compiles the filter, or says exactly what is malformed (Errc::invalid_argument).
Result<Filter> compile_filter(const Map& filter);
// The map a declarative filter was compiled from (how it travels to a remote store); nullptr for
// a C++ filter.
const Map* source_of(const Filter& filter);

}  // namespace hawser::zdb
