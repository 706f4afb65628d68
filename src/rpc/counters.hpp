// Counters: the figures one Server (or Client) keeps about its connections, read by stats().
// A part of the Host. Thread safety: relaxed atomics, updated from every IO and worker thread.
// LoopCounters: the figures every message moves, one block per IO loop (see below).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "hawser/error.hpp"

namespace hawser::detail {

struct Counters {
    std::atomic<std::uint64_t> opened{0}, refused{0};
    std::array<std::atomic<std::uint64_t>, close_reason_count> closed{};
    std::atomic<std::uint64_t> late_replies{0};
    std::atomic<std::uint64_t> handshakes{0};
    std::atomic<std::uint64_t> callback_errors{0};
    std::atomic<std::uint64_t> overloaded{0};
    std::atomic<std::uint64_t> broadcast_skipped{0};
    std::atomic<std::uint64_t> broadcast_pending_bytes{0};  // encoded, not yet delivered

    static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
        counter.fetch_add(n, std::memory_order_relaxed);
    }
};

// The figures every message moves, kept per IO loop and summed by stats(): each block is
// written by its loop's thread alone, so an update is a plain load and store, not a locked
// read-modify-write, and IO threads never share the cache line (brpc's per-thread counters).
// Thread safety: written by one loop's thread (or by the thread tearing that loop down, once it
// stopped); read from any thread.
struct alignas(64) LoopCounters {
    std::atomic<std::uint64_t> frames_in{0}, frames_out{0}, bytes_in{0}, bytes_out{0};
    std::atomic<std::uint64_t> calls_out{0}, rekeys{0};
    // Gauges, moved both ways by adding unsigned differences: only their sum over the loops
    // means something.
    std::atomic<std::uint64_t> send_queue_bytes{0}, send_buffer_bytes{0};
    std::atomic<std::uint64_t> handshakes_waiting{0};  // for the server's pace, on this loop

    static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
};

}  // namespace hawser::detail
