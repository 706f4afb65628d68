// Counters: the figures one Server (or Client) keeps about its connections, read by stats().
// A part of the Host. Thread safety: relaxed atomics, updated from every IO and worker thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "hawser/error.hpp"

namespace hawser::detail {

struct Counters {
    std::atomic<std::uint64_t> opened{0}, refused{0};
    std::array<std::atomic<std::uint64_t>, close_reason_count> closed{};
    std::atomic<std::uint64_t> frames_in{0}, frames_out{0}, bytes_in{0}, bytes_out{0};
    std::atomic<std::uint64_t> calls_out{0}, late_replies{0};
    std::atomic<std::uint64_t> handshakes{0}, rekeys{0};
    std::atomic<std::uint64_t> callback_errors{0};
    std::atomic<std::uint64_t> overloaded{0};
    std::atomic<std::uint64_t> send_queue_bytes{0}, send_buffer_bytes{0}, broadcast_skipped{0};
    std::atomic<std::uint64_t> broadcast_pending_bytes{0};  // encoded, not yet delivered

    static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
        counter.fetch_add(n, std::memory_order_relaxed);
    }
};

}  // namespace hawser::detail
