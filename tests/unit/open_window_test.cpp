// hawser-bench's window of connects in flight (apps/hawser-bench/open_window.hpp).
#include <gtest/gtest.h>

#include <cstdint>

#include "hawser-bench/open_window.hpp"

using hawser::bench::OpenWindow;

TEST(OpenWindow, StartsAtTheCeilingAndNeverGrowsPastIt) {
    OpenWindow w(48);
    EXPECT_EQ(w.size(), 48u);
    for (int i = 0; i < 1000; ++i) w.succeeded();
    EXPECT_EQ(w.size(), 48u);
    EXPECT_EQ(w.lowest(), 48u);
}

TEST(OpenWindow, AFailureHalvesItAndOneBurstCutsOnce) {
    OpenWindow w(48);
    w.failed();
    EXPECT_EQ(w.size(), 24u);
    // The rest of the 48 that were in flight with it fail too: no further cut.
    for (int i = 0; i < 47; ++i) w.failed();
    EXPECT_EQ(w.size(), 24u);
    // A failure after a window's worth of completions is a new one.
    w.failed();
    EXPECT_EQ(w.size(), 12u);
    EXPECT_EQ(w.lowest(), 12u);
}

TEST(OpenWindow, SuccessesGiveBackOneAWindowsWorth) {
    OpenWindow w(64);
    w.failed();  // 32
    for (int i = 0; i < 32; ++i) w.succeeded();
    EXPECT_EQ(w.size(), 32u);  // 32 + 32 * (1/32 a little less each time) < 33
    for (int i = 0; i < 40; ++i) w.succeeded();
    EXPECT_GE(w.size(), 33u);
    EXPECT_LE(w.size(), 34u);
}

TEST(OpenWindow, NeverBelowAnEighthOfTheCeilingNorBelowOne) {
    OpenWindow w(64);
    for (int i = 0; i < 1000; ++i) w.failed();
    EXPECT_EQ(w.size(), 8u);
    EXPECT_EQ(w.lowest(), 8u);
    OpenWindow small(4);
    for (int i = 0; i < 100; ++i) small.failed();
    EXPECT_EQ(small.size(), 1u);
    OpenWindow none(0);  // a ceiling of 0 is taken as 1
    EXPECT_EQ(none.size(), 1u);
    OpenWindow huge(SIZE_MAX);  // and one past the largest as the largest
    EXPECT_EQ(huge.size(), OpenWindow::max_ceiling);
}
