// ZDB queries: a filter runs over a snapshot of a database's records in parallel (the id range,
// or the candidates an index gives, split among worker threads) and the matches come back in
// fragments to a sink, like ZServer4D's filter queries, with progress, limits, pause, resume,
// cancel and optional output into another database.
// Thread safety: a Query handle may be used from any thread; the sink is called from worker
// threads, one call at a time.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hawser/zdb/store.hpp"

namespace hawser::zdb {

// A named C++ filter receives the decoded record and the caller's parameters.
using RecordFilter = std::function<bool(RecordId id, const Map& record, const Map& params)>;

struct CompiledFilter;  // a declarative filter, compiled (declarative_filter.hpp)

// What a query runs: a C++ filter over decoded records, or a compiled declarative filter, which
// reads the fields it needs from the stored bytes, decodes only matches and can use indexes.
class Filter {
  public:
    Filter() = default;
    Filter(std::nullptr_t) {}
    template <class F>
    requires(!std::same_as<std::remove_cvref_t<F>, Filter> &&
             std::is_invocable_r_v<bool, const F&, RecordId, const Map&, const Map&>) Filter(F f)
        : record_(std::move(f)) {}
    explicit Filter(std::shared_ptr<const CompiledFilter> compiled)
        : compiled_(std::move(compiled)) {}

    explicit operator bool() const { return record_ || compiled_; }
    // Evaluates the filter on one record (a declarative one encodes it first).
    bool operator()(RecordId id, const Map& record, const Map& params) const;

    const RecordFilter& record_filter() const { return record_; }
    const std::shared_ptr<const CompiledFilter>& compiled() const { return compiled_; }

  private:
    RecordFilter record_;
    std::shared_ptr<const CompiledFilter> compiled_;
};

struct QueryProgress {
    std::uint64_t scanned = 0;
    std::uint64_t matched = 0;  // delivered to the sink
    double seconds = 0;
    std::string index;  // the indexed field the query reads candidates from; empty: a full scan
    std::uint64_t held = 0;  // ordered: matches waiting for earlier slices
    double records_per_second() const { return seconds > 0 ? double(scanned) / seconds : 0; }
};

enum class QueryEnd { completed, cancelled, max_results, max_scanned, time_limit };
// "completed", "cancelled", "max_results", "max_scanned", "time_limit".
std::string_view name_of(QueryEnd end);

struct QueryOptions {
    Map params;            // handed to the filter
    bool reverse = false;  // highest ids first
    bool ordered = false;  // deliver in id order (reverse: descending) across workers
    // Ordered: the fragments a worker ahead of the one being delivered may hold before it
    // waits; bounds the memory of an ordered query to about this many fragments per worker.
    std::size_t ordered_lookahead = 4;
    std::uint64_t max_results = 0;            // 0 = unlimited
    std::uint64_t max_scanned = 0;            // 0 = unlimited
    std::chrono::milliseconds time_limit{0};  // from the start, paused time included; 0 = none
    std::size_t fragment_records = 1000;      // a fragment holds at most this many
    std::size_t fragment_bytes = 1u << 20;    // ... this many encoded bytes (one more
                                              //     record at most)
    std::chrono::milliseconds fragment_interval{500};  // ... and waits at most this long
    std::size_t parallelism = 0;                       // worker threads; 0 = one per core
    // false: fragments carry matches as stored (Fragment::encoded) rather than decoded, for a
    // caller that forwards them (the network service) or reads a few fields itself.
    bool decode = true;
    bool use_indexes = true;  // declarative filters: answer from an index when one helps
    // Start paused: nothing is read until resume(), for a caller that must hold the handle
    // before the first fragment comes (the network service's flow control).
    bool start_paused = false;
    // Pipeline output: matches are also written to this database under their own ids, and its
    // id counter moves past the source's, so it can later replace the source (Store::replace).
    // It must be empty when the query starts. With an output the sink may be empty.
    std::shared_ptr<Database> output;
    // Called once when a started query has ended, after the last fragment, with what wait()
    // returns and the final progress: for callers that must not block a thread on wait() (the
    // network service). It runs on a query worker under the delivery lock, so it must be quick
    // and must not call wait() or release the last handle to the query: hand the work on.
    std::function<void(Result<QueryEnd>, const QueryProgress&)> on_end;
};

// Records as stored (MessagePack maps), back to back in one buffer.
class EncodedRecords {
  public:
    std::size_t size() const { return ids_.size(); }
    bool empty() const { return ids_.empty(); }
    RecordId id(std::size_t i) const { return ids_[i]; }
    std::string_view bytes(std::size_t i) const {
        auto begin = i ? ends_[i - 1] : 0;
        return std::string_view(bytes_).substr(begin, ends_[i] - begin);
    }
    void add(RecordId id, std::string_view bytes) {
        ids_.push_back(id);
        bytes_.append(bytes);
        ends_.push_back(bytes_.size());
    }
    void truncate(std::size_t n) {
        if (n >= size()) return;
        ids_.resize(n);
        ends_.resize(n);
        bytes_.resize(n ? ends_.back() : 0);
    }

  private:
    std::vector<RecordId> ids_;
    std::string bytes_;
    std::vector<std::size_t> ends_;
};

struct Fragment {
    std::vector<std::pair<RecordId, Map>> records;  // decoded (QueryOptions::decode), or
    EncodedRecords encoded;                         // as stored
    std::size_t size() const { return records.size() + encoded.size(); }
};

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

// A database that runs its queries where it lives rather than here (a RemoteStore's):
// run_query hands them to it.
class QueryHost {
  public:
    virtual ~QueryHost() = default;
    virtual Result<std::shared_ptr<Query>> start_query(std::shared_ptr<Database> self,
                                                       Filter filter, QueryOptions options,
                                                       std::function<void(Fragment)> sink) = 0;
};

// Starts a query on a consistent snapshot of the database: writes made while it runs are not
// seen. The database handle is kept alive until the query ends; the Store must outlive it.
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
