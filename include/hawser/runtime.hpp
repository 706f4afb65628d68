// Runtime: the IO threads (one event loop each) and the worker pool that servers and clients run
// on. A connection stays on one IO thread for life. Several servers and clients may share one
// Runtime (a load generator holds thousands of clients on two threads).
// Ownership: the Runtime must outlive every Server and Client built on it.
// Thread safety: construct and destroy on one non-IO thread; the rest is thread-safe.
#pragma once

#include <cstddef>
#include <memory>

namespace hawser {

namespace detail {
class RuntimeImpl;
}

struct RuntimeOptions {
    std::size_t io_threads = 1;      // 0 = one per core
    std::size_t worker_threads = 1;  // for handlers marked on_worker
    // The worker queue: jobs and payload bytes waiting or running. Past either, calls are
    // answered Errc::overloaded and direct messages are dropped (and counted).
    std::size_t max_worker_jobs = 65536;
    std::size_t max_worker_bytes = 256u << 20;
};

class Runtime {
  public:
    explicit Runtime(RuntimeOptions options = {});
    ~Runtime();  // stops the loops and joins the threads
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    std::size_t io_threads() const noexcept;
    // True on any Runtime's IO thread: blocking there would stall every connection it serves.
    static bool on_io_thread() noexcept;

    detail::RuntimeImpl& impl() noexcept { return *impl_; }

  private:
    std::unique_ptr<detail::RuntimeImpl> impl_;
};

// Raises the soft open-file limit to the hard limit; returns the resulting soft limit.
std::size_t raise_file_limit();

}  // namespace hawser
