// CommandStatsCell: the figures of one command, in shards. Each IO loop that runs the command
// writes a shard of its own, made the first time it does (plain loads and stores, as
// LoopCounters: no locked instruction and no cache line shared between IO threads on every
// call; about 2 KiB, mostly the histogram); everything else (workers, replies from other
// threads, direct messages) writes the shared shard with atomic additions. stats() sums them.
// Ownership: the command table's entry. Thread safety: as above; read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/histogram.hpp"

namespace hawser::detail {

class CommandStatsCell {
  public:
    struct alignas(64) Shard {
        std::atomic<std::uint64_t> calls{0}, errors{0}, bytes_in{0}, bytes_out{0};
        Histogram handler_ns;
        bool shared = false;  // written by any thread: atomic additions

        void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
            if (shared)
                counter.fetch_add(n, std::memory_order_relaxed);
            else
                counter.store(counter.load(std::memory_order_relaxed) + n,
                              std::memory_order_relaxed);
        }
        void record(std::uint64_t ns) noexcept {
            if (shared)
                handler_ns.record(ns);
            else
                handler_ns.record_one_writer(ns);
        }
    };

    explicit CommandStatsCell(std::size_t loops)
        : loops_(loops), on_loops_(std::make_unique<std::atomic<Shard*>[]>(loops)) {
        shared_.shared = true;
    }
    ~CommandStatsCell() {
        for (std::size_t i = 0; i < loops_; ++i) delete on_loops_[i].load();
    }
    CommandStatsCell(const CommandStatsCell&) = delete;
    CommandStatsCell& operator=(const CommandStatsCell&) = delete;

    // The shard of IO loop `index`, made on first use: on that loop only.
    Shard& on_loop(std::size_t index) {
        if (index >= loops_) return shared_;
        auto* shard = on_loops_[index].load(std::memory_order_relaxed);
        if (!shard) {
            shard = new Shard;
            on_loops_[index].store(shard, std::memory_order_release);
        }
        return *shard;
    }
    // The shard for any other thread.
    Shard& elsewhere() noexcept { return shared_; }

    // Every shard summed (the histogram into `handler_ns`).
    struct Totals {
        std::uint64_t calls = 0, errors = 0, bytes_in = 0, bytes_out = 0;
    };
    Totals totals(Histogram& handler_ns) const noexcept {
        Totals t;
        auto add = [&](const Shard& s) {
            t.calls += s.calls.load(std::memory_order_relaxed);
            t.errors += s.errors.load(std::memory_order_relaxed);
            t.bytes_in += s.bytes_in.load(std::memory_order_relaxed);
            t.bytes_out += s.bytes_out.load(std::memory_order_relaxed);
            handler_ns.add(s.handler_ns);
        };
        add(shared_);
        for (std::size_t i = 0; i < loops_; ++i)
            if (const auto* s = on_loops_[i].load(std::memory_order_acquire)) add(*s);
        return t;
    }

  private:
    std::size_t loops_;
    std::unique_ptr<std::atomic<Shard*>[]> on_loops_;  // null until the loop first runs it
    Shard shared_;
};

}  // namespace hawser::detail
