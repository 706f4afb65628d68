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
