// Lock-free latency histogram: buckets a quarter of a power of two wide (~19% resolution),
// written from any thread (record) or by one thread alone (record_one_writer: plain loads and
// stores, no locked instruction), read as percentiles; histograms of one figure kept per
// thread are summed with add().
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
        sum_.fetch_add(value, std::memory_order_relaxed);
        std::uint64_t prev = max_.load(std::memory_order_relaxed);
        while (value > prev &&
               !max_.compare_exchange_weak(prev, value, std::memory_order_relaxed)) {
        }
    }

    // For a histogram only one thread writes (readers may run anywhere).
    void record_one_writer(std::uint64_t value) noexcept {
        bump(buckets_[index(value)], 1);
        bump(sum_, value);
        if (value > max_.load(std::memory_order_relaxed))
            max_.store(value, std::memory_order_relaxed);
    }
    // Adds what `other` holds now (a reader summing per-thread histograms into its own).
    void add(const Histogram& other) noexcept {
        for (int i = 0; i < bucket_count; ++i)
            bump(buckets_[i], other.buckets_[i].load(std::memory_order_relaxed));
        bump(sum_, other.sum());
        if (other.max() > max()) max_.store(other.max(), std::memory_order_relaxed);
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
    std::uint64_t sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
    std::uint64_t count() const noexcept {
        std::uint64_t total = 0;
        for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
        return total;
    }
    // For each bound (ascending), how many values were at most it: a Prometheus histogram's
    // cumulative buckets. A bucket counts under a bound when all of it is at or below it, so
    // a count may lag the exact one by a bucket's width (~19%).
    template <std::size_t N>
    std::array<std::uint64_t, N> at_most(
        const std::array<std::uint64_t, N>& bounds) const noexcept {
        std::array<std::uint64_t, N> out{};
        std::uint64_t seen = 0;
        std::size_t b = 0;
        for (int i = 0; i < bucket_count && b < N; ++i) {
            while (b < N && upper(i) > bounds[b]) out[b++] = seen;
            seen += buckets_[i].load(std::memory_order_relaxed);
        }
        while (b < N) out[b++] = seen;
        return out;
    }

  private:
    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t n) noexcept {
        a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
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
    std::atomic<std::uint64_t> sum_{0};
};

}  // namespace hawser::detail
