// OpenWindow: how many connects the connect phase keeps in flight. A queue of handshakes longer
// than the servers clear within their handshake timeout fails every connect in it, so a fixed
// number in flight (--max-opening) that suits an idle machine fails thousands when the machine
// slows (at a million sockets its connects went from 3,700 a second to 250). The window starts
// at the ceiling, halves when an open fails — at most once per window's worth of completions,
// so one burst of failures from one queue cuts once — and each success gives back 1/window
// (one a window's worth), as TCP's congestion window does. It never falls below an eighth of
// the ceiling: servers that refuse every connect (or drop them, each failing only at its
// timeout) make a run at most eight times longer, not unbounded. Not thread-safe: its owner
// locks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace hawser::bench {

class OpenWindow {
  public:
    // `ceiling`: 1 to max_ceiling (0 is taken as 1, more as max_ceiling).
    static constexpr std::size_t max_ceiling = 1'000'000;
    explicit OpenWindow(std::size_t ceiling) noexcept
        : ceiling_(double(std::clamp<std::size_t>(ceiling, 1, max_ceiling))),
          floor_(std::max(1.0, std::floor(ceiling_ / 8))),
          window_(ceiling_) {}

    // How many may be in flight now: at least one.
    std::size_t size() const noexcept { return std::size_t(window_); }
    // The smallest it has been.
    std::size_t lowest() const noexcept { return std::size_t(lowest_); }

    void succeeded() noexcept {
        ++since_cut_;
        window_ = std::min(ceiling_, window_ + 1 / window_);
    }
    void failed() noexcept {
        ++since_cut_;
        if (double(since_cut_) < cut_from_) return;  // part of the burst already cut for
        cut_from_ = window_;
        window_ = std::max(floor_, window_ / 2);
        lowest_ = std::min(lowest_, window_);
        since_cut_ = 0;
    }

  private:
    double ceiling_;
    double floor_;
    double window_;
    double lowest_ = window_;
    double cut_from_ = 0;  // the window when it was last cut: that many complete before the next
    std::size_t since_cut_ = 0;
};

}  // namespace hawser::bench
