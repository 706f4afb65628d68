// Lock-free latency histogram: buckets a quarter of a power of two wide (~19% resolution),
// written from any thread, read as percentiles.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace hawser::detail {

class Histogram {
  public:
    static constexpr int sub_buckets = 4;
    static constexpr int bucket_count = 64 * sub_buckets;

    void record(std::uint64_t value) noexcept {
        buckets_[index(value)].fetch_add(1, std::memory_order_relaxed);
        std::uint64_t prev = max_.load(std::memory_order_relaxed);
        while (value > prev &&
               !max_.compare_exchange_weak(prev, value, std::memory_order_relaxed)) {
        }
    }

    // Upper bound of the bucket holding the q-quantile (0 < q ≤ 1); 0 when empty.
    std::uint64_t quantile(double q) const noexcept {
        std::array<std::uint64_t, bucket_count> snap;
        std::uint64_t total = 0;
        for (int i = 0; i < bucket_count; ++i)
            total += snap[i] = buckets_[i].load(std::memory_order_relaxed);
        if (total == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.5);
        if (rank == 0) rank = 1;
        std::uint64_t seen = 0;
        for (int i = 0; i < bucket_count; ++i) {
            seen += snap[i];
            if (seen >= rank) return std::min(upper(i), max());
        }
        return max();
    }
    std::uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }

  private:
    static int index(std::uint64_t v) noexcept {
        if (v < 8) return static_cast<int>(v);
        int log = 63 - std::countl_zero(v);
        int sub = static_cast<int>((v >> (log - 2)) & 3);
        return log * sub_buckets + sub;  // values below 8 are exact in buckets 0..7
    }
    static std::uint64_t upper(int i) noexcept {
        if (i < 8) return static_cast<std::uint64_t>(i);
        int log = i / sub_buckets, sub = i % sub_buckets;
        return ((std::uint64_t(4 + sub + 1)) << (log - 2)) - 1;
    }

    std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
    std::atomic<std::uint64_t> max_{0};
};

}  // namespace hawser::detail
