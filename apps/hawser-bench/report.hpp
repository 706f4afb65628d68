// Report: the run's figures merged from every worker (summaries per phase), the summary table,
// and SVG charts that open in any browser. Plain functions on JSON; the coordinator's thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hawser::bench {

using Json = nlohmann::json;

// Merges the workers' results of one phase into its summary. `results[0]` is worker 0's (the
// broadcast's trigger).
Json summarize(const std::string& phase, const std::vector<Json>& results);
// The figure a phase is compared by (hawser / raw), or null: connect, ping, call, churn and
// soak by rate, broadcast, slow and channels by deliveries per second.
Json headline(const Json& summary);
// One line per phase: Hawser, raw (if run) and their ratio.
std::string summary_table(const Json& report);
// connections.svg, rss.svg and latency.svg from report["timeline"], into `dir`.
std::vector<std::string> write_charts(const Json& report, const std::string& dir);

}  // namespace hawser::bench
