#include "core/tick_clock.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace hawser::detail {

namespace {

bool invariant_counter() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    // CPUID 0x80000007, EDX bit 8: the counter runs at a constant rate in every power state.
    return __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8)) != 0;
#else
    return false;
#endif
}

// A counter between 200 MHz and 20 GHz; anything else is a broken counter or a bad sample.
constexpr double slowest_rate = 5.0, fastest_rate = 0.05;  // nanoseconds per tick

}  // namespace

TickClock::Pair TickClock::pair() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    // The counter read on both sides of the clock read, retried while something (a preemption,
    // the hypervisor) came between them, which would skew the rate learnt from the pair.
    Pair p{};
    for (int attempt = 0; attempt < 10; ++attempt) {
        auto before = __rdtsc();
        p.ns = steady_ns();
        auto after = __rdtsc();
        p.ticks = before + (after - before) / 2;
        if (after - before < 20'000) break;  // microseconds at most; a clean read is ~100 ticks
    }
    return p;
#else
    return {steady_ns(), 0};
#endif
}

TickClock::Source::Source() noexcept : counter(invariant_counter()) {
    if (counter) {
        anchor = pair();
    } else {
        ns_per_tick.store(1.0);
    }
}

double TickClock::learn_rate() noexcept {
    auto& s = source();
    auto p = pair();
    if (p.ns <= s.anchor.ns || p.ticks <= s.anchor.ticks) return 0.33;  // a few GHz, for now
    double rate = double(p.ns - s.anchor.ns) / double(p.ticks - s.anchor.ticks);
    if (rate < fastest_rate || rate > slowest_rate) return 0.33;  // not kept: learnt again
    // Kept after a second: the microsecond a pair can still be off is then a part in 10^6.
    if (p.ns - s.anchor.ns >= 1'000'000'000) s.ns_per_tick.store(rate, std::memory_order_relaxed);
    return rate;
}

}  // namespace hawser::detail
