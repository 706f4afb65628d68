// Parallel filter queries. The id range [1, next_id) is cut into one contiguous slice per
// worker (reverse queries walk each slice downwards). Each worker batches its matches into
// fragments; delivery to the sink is serialised. With `ordered`, a slice's fragments are held
// until every slice before it has finished, so the sink sees ids in order.
#include "hawser/zdb/query.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace hawser::zdb {

namespace {

using Clock = std::chrono::steady_clock;

class QueryImpl final : public Query, public std::enable_shared_from_this<QueryImpl> {
  public:
    QueryImpl(std::shared_ptr<Database> db, Filter filter, QueryOptions options,
              std::function<void(Fragment)> sink)
        : db_(std::move(db)),
          filter_(std::move(filter)),
          options_(std::move(options)),
          sink_(std::move(sink)),
          started_(Clock::now()) {}

    ~QueryImpl() override {
        cancel();
        for (auto& t : workers_)
            if (t.joinable()) t.join();
    }

    void start() {
        RecordId end = db_->stats().next_id;  // ids in [1, end)
        std::size_t n = options_.parallelism ? options_.parallelism
                                             : std::max(1u, std::thread::hardware_concurrency());
        n = std::max<std::size_t>(1, std::min<std::size_t>(n, end > 1 ? end - 1 : 1));
        RecordId span = end > 1 ? (end - 1 + n - 1) / n : 1;
        for (std::size_t i = 0; i < n; ++i) {
            RecordId lo = 1 + i * span, hi = std::min<RecordId>(end, lo + span);
            slices_.push_back(Slice{lo, hi});
        }
        // Slices in delivery order: ascending ids, or descending for reverse queries.
        if (options_.reverse) std::reverse(slices_.begin(), slices_.end());
        for (std::size_t i = 0; i < slices_.size(); ++i)
            workers_.emplace_back([this, i] { run_slice(i); });
    }

    // pause, resume and cancel take no lock that delivery holds, so a sink may call them.
    void pause() override { paused_.store(true); }
    void resume() override {
        paused_.store(false);
        cv_.notify_all();
    }
    void cancel() override {
        stop(QueryEnd::cancelled);
        resume();
    }
    QueryProgress progress() const override {
        return {scanned_.load(), matched_.load(),
                std::chrono::duration<double>(Clock::now() - started_).count()};
    }
    Result<QueryEnd> wait() override {
        for (auto& t : workers_)
            if (t.joinable()) t.join();
        std::lock_guard lock(mu_);
        if (!error_.message.empty()) return error_;
        return end_.load();
    }

  private:
    struct Slice {
        RecordId lo, hi;            // [lo, hi)
        std::deque<Fragment> held;  // ordered mode: fragments waiting for earlier slices
        bool finished = false;
    };

    void stop(QueryEnd why) {
        if (!stopped_.exchange(true)) end_.store(why);
    }

    // Hands a fragment over (or holds it, in ordered mode); trims to max_results.
    void deliver(std::size_t slice, Fragment&& fragment, bool last) {
        std::unique_lock lock(mu_);
        auto& s = slices_[slice];
        if (!fragment.records.empty()) s.held.push_back(std::move(fragment));
        if (last) s.finished = true;
        // Unordered: deliver this slice's fragments now. Ordered: deliver from the first slice
        // not yet drained, while the slices before it are finished.
        auto flush = [&](Slice& from) {
            while (!from.held.empty()) {
                auto f = std::move(from.held.front());
                from.held.pop_front();
                if (delivered_stopped_) continue;
                if (options_.max_results) {
                    auto room = options_.max_results - matched_.load();
                    if (f.records.size() >= room) {
                        f.records.resize(room);
                        delivered_stopped_ = true;
                        stop(QueryEnd::max_results);
                    }
                }
                matched_ += f.records.size();
                if (!f.records.empty()) sink_(std::move(f));  // under the lock: one call at a time
            }
        };
        if (!options_.ordered) return flush(s);
        while (next_ < slices_.size()) {
            flush(slices_[next_]);
            if (!slices_[next_].finished) break;
            ++next_;
        }
    }

    void run_slice(std::size_t index) {
        auto [lo, hi] = std::pair{slices_[index].lo, slices_[index].hi};
        Fragment fragment;
        auto fragment_started = Clock::now();
        ScanOptions scan;
        scan.reverse = options_.reverse;
        scan.from = options_.reverse ? hi - 1 : lo;
        scan.to = options_.reverse ? lo - 1 : hi;
        if (options_.reverse && lo == 1) scan.to = 0;  // 0 means unbounded; ids start at 1
        auto result = db_->scan(
            [&](RecordId id, const Map& record) {
                if (stopped_.load()) return false;
                while (paused_.load() && !stopped_.load()) {
                    std::unique_lock lock(pause_mu_);
                    cv_.wait_for(lock,
                                 std::chrono::milliseconds(50));  // a missed notify costs 50 ms
                }
                auto scanned = ++scanned_;
                if (filter_(id, record, options_.params)) fragment.records.emplace_back(id, record);
                auto now = Clock::now();
                if (fragment.records.size() >= options_.fragment_records ||
                    (!fragment.records.empty() &&
                     now - fragment_started >= options_.fragment_interval)) {
                    deliver(index, std::move(fragment), false);
                    fragment = {};
                    fragment_started = now;
                }
                if (options_.max_scanned && scanned >= options_.max_scanned)
                    stop(QueryEnd::max_scanned);
                if (options_.time_limit.count() && now - started_ >= options_.time_limit)
                    stop(QueryEnd::time_limit);
                return !stopped_.load();
            },
            scan);
        if (!result) {
            std::lock_guard lock(mu_);
            error_ = result.error();
            stopped_.store(true);
        }
        deliver(index, std::move(fragment), true);
    }

    std::shared_ptr<Database> db_;
    Filter filter_;
    QueryOptions options_;
    std::function<void(Fragment)> sink_;
    Clock::time_point started_;
    std::vector<Slice> slices_;
    std::vector<std::thread> workers_;
    std::mutex mu_;        // delivery and the error
    std::mutex pause_mu_;  // only for sleeping while paused
    std::condition_variable cv_;
    std::atomic<bool> paused_{false}, stopped_{false};
    std::atomic<std::uint64_t> scanned_{0}, matched_{0};
    std::atomic<QueryEnd> end_{QueryEnd::completed};
    Error error_;
    std::size_t next_ = 0;            // ordered delivery: the slice being drained
    bool delivered_stopped_ = false;  // max_results reached: nothing more goes to the sink
};

}  // namespace

Result<std::shared_ptr<Query>> run_query(std::shared_ptr<Database> database, Filter filter,
                                         QueryOptions options, std::function<void(Fragment)> sink) {
    if (!database) return Error{Errc::invalid_argument, "no database"};
    if (!filter) return Error{Errc::invalid_argument, "no filter"};
    if (!sink) return Error{Errc::invalid_argument, "no sink"};
    if (options.fragment_records == 0)
        return Error{Errc::invalid_argument, "fragment_records must be at least 1"};
    auto q = std::make_shared<QueryImpl>(std::move(database), std::move(filter), std::move(options),
                                         std::move(sink));
    q->start();
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
