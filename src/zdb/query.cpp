// Parallel filter queries on a snapshot. Without a usable index, the id range [1, next_id) is cut
// into one contiguous slice per worker (reverse queries walk each slice downwards). With one
// (chosen by query_plan.cpp), the candidate ids read from the index are cut the same way and
// fetched by id. Each worker batches its matches into fragments; delivery to the sink is
// serialised. With `ordered`, a slice's fragments are held until every slice before it has
// finished, so the sink sees ids in order; a slice holds at most `ordered_lookahead` fragments (one
// more when it ends) before its worker waits for its turn.
#include "hawser/zdb/query.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "zdb/compiled_filter.hpp"
#include "zdb/database_impl.hpp"
#include "zdb/query_plan.hpp"

namespace hawser::zdb {

namespace {

using Clock = std::chrono::steady_clock;

class QueryImpl final : public Query {
  public:
    QueryImpl(std::shared_ptr<Database> db, std::shared_ptr<Table> table, Filter filter,
              QueryOptions options, std::function<void(Fragment)> sink,
              std::shared_ptr<Table> output)
        : db_(std::move(db)),
          table_(std::move(table)),
          output_(std::move(output)),
          filter_(std::move(filter)),
          options_(std::move(options)),
          sink_(std::move(sink)),
          started_(Clock::now()),
          paused_(options_.start_paused) {}

    ~QueryImpl() override {
        cancel();
        for (auto& t : workers_)
            if (t.joinable()) t.join();
        if (snapshot_) table_->db().ReleaseSnapshot(snapshot_);
    }

    Result<void> start() {
        auto [snapshot, state] = table_->snapshot();
        snapshot_ = snapshot;
        source_next_id_ = state.next_id;
        auto candidates = plan_query(*table_, snapshot_, filter_, options_, state, index_);
        if (!candidates) return candidates.error();
        std::size_t n = options_.parallelism ? std::min<std::size_t>(options_.parallelism, 256)
                                             : std::max(1u, std::thread::hardware_concurrency());
        if (*candidates) {
            candidates_ = std::move(**candidates);
            std::size_t total = candidates_.size();
            n = std::max<std::size_t>(1, std::min(n, total));
            std::size_t span = (total + n - 1) / n;
            for (std::size_t i = 0; i < n; ++i)
                slices_.push_back(Slice{.first = std::min(total, i * span),
                                        .last = std::min(total, (i + 1) * span)});
        } else {
            RecordId end = state.next_id;  // ids in [1, end)
            n = std::max<std::size_t>(1, std::min<std::size_t>(n, end > 1 ? end - 1 : 1));
            RecordId span = end > 1 ? (end - 1 + n - 1) / n : 1;
            for (std::size_t i = 0; i < n; ++i) {
                RecordId lo = 1 + i * span, hi = std::min<RecordId>(end, lo + span);
                slices_.push_back(Slice{.lo = lo, .hi = std::max(lo, hi)});
            }
            // Slices in delivery order: ascending ids, or descending for reverse queries.
            if (options_.reverse) std::reverse(slices_.begin(), slices_.end());
        }
        for (std::size_t i = 0; i < slices_.size(); ++i)
            workers_.emplace_back([this, i] { run_slice(i); });
        return {};
    }

    // pause, resume and cancel take no lock that delivery holds, so a sink may call them.
    void pause() override { paused_.store(true); }
    void resume() override {
        paused_.store(false);
        cv_.notify_all();
    }
    void cancel() override {
        cancelled_.store(true);  // also after another stop (a limit) came first
        stop(QueryEnd::cancelled);
        resume();
    }
    QueryProgress progress() const override {
        return {scanned_.load(), matched_.load(),
                std::chrono::duration<double>(Clock::now() - started_).count(), index_,
                held_records_.load()};
    }
    Result<QueryEnd> wait() override {
        {
            std::lock_guard joining(join_mu_);  // several threads may wait
            for (auto& t : workers_)
                if (t.joinable()) t.join();
        }
        std::lock_guard lock(mu_);
        if (!error_.message.empty()) return error_;
        return ended_.value_or(end_.load());
    }

