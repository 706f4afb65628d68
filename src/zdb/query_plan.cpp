// Which records a query reads (query_plan.hpp): the candidate ids from the indexes, read on the
// query's snapshot, or nothing, and then the query scans.
#include "zdb/query_plan.hpp"

#include <algorithm>

#include "zdb/compiled_filter.hpp"

namespace hawser::zdb {

namespace {

// An index read that yields more candidates than this share of the records loses to a scan:
// fetching by id costs several times a sequential read.
constexpr std::uint64_t index_share_divisor = 8;
constexpr std::uint64_t index_min_candidates = 1024;

// Reads a table's indexes on one snapshot, for a query in one direction.
class Planner {
  public:
    Planner(const Table& table, const rocksdb::Snapshot* snapshot, bool reverse)
        : table_(table), snapshot_(snapshot), reverse_(reverse) {}

    // The ids of the first usable condition (equalities first) with at most `limit` of them.
    Result<Candidates> narrowest(const std::vector<IndexCondition>& conditions,
                                 const TableState& state, std::uint64_t limit,
                                 std::string& field) const {
        std::vector<std::pair<const IndexCondition*, std::uint16_t>> usable;
        for (const auto& c : conditions)
            if (auto it = state.indexes.find(c.field); it != state.indexes.end())
                usable.emplace_back(&c, it->second);
        std::stable_sort(usable.begin(), usable.end(), [](const auto& a, const auto& b) {
            return std::pair(!a.first->equality, a.first->ranges.size()) <
                   std::pair(!b.first->equality, b.first->ranges.size());
        });
        for (const auto& [condition, index] : usable) {
            auto ids = read_index(*condition, index, limit);
            if (!ids) return ids.error();
            if (!*ids) continue;  // too broad
            field = condition->field;
            return ids;
        }
        return Candidates{};
    }

    void sort_for_delivery(std::vector<RecordId>& ids) const {
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        if (reverse_) std::reverse(ids.begin(), ids.end());
    }

    // The ids in the condition's ranges, sorted for delivery; nothing past `limit` of them.
    Result<Candidates> read_index(const IndexCondition& condition, std::uint16_t index,
                                  std::uint64_t limit) const {
        std::vector<RecordId> ids;
        bool too_many = false;
        for (const auto& r : condition.ranges) {
            if (r.from >= r.to) continue;  // an empty range
            auto read = table_.index_ids(index, r.from, r.to, snapshot_, [&](RecordId id) {
                if (ids.size() >= limit) return !(too_many = true);
                ids.push_back(id);
                return true;
            });
            if (!read) return read.error();
            if (too_many) return Candidates{};
        }
        sort_for_delivery(ids);
        return Candidates(std::move(ids));
    }

  private:
    const Table& table_;
    const rocksdb::Snapshot* snapshot_;
    bool reverse_;
};

}  // namespace

Result<Candidates> plan_query(const Table& table, const rocksdb::Snapshot* snapshot,
                              const Filter& filter, const QueryOptions& options,
                              const TableState& state, std::string& index) {
    Planner planner(table, snapshot, options.reverse);
    const auto& compiled = filter.compiled();
    if (!options.use_indexes || !compiled) return Candidates{};
    const auto limit = std::max(index_min_candidates, state.count / index_share_divisor);
    auto ids = planner.narrowest(compiled->hints.conditions, state, limit, index);
    if (!ids || *ids) return ids;
    for (const auto& either : compiled->hints.unions) {
        std::vector<RecordId> all;
        std::vector<std::string> fields;
        for (const auto& branch : either.branches) {
            std::string field;
            auto part = planner.narrowest(branch, state, limit - all.size(), field);
            if (!part) return part.error();
            if (!*part) break;
            all.insert(all.end(), (*part)->begin(), (*part)->end());
            fields.push_back(std::move(field));
        }
        if (fields.size() != either.branches.size()) continue;
        planner.sort_for_delivery(all);
        for (const auto& f : fields) index += (index.empty() ? "" : " | ") + f;
        return Candidates(std::move(all));
    }
    return Candidates{};
}

}  // namespace hawser::zdb
