// The coordinator (see coordinator.hpp).
#include "coordinator.hpp"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "clock.hpp"
#include "latency.hpp"
#include "preflight.hpp"
#include "process_memory.hpp"
#include "report.hpp"
#include "servers.hpp"
#include "worker_pool.hpp"

namespace hawser::bench {

namespace {

using Clock = std::chrono::steady_clock;

class Coordinator {
  public:
    explicit Coordinator(Plan plan) : plan_(std::move(plan)) {}

    int run() {
        if (plan_.per_worker == 0 || plan_.per_worker > 18000) {
            std::fprintf(stderr,
                         "hawser-bench: --per-worker must be 1 to 18000 (a process may open "
                         "20,000 files)\n");
            return 2;
        }
        auto workers =
            std::max<std::size_t>(1, (plan_.connections + plan_.per_worker - 1) / plan_.per_worker);
        auto servers = plan_.endpoints.empty() ? plan_.spawn_cluster : plan_.endpoints.size();
        if (auto problem = preflight(plan_, workers, servers)) {
            std::fprintf(stderr, "hawser-bench: %s\n", problem->c_str());
            return 2;
        }
        if (!pool_.fork(workers)) return 1;
        start_ = Clock::now();
        report_["plan"] = plan_json();
        report_["machine"] = {{"cores", std::thread::hardware_concurrency()},
                              {"memory_kib", meminfo_kib("MemTotal:")}};
        report_["timeline"] = Json::array();
        report_["ratios"] = Json::object();
        int status = run_mode("hawser");
        if (status == 0 && plan_.raw) status = run_mode("raw");
        pool_.finish(/*ask=*/status == 0);  // else they may be mid-phase: killed
        servers_.reset();
        if (plan_.raw && report_["runs"].contains("raw"))
            for (auto& [phase, s] : report_["runs"]["hawser"]["phases"].items()) {
                auto h = headline(s);
                auto& raw_phases = report_["runs"]["raw"]["phases"];
                if (h.is_null() || !raw_phases.contains(phase)) continue;
                auto r = headline(raw_phases[phase]);
                if (!r.is_null() && r.get<double>() > 0)
                    report_["ratios"][phase] = h.get<double>() / r.get<double>();
            }
        if (report_["runs"].contains("hawser")) {
            auto dir = plan_.charts;
            if (dir.empty()) {
                auto slash = plan_.report.rfind('/');
                dir = slash == std::string::npos ? "." : plan_.report.substr(0, slash);
            }
            try {
                report_["charts"] = write_charts(report_, dir);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "hawser-bench: charts: %s\n", e.what());
            }
            std::fprintf(stdout, "\n%s", summary_table(report_).c_str());
        }
        std::ofstream out(plan_.report);
        out << report_.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
        out.close();
        if (!out) {
            std::fprintf(stderr, "hawser-bench: cannot write the report to %s\n",
                         plan_.report.c_str());
            return status ? status : 1;
        }
        std::fprintf(stdout, "report: %s\n", plan_.report.c_str());
        return status;
    }

  private:
    Json plan_json() const {
        return {{"connections", plan_.connections},
                {"connect_rate", plan_.connect_rate},
                {"phases", plan_.phases},
                {"hold_seconds", plan_.hold_seconds},
                {"calls_in_flight", plan_.calls_in_flight},
                {"call_seconds", plan_.call_seconds},
                {"broadcasts", plan_.broadcasts},
                {"broadcast_bytes", plan_.broadcast_bytes},
                {"slow_fraction", plan_.slow_fraction},
                {"churn_rate", plan_.churn_rate},
                {"storm_nodes", plan_.storm_nodes},
                {"soak_rate", plan_.soak_rate},
                {"soak_seconds", plan_.soak_seconds},
                {"channel_rounds", plan_.channel_rounds},
                {"channel_bytes", plan_.channel_bytes},
                {"channel_group", plan_.channel_group},
                {"channel_rate", plan_.channel_rate},
                {"channel_churn", plan_.channel_churn},
                {"churn_seconds", plan_.churn_seconds},
                {"per_worker", plan_.per_worker},
                {"max_opening", plan_.max_opening},
                {"workers", pool_.size()},
                {"spawn_cluster", plan_.endpoints.empty() ? plan_.spawn_cluster : 0},
                {"endpoints", plan_.endpoints},
                {"plaintext", plan_.plaintext},
                {"raw", plan_.raw},
                {"raw_sealed", plan_.raw_sealed},
                {"server_max_handshakes_per_second", plan_.server_max_handshakes_per_second},
                {"heartbeat_ms", plan_.heartbeat_ms}};
    }

