// Which records a query reads: the candidate ids an index gives, or all of them (a scan).
// Thread affinity: the query's starting thread, on the query's snapshot.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hawser/zdb/query.hpp"
#include "zdb/table.hpp"

namespace hawser::zdb {

// The candidate ids, in delivery order (descending for a reverse query), from the first indexed
// condition that narrows the records enough (equalities tried before ranges), or else from the
// union of one such condition per branch of an $or. Nothing when no index helps (indexes not
// to be used, no compiled filter, or each usable index too broad). `index` gets the field(s)
// read, " | " between the branches of an $or.
using Candidates = std::optional<std::vector<RecordId>>;
Result<Candidates> plan_query(const Table& table, const rocksdb::Snapshot* snapshot,
                              const Filter& filter, const QueryOptions& options,
                              const TableState& state, std::string& index);

}  // namespace hawser::zdb
