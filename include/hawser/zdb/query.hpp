// ZDB queries: a filter runs over a database's records in parallel (the id range is split
// among worker threads) and the matches come back in fragments to a sink, like ZServer4D's
// filter queries, with progress, limits, pause, resume and cancel.
// Thread safety: a Query handle may be used from any thread; the sink is called from worker
// threads, one call at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hawser/zdb/store.hpp"

namespace hawser::zdb {

// A named C++ filter receives the record and the caller's parameters.
using Filter = std::function<bool(RecordId id, const Map& record, const Map& params)>;

struct QueryOptions {
    Map params;                     // handed to the filter
    bool reverse = false;           // highest ids first
    bool ordered = false;           // deliver in id order (reverse: descending) across workers
    std::uint64_t max_results = 0;  // 0 = unlimited
    std::uint64_t max_scanned = 0;  // 0 = unlimited
    std::chrono::milliseconds time_limit{0};
    std::size_t fragment_records = 1000;               // a fragment holds at most this many
    std::chrono::milliseconds fragment_interval{500};  // ... and waits at most this long
    std::size_t parallelism = 0;                       // worker threads; 0 = one per core
};

struct Fragment {
    std::vector<std::pair<RecordId, Map>> records;
};

struct QueryProgress {
    std::uint64_t scanned = 0;
    std::uint64_t matched = 0;  // delivered to the sink
    double seconds = 0;
    double records_per_second() const { return seconds > 0 ? double(scanned) / seconds : 0; }
};

enum class QueryEnd { completed, cancelled, max_results, max_scanned, time_limit };

class Query {
  public:
    virtual ~Query() = default;
    virtual void pause() = 0;
    virtual void resume() = 0;
    virtual void cancel() = 0;
    virtual QueryProgress progress() const = 0;
    // Blocks until the query ends; the last fragment has been delivered by then.
    virtual Result<QueryEnd> wait() = 0;
};

// Starts a query. The database handle is kept alive until the query ends.
Result<std::shared_ptr<Query>> run_query(std::shared_ptr<Database> database, Filter filter,
                                         QueryOptions options, std::function<void(Fragment)> sink);

// Named filters registered once by the application (ZServer4D's model), then run by name.
class FilterRegistry {
  public:
    void add(std::string name, Filter filter);
    const Filter* find(std::string_view name) const;

  private:
    std::map<std::string, Filter, std::less<>> filters_;
};

}  // namespace hawser::zdb