  private:
    struct Slice {
        RecordId lo = 0, hi = 0;          // a scan over [lo, hi), or
        std::size_t first = 0, last = 0;  // candidates_[first, last)
        std::deque<Fragment> held;        // ordered mode: waiting for earlier slices
        bool finished = false;
    };

    // Under mu_: the sink threw; nothing more reaches it, and the query fails with its text.
    void sink_threw(const std::string& what) {
        if (error_.message.empty())
            error_ = Error{Errc::handler_error, "the query's sink threw: " + what};
        stopped_.store(true);
        delivered_stopped_ = true;
    }

    void stop(QueryEnd why) {
        if (!stopped_.exchange(true)) end_.store(why);
    }

    void fail(Error error) {
        std::lock_guard lock(mu_);
        if (error_.message.empty()) error_ = std::move(error);
        stopped_.store(true);
    }

    // Writes a fragment to the output database; false (and the error kept) on failure.
    bool write_output(const Fragment& f) {
        std::vector<std::pair<RecordId, std::string>> records;
        records.reserve(f.size());
        for (const auto& [id, doc] : f.records) records.emplace_back(id, encode_document(doc));
        for (std::size_t i = 0; i < f.encoded.size(); ++i)
            records.emplace_back(f.encoded.id(i), std::string(f.encoded.bytes(i)));
        auto r = output_->put_encoded(records);
        if (!r && error_.message.empty())
            error_ = Error{r.error().code, "query output: " + r.error().message};
        if (!r) stopped_.store(true);
        return bool(r);
    }

    // Hands a fragment over (or holds it, in ordered mode); trims to max_results.
    void deliver(std::size_t slice, Fragment&& fragment, bool last) {
        std::unique_lock lock(mu_);
        auto& s = slices_[slice];
        if (fragment.size()) {
            held_records_ += fragment.size();
            s.held.push_back(std::move(fragment));
        }
        if (last) s.finished = true;
        // Unordered: deliver this slice's fragments now. Ordered: deliver from the first slice
        // not yet drained, while the slices before it are finished.
        auto flush = [&](Slice& from) {
            while (!from.held.empty()) {
                auto f = std::move(from.held.front());
                from.held.pop_front();
                held_records_ -= f.size();
                // Cancelled or failed: nothing more reaches the sink or the output.
                if (cancelled_.load() || !error_.message.empty()) delivered_stopped_ = true;
                if (delivered_stopped_) continue;
                if (options_.max_results) {
                    auto room = options_.max_results - matched_.load();
                    if (f.size() >= room) {
                        f.records.resize(std::min(f.records.size(), room));
                        f.encoded.truncate(room);
                        delivered_stopped_ = true;
                        stop(QueryEnd::max_results);
                    }
                }
                if (f.size() == 0) continue;
                if (output_ && !write_output(f)) {
                    delivered_stopped_ = true;
                    continue;
                }
                matched_ += f.size();
                if (!sink_) continue;
                try {
                    sink_(std::move(f));             // under the lock: one call at a time
                } catch (const std::exception& e) {  // the query ends with the error
                    sink_threw(e.what());
                } catch (...) {
                    sink_threw("a non-standard exception");
                }
            }
        };
        if (!options_.ordered) {
            flush(s);
        } else {
            auto before = next_;
            while (next_ < slices_.size()) {
                flush(slices_[next_]);
                if (!slices_[next_].finished) break;
                ++next_;
            }
            if (next_ != before) turn_.notify_all();
            // Backpressure: a slice ahead of the one being delivered holds at most
            // `ordered_lookahead` fragments, then its worker waits for its turn.
            while (!last && slice > next_ && s.held.size() >= options_.ordered_lookahead &&
                   !stopped_.load())
                turn_.wait_for(lock, std::chrono::milliseconds(50));  // also sees cancel()
        }
        if (last && ++finished_ == slices_.size()) {
            ended_ = end_.load();  // what on_end says; a cancel after it changes nothing
            // The output takes the source's id counter: ids the source gave out stay unused.
            if (output_ && error_.message.empty())
                if (auto r = output_->reserve_ids(source_next_id_); !r) error_ = r.error();
            if (options_.on_end) try {
                    options_.on_end(error_.message.empty() ? Result<QueryEnd>(*ended_)
                                                           : Result<QueryEnd>(error_),
                                    progress());
                } catch (...) {  // a query worker must not end the process; nothing to tell
                }
        }
    }

