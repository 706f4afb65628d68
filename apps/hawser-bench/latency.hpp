// Latency: a histogram of microseconds that worker processes fill and the coordinator merges.
// Buckets a quarter of a power of two wide (~19% resolution), as the server's own statistics.
// Plain value: one thread at a time.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace hawser::bench {

class Latency {
  public:
    void record(std::uint64_t us) noexcept {
        ++buckets_[index(us)];
        ++count_;
        if (us > max_) max_ = us;
    }
    void merge(const Latency& other) noexcept {
        for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
        count_ += other.count_;
        if (other.max_ > max_) max_ = other.max_;
    }
    // What was recorded after `earlier` (an earlier copy of the same histogram); all of it if
    // this one was reset since. Its max is the highest bucket's bound.
    Latency since(const Latency& earlier) const noexcept {
        Latency d;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            if (buckets_[i] < earlier.buckets_[i]) return *this;
            d.buckets_[i] = buckets_[i] - earlier.buckets_[i];
            d.count_ += d.buckets_[i];
            if (d.buckets_[i]) d.max_ = std::min(upper(int(i)), max_);
        }
        return d;
    }
    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }
    // Upper bound of the bucket holding the q-quantile; 0 when empty.
    std::uint64_t quantile(double q) const noexcept {
        if (count_ == 0) return 0;
        auto rank = std::uint64_t(q * double(count_) + 0.5);
        if (rank == 0) rank = 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= rank) return std::min(upper(int(i)), max_);
        }
        return max_;
    }

    // Sparse: {"max": m, "b": {"index": count, ...}}.
    nlohmann::json to_json() const {
        nlohmann::json b = nlohmann::json::object();
        for (std::size_t i = 0; i < buckets_.size(); ++i)
            if (buckets_[i]) b[std::to_string(i)] = buckets_[i];
        return {{"max", max_}, {"b", b}};
    }
    static Latency from_json(const nlohmann::json& j) {
        Latency l;
        if (!j.is_object()) return l;
        l.max_ = j.value("max", std::uint64_t(0));
        for (auto& [k, v] : j.at("b").items()) {
            auto i = std::stoul(k);
            if (i < l.buckets_.size()) {
                l.buckets_[i] += v.get<std::uint64_t>();
                l.count_ += v.get<std::uint64_t>();
            }
        }
        return l;
    }
    // p50/p99/p999/max in microseconds.
    nlohmann::json summary() const {
        return {{"count", count_},
                {"p50_us", quantile(0.5)},
                {"p99_us", quantile(0.99)},
                {"p999_us", quantile(0.999)},
                {"max_us", max_}};
    }

  private:
    static int index(std::uint64_t v) noexcept {
        if (v < 8) return int(v);
        int log = 63 - std::countl_zero(v);
        return log * 4 + int((v >> (log - 2)) & 3);
    }
    static std::uint64_t upper(int i) noexcept {
        if (i < 8) return std::uint64_t(i);
        int log = i / 4, sub = i % 4;
        return (std::uint64_t(4 + sub + 1) << (log - 2)) - 1;
    }

    std::array<std::uint64_t, 256> buckets_{};
    std::uint64_t count_ = 0, max_ = 0;
};

}  // namespace hawser::bench