    // One step on every worker, sampled for the timeline and the progress line meanwhile.
    std::optional<std::vector<Json>> step(const std::string& mode, const std::string& cmd,
                                          const std::function<Json(std::size_t)>& args = {}) {
        auto results = pool_.step(cmd, args, [&] { sample(mode, phase_.empty() ? cmd : phase_); });
        if (results && isatty(2)) std::fprintf(stderr, "\n");
        return results;
    }

    // One point of the timeline, and the progress line. Its p99 is of what the workers recorded
    // since the last point: latency over time, not the phase's running figure.
    void sample(const std::string& mode, const std::string& phase) {
        std::uint64_t open = 0, ok = 0, failed = 0;
        Latency recent;  // each worker's since its last point, merged
        for (auto& w : pool_.workers()) {
            const auto& f = w.latest;
            if (!f.is_object()) continue;
            open += f.value("open", std::uint64_t(0));
            ok += f.value("ok", std::uint64_t(0));
            failed += f.value("failed", std::uint64_t(0));
            if (!f.contains("latency")) continue;
            auto now = Latency::from_json(f["latency"]);
            recent.merge(now.since(w.sampled));
            w.sampled = std::move(now);
        }
        long server_rss = 0;
        Json per_server = Json::object();
        for (auto& p : servers_ ? servers_->processes : std::vector<ServerProcess>{}) {
            auto kib = rss_kib(p.pid);
            server_rss += std::max(0L, kib);
            per_server[p.name] = kib;
        }
        double t = std::chrono::duration<double>(Clock::now() - start_).count();
        report_["timeline"].push_back(
            {{"t", t},
             {"mode", mode},
             {"phase", phase},
             {"open", open},
             {"ok", ok},
             {"failed", failed},
             // null: nothing recorded in this half second
             {"p99_us", recent.count() ? Json(recent.quantile(0.99)) : Json(nullptr)},
             {"server_rss_kib", server_rss},
             {"servers_rss_kib", per_server}});
        char line[256];
        std::snprintf(line, sizeof line,
                      "[%6.1fs %s %s] open %llu  done %llu  failed %llu  p99 %llu us  server RSS "
                      "%ld MiB",
                      t, mode.c_str(), phase.c_str(), (unsigned long long)open,
                      (unsigned long long)ok, (unsigned long long)failed,
                      (unsigned long long)recent.quantile(0.99), server_rss / 1024);
        if (isatty(2)) {
            std::fprintf(stderr, "\r%-110s", line);
        } else if (Clock::now() >= next_line_) {
            next_line_ = Clock::now() + std::chrono::seconds(2);
            std::fprintf(stderr, "%s\n", line);
        }
    }

    // The servers' highest RSS sampled during one phase of one mode.
    long peak_rss(const std::string& mode, const std::string& phase, double since) const {
        long peak = 0;
        for (const auto& s : report_["timeline"])
            if (s["mode"] == mode && s["phase"] == phase && s["t"].get<double>() >= since)
                peak = std::max(peak, s["server_rss_kib"].get<long>());
        return peak;
    }

    // How much the servers' RSS grew over a soak: the mean of its last quarter against the mean
    // of its second (the first is warm-up: pools and caches fill), as a fraction.
    // Null without the servers' memory (servers it did not start) or with under 8 samples.
    Json rss_drift(const std::string& mode, double since) const {
        std::vector<double> rss;
        for (const auto& s : report_["timeline"])
            if (s["mode"] == mode && s["phase"] == "soak" && s["t"].get<double>() >= since)
                rss.push_back(s["server_rss_kib"].get<double>());
        auto q = rss.size() / 4;
        if (q < 2 || !servers_) return nullptr;
        auto mean = [&](std::size_t from) {
            double sum = 0;
            for (auto i = from; i < from + q; ++i) sum += rss[i];
            return sum / double(q);
        };
        auto second = mean(q);
        if (!(second > 0)) return nullptr;
        return (mean(rss.size() - q) - second) / second;
    }

