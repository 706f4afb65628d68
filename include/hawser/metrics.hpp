// Metrics in the Prometheus text exposition format (version 0.0.4): a writer that each part of
// a server fills with its own figures (Server's Stats here; the cluster and ZDB add theirs),
// and that an admin listener (hawser/admin.hpp) serves at /metrics. Plain values: build one per
// scrape, on any thread.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "hawser/stats.hpp"

namespace hawser {

class MetricsText {
  public:
    using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

    // One sample. The # HELP and # TYPE lines are written before a family's first sample;
    // samples of one family must come together. Names are [a-zA-Z_:][a-zA-Z0-9_:]*; label
    // values are escaped (backslash, quote, newline).
    void counter(std::string_view name, std::string_view help, double value, Labels labels = {});
    void gauge(std::string_view name, std::string_view help, double value, Labels labels = {});
    // A histogram from cumulative counts at each upper bound (`at_most[i]` values were at most
    // `bounds[i]`), the count of all and their sum; bounds in the metric's unit.
    template <std::size_t N>
    void histogram(std::string_view name, std::string_view help,
                   const std::array<double, N>& bounds, const std::array<std::uint64_t, N>& at_most,
                   std::uint64_t count, double sum, Labels labels = {}) {
        begin(name, help, "histogram");
        for (std::size_t i = 0; i < N; ++i) bucket(name, bounds[i], at_most[i], labels);
        bucket(name, -1, count, labels);
        sample(name, "_sum", sum, labels);
        sample(name, "_count", double(count), labels);
    }

    const std::string& text() const { return text_; }
    // The Content-Type of this text.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

  private:
    void begin(std::string_view name, std::string_view help, std::string_view type);
    void sample(std::string_view name, std::string_view suffix, double value, Labels labels,
                std::string_view extra_label = {}, std::string_view extra_value = {});
    void bucket(std::string_view name, double bound, std::uint64_t count, Labels labels);

    std::string text_;
    std::string family_;  // the family whose samples are being written
};

// A server's figures (Server::stats()): connections, handshakes, closes by reason, bytes,
// calls, the send queues, the worker queue, and per command its calls, errors, bytes and a
// latency histogram. Names start with hawser_.
void write_metrics(MetricsText& out, const Stats& stats);

}  // namespace hawser
