// ParkedHandles: handles whose release blocks (a query's waits for its workers), let go on the
// worker pool so that an IO thread never releases one itself. When the pool takes no job they
// stay parked, and a timer on the first loop tries again every `retry` until one is taken.
// close() (its owner's stop, where blocking is allowed) lets go of what is parked and waits for
// what a worker is letting go of; a handle parked after it is let go at once, where it is
// (nothing would let it go later): the one case where that may be an IO thread, a release
// racing the stop.
// Ownership: shared; the jobs and the timer hold it weakly. Thread safety: any thread.
#pragma once

#include <chrono>
#include <condition_variable>
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
    // Lets go of every parked handle here, and of any parked after, at once; returns once no
    // worker is letting go of one either. Blocks.
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
    std::condition_variable done_;  // letting_go_ fell to 0
    std::size_t letting_go_ = 0;    // let_go() calls under way
    bool closed_ = false;
    bool retry_armed_ = false;
};

}  // namespace hawser::detail
