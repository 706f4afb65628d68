// TickClock: the processor's time-stamp counter, read as a clock for short intervals on hot
// paths: a handler's time, the time since a read began. A steady_clock read costs about 27 ns
// on these machines (kvm-clock) and the counter about 11; timing every call with steady_clock
// was several per cent of an encrypted round trip. The counter serves only where it ticks at one
// rate on every core (x86 with an invariant TSC, as brpc and abseil require); elsewhere a tick
// is a steady_clock nanosecond. The rate is learnt from steady_clock over the first second
// after the first use, so nothing waits to calibrate; until then each conversion reads
// steady_clock once. It is learnt once: a counter whose rate changed later (a migrated virtual
// machine) would skew handler times by as much, and a deadline set during a read by that
// fraction of the time since the read began. Any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace hawser::detail {

class TickClock {
  public:
    using Ticks = std::uint64_t;

    static Ticks now() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        if (source().counter) return __rdtsc();
#endif
        return steady_ns();
    }
    // Nanoseconds from `start` (a now() of any thread) until now; never negative.
    static std::chrono::nanoseconds since(Ticks start) noexcept {
        auto t = now();
        return t > start ? to_ns(t - start) : std::chrono::nanoseconds{0};
    }
    static std::chrono::nanoseconds to_ns(Ticks ticks) noexcept {
        auto rate = source().ns_per_tick.load(std::memory_order_relaxed);
        if (rate == 0) rate = learn_rate();
        return std::chrono::nanoseconds(static_cast<std::int64_t>(double(ticks) * rate));
    }
    // Whether ticks are the time-stamp counter (otherwise steady_clock nanoseconds).
    static bool uses_counter() noexcept {
        return source().counter;
    }

  private:
    struct Pair {  // steady_clock and the counter at one moment
        std::int64_t ns = 0;
        Ticks ticks = 0;
    };
    struct Source {
        Source() noexcept;                   // probes the processor and takes the anchor
        bool counter = false;                // the time-stamp counter is usable
        Pair anchor;                         // to learn the rate against
        std::atomic<double> ns_per_tick{0};  // 0 until a second has passed since the anchor
    };
    static Pair pair() noexcept;
    static Source& source() noexcept {
        static Source s;
        return s;
    }
    static double learn_rate() noexcept;
    static std::int64_t steady_ns() noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }
};

}  // namespace hawser::detail