    void run_slice(std::size_t index) {
        const auto& slice = slices_[index];
        const auto& compiled = filter_.compiled();
        Fragment fragment;
        std::size_t fragment_bytes = 0;
        auto fragment_started = Clock::now();
        // Without a max_scanned limit the shared counter is updated in steps: one atomic
        // increment per record from every worker would bounce its cache line between cores.
        const std::uint64_t publish_every = options_.max_scanned ? 1 : 256;
        std::uint64_t unpublished = 0, since_clock = 0;
        // Examines one record; false stops the slice.
        auto step = [&](RecordId id, std::string_view bytes) {
            if (stopped_.load(std::memory_order_relaxed)) return false;
            while (paused_.load() && !stopped_.load()) {
                {
                    std::unique_lock lock(pause_mu_);
                    cv_.wait_for(lock, std::chrono::milliseconds(50));  // a missed notify: 50 ms
                }
                // The time limit counts paused time: a query nobody resumes still ends.
                if (options_.time_limit.count() && Clock::now() - started_ >= options_.time_limit)
                    stop(QueryEnd::time_limit);
            }
            std::uint64_t scanned = 0;
            if (++unpublished == publish_every) scanned = scanned_ += unpublished, unpublished = 0;
            bool matched = false;
            if (compiled) {
                RecordView view(bytes);
                matched = compiled->match(view);
                if (view.corrupt()) return corrupt(id, "malformed MessagePack");
            }
            if (matched && !options_.decode) {
                fragment.encoded.add(id, bytes);
            } else if (matched || !compiled) {
                auto doc = decode_document(bytes);
                if (!doc) return corrupt(id, doc.error().message);
                if (!compiled) matched = filter_.record_filter()(id, *doc, options_.params);
                if (matched && options_.decode)
                    fragment.records.emplace_back(id, std::move(*doc));
                else if (matched)
                    fragment.encoded.add(id, bytes);
            }
            if (matched) fragment_bytes += bytes.size();
            if (options_.max_scanned && scanned >= options_.max_scanned)
                stop(QueryEnd::max_scanned);
            bool full = fragment.size() >= options_.fragment_records ||
                        fragment_bytes >= options_.fragment_bytes;
            // The clock is read every 64 records: the time bounds are not that fine.
            if (!full && ++since_clock < 64) return true;
            since_clock = 0;
            auto now = Clock::now();
            if (full || (fragment.size() && now - fragment_started >= options_.fragment_interval)) {
                deliver(index, std::move(fragment), false);
                fragment = {};
                fragment_bytes = 0;
                fragment_started = now;
            }
            if (options_.time_limit.count() && now - started_ >= options_.time_limit)
                stop(QueryEnd::time_limit);
            return !stopped_.load();
        };
        Result<void> result;
        try {  // an exception (a record filter's, bad_alloc) fails the query, not the process
            if (slice.last > slice.first) {
                for (auto i = slice.first; i < slice.last; ++i) {
                    auto bytes = table_->get_encoded(candidates_[i], snapshot_);
                    if (!bytes) {
                        result = bytes.error();
                        break;
                    }
                    if (*bytes && !step(candidates_[i], **bytes)) break;
                }
            } else if (slice.hi > slice.lo) {
                ScanOptions scan;
                scan.reverse = options_.reverse;
                scan.from = options_.reverse ? slice.hi - 1 : slice.lo;
                scan.to = options_.reverse ? slice.lo - 1 : slice.hi;
                result = table_->scan_encoded(scan, step, snapshot_);  // reverse to 0: unbounded
            }
        } catch (const std::exception& e) {
            result = Error{Errc::handler_error, std::string("a query worker failed: ") + e.what()};
        } catch (...) {
            result = Error{Errc::handler_error, "a query worker failed"};
        }
        scanned_ += unpublished;
        if (!result) fail(result.error());
        deliver(index, std::move(fragment), true);
    }

    bool corrupt(RecordId id, const std::string& why) {
        fail(Error{Errc::storage_error, "record " + std::to_string(id) + " is corrupt: " + why});
        return false;
    }

