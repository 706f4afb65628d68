// Statistics snapshots: read with Server::stats() / Client::stats() from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "hawser/error.hpp"

namespace hawser {

struct CommandStats {
    std::string name;
    std::uint64_t calls = 0;      // handler invocations (calls and directs)
    std::uint64_t errors = 0;     // handler threw or replied an error
    std::uint64_t bytes_in = 0;   // argument payload bytes
    std::uint64_t bytes_out = 0;  // reply payload bytes
    // Handler time in microseconds, from receipt to reply (a delayed reply counts its wait).
    double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
    // The same as a histogram: how many took at most each bound (cumulative), how many were
    // timed, and their sum.
    static constexpr std::array<std::uint64_t, 14> latency_bounds_us{
        50,     100,    250,    500,     1'000,   2'500,     5'000,
        10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000, 5'000'000};
    std::array<std::uint64_t, latency_bounds_us.size()> latency_at_most{};
    std::uint64_t latency_count = 0;
    double latency_sum_us = 0;
};

struct Stats {
    std::uint64_t connections = 0;  // open now
    std::uint64_t opened = 0;       // since start
    std::uint64_t refused = 0;      // accepted then closed at once (max_connections, admission)
    std::array<std::uint64_t, close_reason_count> closed_by_reason{};
    std::uint64_t frames_in = 0, frames_out = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t calls_out = 0;           // calls this side made
    std::uint64_t late_replies = 0;        // replies to calls that had timed out or been cancelled
    std::uint64_t handshakes = 0;          // completed (plaintext agreements included)
    std::uint64_t handshakes_waiting = 0;  // for the server's pace (max_handshakes_per_second), now
    std::uint64_t rekeys = 0;              // key rotations, sending and receiving
    std::uint64_t callback_errors = 0;     // user callbacks and hooks that threw (caught, logged)
    std::uint64_t overloaded = 0;  // calls refused and direct messages dropped: worker queue full
    std::uint64_t worker_jobs = 0, worker_bytes = 0;  // the runtime's worker queue, now
    std::uint64_t send_queue_bytes = 0;   // unsent bytes queued on every connection, now
    std::uint64_t send_buffer_bytes = 0;  // memory those queues hold, now
    std::uint64_t broadcast_skipped = 0;  // broadcast deliveries skipped: connection congested
    std::vector<CommandStats> commands;

    std::uint64_t closed(CloseReason r) const {
        return closed_by_reason[static_cast<std::size_t>(r)];
    }
};

}  // namespace hawser
