// Gate: the one shutdown primitive (after seastar's gate). Work enters through the gate and
// holds a Pass while in flight; close() stops new work from entering and wait_until() waits
// for the work in flight to leave.
// Thread safety: every method may be called from any thread. A Pass may be moved to and
// dropped on any thread.
#pragma once

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

    // A pass, or nothing once the gate is closed.
    std::optional<Pass> enter() {
        std::lock_guard lock(mu_);
        if (closed_) return std::nullopt;
        ++inside_;
        return Pass(this);
    }
    void close() {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    // True when nothing is in flight any more; false if the deadline came first.
    bool wait_until(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mu_);
        return cv_.wait_until(lock, deadline, [this] { return inside_ == 0; });
    }
    std::size_t inside() const {
        std::lock_guard lock(mu_);
        return inside_;
    }

  private:
    void leave() noexcept {
        std::lock_guard lock(mu_);
        if (--inside_ == 0) cv_.notify_all();
    }

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::size_t inside_ = 0;
    bool closed_ = false;
};

}  // namespace hawser::detail
