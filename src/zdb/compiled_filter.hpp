// A declarative filter after compilation: a predicate over stored record bytes, plus the
// conditions an index could answer (the query picks one when the database has the index).
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

struct CompiledFilter {
    std::function<bool(RecordView&)> match;
    std::vector<IndexCondition> conditions;
};

}  // namespace hawser::zdb
