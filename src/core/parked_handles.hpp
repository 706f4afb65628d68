// ParkedHandles: handles whose release blocks (a query's waits for its workers), kept here until
// a worker thread lets them go, so that an IO thread never releases one itself. Its owner posts
// let_go() to its worker pool after parking, and tries again later (its next release, a sweep,
// its stop) when the pool takes no job. Thread safety: any thread; let_go() blocks.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace hawser::detail {

class ParkedHandles {
  public:
    void park(std::shared_ptr<void> handle) {
        std::lock_guard lock(mu_);
        handles_.push_back(std::move(handle));
    }
    // Releases every parked handle, waiting for what each waits for.
    void let_go() {
        std::vector<std::shared_ptr<void>> handles;
        {
            std::lock_guard lock(mu_);
            handles.swap(handles_);
        }
        handles.clear();
    }
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return handles_.size();
    }

  private:
    mutable std::mutex mu_;
    std::vector<std::shared_ptr<void>> handles_;
};

}  // namespace hawser::detail
