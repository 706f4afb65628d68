#include "core/histogram.hpp"

#include <gtest/gtest.h>

using hawser::detail::Histogram;

TEST(Histogram, QuantilesAreWithinABucketOfTheTruth) {
    Histogram h;
    EXPECT_EQ(h.quantile(0.5), 0u);
    for (std::uint64_t v = 1; v <= 10000; ++v) h.record(v);
    auto p50 = h.quantile(0.5), p99 = h.quantile(0.99);
    EXPECT_GE(p50, 5000u);
    EXPECT_LE(p50, 5000u * 5 / 4);
    EXPECT_GE(p99, 9900u);
    EXPECT_LE(p99, 10000u);  // never above the maximum seen
    EXPECT_EQ(h.max(), 10000u);
    EXPECT_EQ(h.quantile(1.0), 10000u);
}

TEST(Histogram, SmallValuesAreExact) {
    Histogram h;
    for (int i = 0; i < 10; ++i) h.record(3);
    EXPECT_EQ(h.quantile(0.5), 3u);
}

// Per-thread histograms of one figure, written without locked instructions, sum to what one
// histogram fed everything would hold.
TEST(Histogram, OneWriterHistogramsSumToTheWhole) {
    Histogram whole, even, odd, sum;
    for (std::uint64_t v = 1; v <= 10000; ++v) {
        whole.record(v);
        (v % 2 ? odd : even).record_one_writer(v);
    }
    sum.add(even);
    sum.add(odd);
    EXPECT_EQ(sum.count(), whole.count());
    EXPECT_EQ(sum.sum(), whole.sum());
    EXPECT_EQ(sum.max(), whole.max());
    for (double q : {0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(sum.quantile(q), whole.quantile(q)) << q;
    EXPECT_EQ(even.count(), 5000u);
    EXPECT_EQ(odd.max(), 9999u);
}
