// Gate: the one shutdown primitive (after seastar's gate). Work enters through the gate and
// holds a Pass while in flight; close() stops new work from entering and wait_until() waits
// for the work in flight to leave.
// Thread safety: every method may be called from any thread. A Pass may be moved to and
// dropped on any thread; whoever holds one keeps the gate alive (the Host it belongs to).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <utility>

namespace hawser::detail {

class Gate {
  public:
    class Pass {
      public:
        Pass() = default;
        Pass(Pass&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
        Pass& operator=(Pass&& other) noexcept {
            if (this != &other) {
                release();
                gate_ = std::exchange(other.gate_, nullptr);
            }
            return *this;
        }
        ~Pass() { release(); }
        explicit operator bool() const noexcept { return gate_ != nullptr; }

      private:
        friend class Gate;
        explicit Pass(Gate* gate) : gate_(gate) {}
        void release() noexcept {
            if (auto g = std::exchange(gate_, nullptr)) g->leave();
        }
        Gate* gate_ = nullptr;
    };

    // A pass, or nothing once the gate is closed. Lock-free: every call passes it.
    std::optional<Pass> enter() {
        // Counted first, then the gate checked (both sequentially consistent, as is close()):
        // either this sees it closed and backs out, or wait_until() sees this pass inside.
        inside_.fetch_add(1);
        if (closed_.load()) {
            leave();
            return std::nullopt;
        }
        return Pass(this);
    }
    void close() { closed_.store(true); }
    // True when nothing is in flight any more; false if the deadline came first.
    bool wait_until(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mu_);
        waiters_.fetch_add(1);  // before the check: a pass leaving after it sees a waiter
        bool empty = cv_.wait_until(lock, deadline, [this] { return inside_.load() == 0; });
        waiters_.fetch_sub(1);
        return empty;
    }
    std::size_t inside() const { return inside_.load(); }

  private:
    void leave() noexcept {
        // The last one out wakes the waiters, if any; taking the lock orders the wake after a
        // waiter's check, so it is never lost.
        if (inside_.fetch_sub(1) == 1 && waiters_.load() > 0) {
            std::lock_guard lock(mu_);
            cv_.notify_all();
        }
    }

    std::mutex mu_;  // for the waiter only
    std::condition_variable cv_;
    std::atomic<std::size_t> inside_{0};
    std::atomic<std::size_t> waiters_{0};
    std::atomic<bool> closed_{false};
};

}  // namespace hawser::detail
