// AttemptLimiter: counts attempts per key (a source address, an account) in fixed windows and
// says when a key is over its limit. Bounded: it tracks at most max_keys keys; when full it
// forgets keys whose window ended and, if none did, refuses new keys (a flood of sources cannot
// grow memory; it can only be refused).
// Thread safety: every method locks; called from IO threads and the worker pool.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hawser::cloud::detail {

class AttemptLimiter {
  public:
    using Clock = std::chrono::steady_clock;

    AttemptLimiter(std::uint32_t limit, std::chrono::milliseconds window, std::size_t max_keys)
        : limit_(limit), window_(window), max_keys_(max_keys) {}

    // Counts one attempt; false (and nothing counted) when the key is at its limit or cannot be
    // tracked.
    bool try_count(std::string_view key, Clock::time_point now) {
        std::lock_guard lock(mu_);
        auto* e = entry(key, now);
        if (!e || e->count >= limit_) return false;
        ++e->count;
        return true;
    }
    // Whether an attempt now would be refused, without counting one.
    bool over(std::string_view key, Clock::time_point now) const {
        std::lock_guard lock(mu_);
        auto it = keys_.find(std::string(key));
        if (it == keys_.end()) return false;
        return now - it->second.start < window_ && it->second.count >= limit_;
    }
    // Counts one attempt even over the limit (a failure already made).
    void count(std::string_view key, Clock::time_point now) {
        std::lock_guard lock(mu_);
        if (auto* e = entry(key, now)) ++e->count;
    }
    // Takes back one counted attempt (one that turned out to be right, or never ran); a key
    // left with none is forgotten, so refused or right attempts never fill the table.
    void refund(std::string_view key) {
        std::lock_guard lock(mu_);
        auto it = keys_.find(std::string(key));
        if (it == keys_.end()) return;
        if (it->second.count > 0) --it->second.count;
        if (it->second.count == 0) keys_.erase(it);
    }
    std::size_t tracked() const {
        std::lock_guard lock(mu_);
        return keys_.size();
    }

  private:
    struct Entry {
        Clock::time_point start;
        std::uint32_t count = 0;
    };
    Entry* entry(std::string_view key, Clock::time_point now) {
        auto it = keys_.find(std::string(key));
        if (it == keys_.end()) {
            if (keys_.size() >= max_keys_) forget_ended(now);
            if (keys_.size() >= max_keys_) return nullptr;
            it = keys_.emplace(std::string(key), Entry{now, 0}).first;
        } else if (now - it->second.start >= window_) {
            it->second = Entry{now, 0};
        }
        return &it->second;
    }
    void forget_ended(Clock::time_point now) {
        // Only once the earliest window seen at the last sweep has ended (before that no key's
        // has), and at most eight times a window: a full table of live keys is not swept on
        // every attempt, and a key whose window ended holds its place an eighth of one at most.
        if (swept_ && (now - earliest_ < window_ || now - last_sweep_ < window_ / 8)) return;
        swept_ = true;
        last_sweep_ = now;
        earliest_ = now;
        std::erase_if(keys_, [&](const auto& kv) {
            if (now - kv.second.start >= window_) return true;
            earliest_ = std::min(earliest_, kv.second.start);
            return false;
        });
    }

    const std::uint32_t limit_;
    const std::chrono::milliseconds window_;
    const std::size_t max_keys_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> keys_;
    bool swept_ = false;
    Clock::time_point last_sweep_{};
    Clock::time_point earliest_{};  // no key kept at the last sweep started before it
};

}  // namespace hawser::cloud::detail
