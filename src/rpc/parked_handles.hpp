// ParkedHandles: handles whose release blocks (a query's waits for its workers), let go on the
// worker pool so that an IO thread never releases one itself. When the pool takes no job they
// stay parked, and a timer on the first loop tries again every `retry` until one is taken.
// After close() (its owner's stop, where blocking is allowed) a handle parked is let go at once,
// where it is: nothing would let it go later.
// Ownership: shared; the jobs and the timer hold it weakly. Thread safety: any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace hawser::detail {

class Host;

class ParkedHandles : public std::enable_shared_from_this<ParkedHandles> {
  public:
    explicit ParkedHandles(std::shared_ptr<Host> host,
                           std::chrono::milliseconds retry = std::chrono::milliseconds(100));

    void park(std::shared_ptr<void> handle);
    // Lets go of every parked handle here, and of any parked after, at once. Blocks.
    void close();
    std::size_t size() const;

  private:
    void let_go_on_worker();
    void let_go();  // worker pool, or close()
    void arm_retry();

    const std::shared_ptr<Host> host_;
    const std::chrono::milliseconds retry_;
    mutable std::mutex mu_;
    std::vector<std::shared_ptr<void>> handles_;
    bool closed_ = false;
    bool retry_armed_ = false;
};

}  // namespace hawser::detail
