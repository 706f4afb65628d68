// WorkerPool: the threads for blocking or heavy handlers (CommandOptions::on_worker), with a
// bounded queue: at most max_jobs jobs and max_bytes payload bytes waiting or running. A full
// pool refuses the job at once (the caller answers Errc::overloaded) rather than queue without
// bound.
// Ownership: owned by RuntimeImpl; jobs own what they capture.
// Thread safety: try_post from any thread.
#pragma once

#include <algorithm>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <cstddef>
#include <utility>

namespace hawser::detail {

class WorkerPool {
  public:
    WorkerPool(std::size_t threads, std::size_t max_jobs, std::size_t max_bytes)
        : pool_(threads ? threads : 1),
          threads_(threads ? threads : 1),
          max_jobs_(max_jobs),
          max_bytes_(max_bytes) {}

    // Queues `job` accounted as `bytes`; false (and the job is dropped unrun) when full.
    template <class Job>
    bool try_post(std::size_t bytes, Job&& job) {
        if (jobs_.fetch_add(1, std::memory_order_relaxed) >= max_jobs_) {
            jobs_.fetch_sub(1, std::memory_order_relaxed);
            return false;
        }
        if (bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes > max_bytes_) {
            bytes_.fetch_sub(bytes, std::memory_order_relaxed);
            jobs_.fetch_sub(1, std::memory_order_relaxed);
            return false;
        }
        asio::post(pool_, [this, bytes, job = std::forward<Job>(job)]() mutable {
            struct Done {
                WorkerPool& pool;
                std::size_t bytes;
                ~Done() {
                    pool.bytes_.fetch_sub(bytes, std::memory_order_relaxed);
                    pool.jobs_.fetch_sub(1, std::memory_order_relaxed);
                }
            } done{*this, bytes};
            job();
        });
        return true;
    }

    // A place for a long job (seconds of a worker) among half the threads (one on a pool of
    // one), so that long jobs a peer can ask for cannot hold every worker; false when taken.
    // Give it back with end_long_job() once the job ends, or was not posted.
    bool try_start_long_job() noexcept {
        if (long_jobs_.fetch_add(1) < std::max<std::size_t>(1, threads_ / 2)) return true;
        long_jobs_.fetch_sub(1);
        return false;
    }
    void end_long_job() noexcept { long_jobs_.fetch_sub(1); }
    // Gives a long job's place back when the job that holds it ends.
    struct LongJobPlace {
        WorkerPool& pool;
        ~LongJobPlace() { pool.end_long_job(); }
    };
    std::size_t queued_jobs() const noexcept { return jobs_.load(std::memory_order_relaxed); }
    std::size_t queued_bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
    void join() { pool_.join(); }

  private:
    asio::thread_pool pool_;
    const std::size_t threads_, max_jobs_, max_bytes_;
    std::atomic<std::size_t> jobs_{0}, bytes_{0}, long_jobs_{0};
};

}  // namespace hawser::detail