    std::shared_ptr<Database> db_;  // keeps the handle (and its name) alive
    std::shared_ptr<Table> table_;
    std::shared_ptr<Table> output_;
    Filter filter_;
    QueryOptions options_;
    std::function<void(Fragment)> sink_;
    Clock::time_point started_;
    const rocksdb::Snapshot* snapshot_ = nullptr;
    RecordId source_next_id_ = 1;
    std::string index_;
    std::vector<RecordId> candidates_;
    std::vector<Slice> slices_;
    std::vector<std::thread> workers_;
    std::mutex mu_;        // delivery and the error
    std::mutex pause_mu_;  // only for sleeping while paused
    std::condition_variable cv_;
    std::atomic<bool> paused_, stopped_{false};
    std::atomic<bool> cancelled_{false};  // cancel() was called, whatever stopped the query
    std::optional<QueryEnd> ended_;       // under mu_: how it ended, once the last slice did
    std::mutex join_mu_;                  // wait()'s joins
    std::atomic<std::uint64_t> scanned_{0}, matched_{0}, held_records_{0};
    std::condition_variable turn_;  // ordered delivery: the slice being delivered moved on
    std::atomic<QueryEnd> end_{QueryEnd::completed};
    Error error_;
    std::size_t next_ = 0;            // ordered delivery: the slice being drained
    std::size_t finished_ = 0;        // slices done
    bool delivered_stopped_ = false;  // max_results reached: nothing more goes to the sink
};

Result<std::shared_ptr<Table>> table_of(const std::shared_ptr<Database>& database) {
    auto* impl = dynamic_cast<DatabaseImpl*>(database.get());
    if (!impl) return Error{Errc::invalid_argument, "not a database of a ZDB store"};
    return impl->table();
}

}  // namespace

std::string_view name_of(QueryEnd end) {
    switch (end) {
        case QueryEnd::completed:
            return "completed";
        case QueryEnd::cancelled:
            return "cancelled";
        case QueryEnd::max_results:
            return "max_results";
        case QueryEnd::max_scanned:
            return "max_scanned";
        case QueryEnd::time_limit:
            return "time_limit";
    }
    return "unknown";
}

bool Filter::operator()(RecordId id, const Map& record, const Map& params) const {
    if (record_) return record_(id, record, params);
    if (!compiled_) return false;
    auto bytes = encode_document(record);
    RecordView view(bytes);
    return compiled_->match(view);
}

Result<std::shared_ptr<Query>> run_query(std::shared_ptr<Database> database, Filter filter,
                                         QueryOptions options, std::function<void(Fragment)> sink) {
    if (!database) return Error{Errc::invalid_argument, "no database"};
    if (!filter) return Error{Errc::invalid_argument, "no filter"};
    if (!sink && !options.output) return Error{Errc::invalid_argument, "no sink"};
    if (options.fragment_records == 0 || options.fragment_bytes == 0)
        return Error{Errc::invalid_argument, "fragments must hold at least one record and byte"};
    if (options.ordered && options.ordered_lookahead == 0)
        return Error{Errc::invalid_argument, "ordered_lookahead must be at least 1"};
    if (auto* host = dynamic_cast<QueryHost*>(database.get()))
        return host->start_query(std::move(database), std::move(filter), std::move(options),
                                 std::move(sink));
    auto table = table_of(database);
    if (!table) return table.error();
    std::shared_ptr<Table> output;
    if (options.output) {
        auto out = table_of(options.output);
        if (!out) return out.error();
        if (*out == *table)
            return Error{Errc::invalid_argument, "a query cannot write into its own database"};
        auto state = (*out)->state();
        if (state.count != 0 || state.next_id != 1)
            return Error{Errc::invalid_argument,
                         "the output database '" + options.output->name() + "' is not empty"};
        output = std::move(*out);
    }
    auto q = std::make_shared<QueryImpl>(std::move(database), std::move(*table), std::move(filter),
                                         std::move(options), std::move(sink), std::move(output));
    if (auto r = q->start(); !r) return r.error();
    return std::shared_ptr<Query>(q);
}

void FilterRegistry::add(std::string name, Filter filter) {
    filters_.insert_or_assign(std::move(name), std::move(filter));
}

const Filter* FilterRegistry::find(std::string_view name) const {
    auto it = filters_.find(name);
    return it == filters_.end() ? nullptr : &it->second;
}

}  // namespace hawser::zdb
