// The Prometheus text writer and the histogram buckets behind it.
#include "hawser/metrics.hpp"

#include <gtest/gtest.h>

#include "core/histogram.hpp"

using hawser::MetricsText;

TEST(Metrics, FamiliesHaveOneHeaderAndEscapedLabels) {
    MetricsText m;
    m.counter("x_total", "Things\nseen", 3, {{"kind", "a\"b\\c\nd"}});
    m.counter("x_total", "Things\nseen", 4.5, {{"kind", "e"}});
    m.gauge("y", "Now", 7);
    EXPECT_EQ(m.text(),
              "# HELP x_total Things\\nseen\n"
              "# TYPE x_total counter\n"
              "x_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"
              "x_total{kind=\"e\"} 4.5\n"
              "# HELP y Now\n"
              "# TYPE y gauge\n"
              "y 7\n");
}

TEST(Metrics, HistogramsAreCumulativeWithInfSumAndCount) {
    MetricsText m;
    m.histogram("d_seconds", "Time", std::array<double, 2>{0.001, 0.5},
                std::array<std::uint64_t, 2>{2, 5}, 6, 1.25, {{"command", "echo"}});
    EXPECT_EQ(m.text(),
              "# HELP d_seconds Time\n"
              "# TYPE d_seconds histogram\n"
              "d_seconds_bucket{command=\"echo\",le=\"0.001\"} 2\n"
              "d_seconds_bucket{command=\"echo\",le=\"0.5\"} 5\n"
              "d_seconds_bucket{command=\"echo\",le=\"+Inf\"} 6\n"
              "d_seconds_sum{command=\"echo\"} 1.25\n"
              "d_seconds_count{command=\"echo\"} 6\n");
}

TEST(Metrics, HistogramBucketsCountWhatFitsUnderEachBound) {
    hawser::detail::Histogram h;
    for (std::uint64_t v : {1, 2, 7, 100, 1000, 5000}) h.record(v);
    auto at_most = h.at_most(std::array<std::uint64_t, 4>{2, 7, 1000, 1u << 20});
    EXPECT_EQ(at_most[0], 2u);  // 1 and 2 are exact buckets
    EXPECT_EQ(at_most[1], 3u);
    // 1000 lies in a bucket reaching above 1000: counted from the next bound on.
    EXPECT_GE(at_most[2], 4u);
    EXPECT_LE(at_most[2], 5u);
    EXPECT_EQ(at_most[3], 6u);
    EXPECT_EQ(h.count(), 6u);
    EXPECT_EQ(h.sum(), 6110u);
}

TEST(Metrics, ServerStatsNameEveryCloseReasonAndCommand) {
    hawser::Stats s;
    s.connections = 3;
    s.closed_by_reason[static_cast<std::size_t>(hawser::CloseReason::idle_timeout)] = 2;
    hawser::CommandStats c;
    c.name = "echo";
    c.calls = 4;
    c.latency_count = 4;
    c.latency_at_most.fill(4);
    c.latency_sum_us = 2000;
    s.commands.push_back(c);
    MetricsText m;
    hawser::write_metrics(m, s);
    const auto& t = m.text();
    EXPECT_NE(t.find("\nhawser_connections 3\n"), std::string::npos);
    EXPECT_NE(t.find("hawser_connections_closed_total{reason=\"idle_timeout\"} 2\n"),
              std::string::npos);
    EXPECT_NE(t.find("hawser_command_calls_total{command=\"echo\"} 4\n"), std::string::npos);
    EXPECT_NE(t.find("hawser_command_duration_seconds_sum{command=\"echo\"} 0.002\n"),
              std::string::npos);
    EXPECT_NE(t.find("hawser_command_duration_seconds_bucket{command=\"echo\",le=\"+Inf\"} 4\n"),
              std::string::npos);
    EXPECT_EQ(t.find("reason=\"none\""), std::string::npos);
    // Each family's header appears once.
    EXPECT_EQ(t.find("# TYPE hawser_connections_closed_total"),
              t.rfind("# TYPE hawser_connections_closed_total"));
}
