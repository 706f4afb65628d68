// A declarative filter after compilation: a predicate over stored record bytes, plus the
// conditions indexes could answer (the query picks one, or one per branch of an $or, when the
// database has the indexes).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "hawser/zdb/query.hpp"
#include "zdb/record_view.hpp"

namespace hawser::zdb {

// Index value keys in [from, to) (index_key.hpp).
struct IndexRange {
    std::string from, to;
};

// Every record the filter matches has a value for `field` inside one of the ranges.
struct IndexCondition {
    std::string field;
    bool equality = false;  // $eq / $in: a few values, usually few records
    std::vector<IndexRange> ranges;
};

// Every match satisfies all the conditions of at least one branch (a top-level $or).
struct IndexUnion {
    std::vector<std::vector<IndexCondition>> branches;
};

// What indexes could answer at one AND level of a filter.
struct IndexHints {
    std::vector<IndexCondition> conditions;  // each holds for every match
    std::vector<IndexUnion> unions;
};

struct CompiledFilter {
    std::function<bool(RecordView&)> match;
    IndexHints hints;
    Map source;  // what it was compiled from
};

}  // namespace hawser::zdb