    long servers_rss() const {
        long total = 0;
        if (servers_)
            for (auto& p : servers_->processes) total += std::max(0L, rss_kib(p.pid));
        return total;
    }

    int run_mode(const std::string& mode) {
        Json run{{"phases", Json::object()}};
        std::vector<std::string> endpoints = plan_.endpoints;
        std::string key = plan_.key;
        bool cluster = plan_.cluster;
        auto nodes = plan_.endpoints.empty() ? plan_.spawn_cluster : plan_.endpoints.size();
        auto dir = plan_.work_dir + "/" + mode;
        if (mode == "raw" || plan_.endpoints.empty()) {
            // Channels live in the cluster: one node joins one too.
            bool channels = std::find(plan_.phases.begin(), plan_.phases.end(), "channels") !=
                            plan_.phases.end();
            // Servers wait three of the clients' heartbeats before closing a silent connection,
            // as the clients do (hawser_driver.cpp).
            auto idle = 3 * std::chrono::milliseconds(plan_.heartbeat_ms);
            auto started = mode == "raw"
                               ? Servers::start_raw(plan_.self, nodes, plan_.raw_sealed, dir)
                               : Servers::start_hawser(plan_.server_binary, nodes,
                                                       nodes > 1 || channels, plan_.plaintext, idle,
                                                       plan_.server_max_handshakes_per_second, dir);
            if (!started) {
                std::fprintf(stderr, "hawser-bench: %s\n", started.error().message.c_str());
                return 1;
            }
            servers_.emplace(std::move(*started));
            endpoints = servers_->endpoints;
            key = servers_->key;
            cluster = servers_->cluster;
            Json names = Json::array();
            for (auto& p : servers_->processes) names.push_back(p.name);
            run["servers"] = names;
        }
        run["endpoints"] = endpoints;
        auto baseline = servers_rss();
        run["server_rss_empty_kib"] = baseline;
        auto setup = step(mode, "setup", [&](std::size_t i) {
            return Json{{"mode", mode},
                        {"endpoints", endpoints},
                        {"key", key},
                        {"plaintext", plan_.plaintext},
                        {"cluster", cluster},
                        {"source", source_for(i)},
                        {"heartbeat_ms", plan_.heartbeat_ms},
                        {"timeout_ms", plan_.timeout_ms},
                        {"max_opening", plan_.max_opening},
                        {"sealed", mode == "raw" && plan_.raw_sealed}};
        });
        if (!setup) return 1;
        for (auto& r : *setup)
            if (r.contains("error")) {
                std::fprintf(stderr, "hawser-bench: %s\n", r["error"].get<std::string>().c_str());
                return 1;
            }
        auto n = pool_.size();
        auto ms = [](double seconds) { return std::int64_t(seconds * 1000); };
        for (const auto& phase : plan_.phases) {
            std::optional<std::vector<Json>> results;
            phase_ = phase;
            auto phase_start = std::chrono::duration<double>(Clock::now() - start_).count();
            if (phase == "connect") {
                results = step(mode, phase, [&](std::size_t i) {
                    auto share = plan_.connections / n + (i < plan_.connections % n ? 1 : 0);
                    return Json{{"count", share}, {"rate", plan_.connect_rate / double(n)}};
                });
            } else if (phase == "hold") {
                auto seconds = mode == "raw" && plan_.raw_hold_seconds >= 0 ? plan_.raw_hold_seconds
                                                                            : plan_.hold_seconds;
                results = step(mode, phase, [&](std::size_t) { return Json{{"ms", ms(seconds)}}; });
            } else if (phase == "ping") {
                results = step(mode, phase);
            } else if (phase == "call") {
                results = step(mode, phase, [&](std::size_t) {
                    return Json{{"in_flight", plan_.calls_in_flight},
                                {"ms", ms(plan_.call_seconds)}};
                });
            } else if (phase == "broadcast" || phase == "slow") {
                auto slow = phase == "slow" ? plan_.slow_fraction : 0.0;
                if (!step(mode, "arm", [&](std::size_t) { return Json{{"slow_fraction", slow}}; }))
                    return 1;
                results = step(mode, "broadcast", [&](std::size_t i) {
                    return Json{{"trigger", i == 0},
                                {"count", plan_.broadcasts},
                                {"size", plan_.broadcast_bytes}};
                });
            } else if (phase == "storm") {
                if (!servers_) return 2;  // main() refuses storm with --endpoint
                auto nodes = plan_.storm_nodes ? plan_.storm_nodes : servers_->processes.size();
                if (!step(mode, "storm_arm", [&](std::size_t) { return Json{{"killed", nodes}}; }))
                    return 1;
                auto killed_ns = now_ns();
                auto restart = servers_->restart(nodes);
                if (!restart) {
                    std::fprintf(stderr, "hawser-bench: %s\n", restart.error().message.c_str());
                    return 1;
                }
                auto restarted_ns = now_ns();
                // Established clients' calls meanwhile, at the soak's rate (its p99 is the
                // figure without a storm).
                results = step(mode, phase, [&](std::size_t) {
                    return Json{{"probe_rate", plan_.soak_rate / double(n)}};
                });
                if (results)
                    for (auto& r : *results) {
                        r["killed_ns"] = killed_ns;
                        r["reaped_ns"] = restart->reaped_ns;
                        r["listening_ns"] = restart->listening_ns;
                        r["restarted_ns"] = restarted_ns;
                    }
            } else if (phase == "soak") {
                results = step(mode, phase, [&](std::size_t) {
                    return Json{{"rate", plan_.soak_rate / double(n)},
                                {"ms", ms(plan_.soak_seconds)}};
                });
            } else if (phase == "channels") {
                results = step(mode, phase, [&](std::size_t i) {
                    return Json{{"worker", i},
                                {"rounds", plan_.channel_rounds},
                                {"size", plan_.channel_bytes},
                                {"group", plan_.channel_group},
                                {"rate", plan_.channel_rate / double(n)},
                                {"churn_rate", plan_.channel_churn / double(n)}};
                });
            } else if (phase == "churn") {
                results = step(mode, phase, [&](std::size_t) {
                    return Json{{"rate", plan_.churn_rate / double(n)},
                                {"ms", ms(plan_.churn_seconds)}};
                });
            } else {
                std::fprintf(stderr, "hawser-bench: unknown phase '%s'\n", phase.c_str());
                return 2;
            }
            if (!results) return 1;
            phase_.clear();
            auto summary = summarize(phase, *results);
            auto rss = servers_rss();
            summary["server_rss_kib"] = rss;
            summary["server_rss_peak_kib"] = peak_rss(mode, phase, phase_start);
            if (phase == "soak") summary["rss_drift"] = rss_drift(mode, phase_start);  // or null
            if (phase == "slow" && run["phases"].contains("broadcast")) {
                // The measure: the servers' memory with slow consumers against the
                // same broadcasts without them.
                auto without = run["phases"]["broadcast"]["server_rss_peak_kib"].get<double>();
                if (without > 0)
                    summary["rss_vs_broadcast"] =
                        summary["server_rss_peak_kib"].get<double>() / without;
            }
            run["phases"][phase] = summary;
            // Memory per connection: the servers above their empty baseline, once connected.
            auto open = summary["open"].get<std::uint64_t>();
            if ((phase == "connect" || phase == "hold") && servers_ && open > 0) {
                run["server_bytes_per_connection"] = double(rss - baseline) * 1024 / double(open);
                run["server_connections"] = open;
            }
        }
        report_["runs"][mode] = run;
        if (!step(mode, "teardown")) return 1;
        servers_.reset();
        return 0;
    }

    Plan plan_;
    WorkerPool pool_;
    std::optional<Servers> servers_;
    std::string phase_;  // the phase under way, for the timeline ("" between phases)
    Json report_;
    Clock::time_point start_, next_line_;
};

}  // namespace

int run_coordinator(const Plan& plan) {
    std::signal(SIGPIPE, SIG_IGN);
    try {
        return Coordinator(plan).run();
    } catch (const std::exception& e) {  // the servers and workers are stopped on the way out
        std::fprintf(stderr, "hawser-bench: %s\n", e.what());
        return 1;
    }
}

}  // namespace hawser::bench
