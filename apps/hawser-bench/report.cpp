// Merging, the summary table and the SVG charts (see report.hpp).
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "latency.hpp"

namespace hawser::bench {

namespace {

std::uint64_t u64(const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<std::uint64_t>() : 0;
}

std::string fmt(double v, int decimals = 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string duration_us(std::uint64_t us) {
    if (us >= 10'000'000) return fmt(double(us) / 1e6, 1) + " s";
    if (us >= 10'000) return fmt(double(us) / 1e3, 1) + " ms";
    return std::to_string(us) + " us";
}

}  // namespace

Json summarize(const std::string& phase, const std::vector<Json>& results) {
    Json s{{"phase", phase}};
    std::uint64_t ok = 0, failed = 0, open = 0, start = UINT64_MAX, end = 0, drops = 0,
                  deliveries = 0, expected = 0, worker_rss = 0, slow = 0, slow_closed = 0,
                  slow_deliveries = 0, slow_caught_up = 0, churned = 0, channels = 0,
                  subscribed = 0, subscribe_failed = 0, publications = 0, heartbeats = 0,
                  heartbeats_answered = 0;
    bool beating = false;
    std::uint64_t rounds = UINT64_MAX;
    double subscribe_seconds = 0;
    Latency subscribe_latency;
    std::map<std::string, std::uint64_t> errors, drop_reasons;
    Latency latency;
    for (const auto& r : results) {
        if (r.contains("error")) errors["worker: " + r["error"].get<std::string>()]++;
        ok += u64(r, "ok");
        failed += u64(r, "failed");
        open += u64(r, "open");
        drops += u64(r, "drops");
        deliveries += u64(r, "deliveries");
        expected += u64(r, "expected");
        slow += u64(r, "slow");
        slow_closed += u64(r, "slow_closed");
        slow_deliveries += u64(r, "slow_deliveries");
        slow_caught_up += u64(r, "slow_caught_up");
        worker_rss += u64(r, "rss_kib");
        beating = beating || r.contains("heartbeats");
        heartbeats += u64(r, "heartbeats");
        heartbeats_answered += u64(r, "heartbeats_answered");
        churned += u64(r, "churned");
        publications += u64(r, "publications");
        channels += u64(r, "channels");
        if (r.contains("rounds")) rounds = std::min(rounds, u64(r, "rounds"));
        if (r.contains("subscribe")) {
            const auto& sub = r["subscribe"];
            subscribed += u64(sub, "ok");
            subscribe_failed += u64(sub, "failed");
            if (sub.contains("seconds"))
                subscribe_seconds = std::max(subscribe_seconds, sub["seconds"].get<double>());
            if (sub.contains("errors"))
                for (auto& [k, v] : sub["errors"].items())
                    errors["subscribe: " + k] += v.get<std::uint64_t>();
            if (sub.contains("latency"))
                subscribe_latency.merge(Latency::from_json(sub["latency"]));
        }
        if (auto t = u64(r, "start_ns")) start = std::min(start, t);
        end = std::max(end, u64(r, "end_ns"));
        if (r.contains("errors"))
            for (auto& [k, v] : r["errors"].items()) errors[k] += v.get<std::uint64_t>();
        if (r.contains("drop_reasons"))
            for (auto& [k, v] : r["drop_reasons"].items())
                drop_reasons[k] += v.get<std::uint64_t>();
        if (r.contains("latency")) latency.merge(Latency::from_json(r["latency"]));
    }
    s["ok"] = ok;
    s["failed"] = failed;
    s["open"] = open;
    s["errors"] = errors;
    s["workers_rss_kib"] = worker_rss;
    if (beating) {  // raw only: Hawser's clients send theirs (Timeouts::heartbeat) uncounted
        s["heartbeats"] = heartbeats;
        s["heartbeats_answered"] = heartbeats_answered;
    }
    s["latency"] = latency.summary();
    double seconds = start != UINT64_MAX && end > start ? double(end - start) / 1e9 : 0;
    s["seconds"] = seconds;
    // The fewest connects in flight any worker fell back to (open_window.hpp); absent from raw.
    std::optional<std::uint64_t> lowest;
    for (const auto& r : results)
        if (r.contains("opening_lowest"))
            lowest = std::min(lowest.value_or(UINT64_MAX), u64(r, "opening_lowest"));
    if (lowest) s["opening_lowest"] = *lowest;
    if (phase == "hold") {
        s["drops"] = drops;
        s["drop_reasons"] = drop_reasons;
    } else if (phase == "storm") {
        // From the kill (the coordinator's clock, as every process's: CLOCK_MONOTONIC) to the
        // moment the last worker had 99.9 % of its connections back, and all of them; null if
        // a worker never got there.
        std::uint64_t target = 0, back_999 = 0, back = 0, killed = 0, reaped = 0, listening = 0,
                      restarted = 0;
        bool all_back = !results.empty(), all_999 = !results.empty();
        for (const auto& r : results) {
            target += u64(r, "target");
            killed = std::max(killed, u64(r, "killed_ns"));
            reaped = std::max(reaped, u64(r, "reaped_ns"));
            listening = std::max(listening, u64(r, "listening_ns"));
            restarted = std::max(restarted, u64(r, "restarted_ns"));
            back_999 = std::max(back_999, u64(r, "back_999_ns"));
            back = std::max(back, u64(r, "back_ns"));
            bool idle = u64(r, "target") == 0;
            all_back = all_back && (idle || u64(r, "back_ns") > 0);
            all_999 = all_999 && (idle || u64(r, "back_999_ns") > 0);
        }
        auto since = [](std::uint64_t from, std::uint64_t t) -> Json {
            if (!t || !from || t < from) return nullptr;
            return double(t - from) / 1e9;
        };
        s["target"] = target;
        s["drops"] = drops;
        s["drop_reasons"] = drop_reasons;
        s["all_back"] = all_back;
        // The servers' own restart, and its steps: every killed process gone (a kernel tearing
        // down their sockets), every new one listening, every node seeing the others.
        s["restart_seconds"] = since(killed, restarted);
        s["reaped_seconds"] = since(killed, reaped);
        s["listening_seconds"] = since(killed, listening);
        // Established clients' calls while it ran (the soak phase's p99 is the calm figure).
        Latency established;
        std::uint64_t probes_ok = 0, probes_failed = 0;
        bool probed = false;
        for (const auto& r : results) {
            if (!r.contains("established")) continue;
            probed = true;
            const auto& e = r["established"];
            probes_ok += u64(e, "ok");
            probes_failed += u64(e, "failed");
            established.merge(Latency::from_json(e["latency"]));
        }
        if (probed)
            s["established"] = {
                {"ok", probes_ok}, {"failed", probes_failed}, {"latency", established.summary()}};
        s["seconds_to_999"] = all_999 ? since(killed, back_999) : Json(nullptr);
        s["seconds"] = all_back ? since(killed, back) : Json(nullptr);
        // Reconnects per second from when the workers began reopening (the servers were up).
        auto span = since(start == UINT64_MAX ? 0 : start, all_back ? back : end);
        s["per_second"] =
            span.is_number() && span.get<double>() > 0 ? double(ok) / span.get<double>() : 0.0;
    } else if (phase == "broadcast" || phase == "slow") {
        // From the trigger (worker 0 asks) to the last delivery anywhere.
        auto trigger = results.empty() ? 0 : u64(results[0], "start_ns");
        double to_all = trigger && end > trigger ? double(end - trigger) / 1e9 : 0;
        s["deliveries"] = deliveries;
        s["expected"] = expected;
        s["complete"] = deliveries == expected && expected > 0;
        s["seconds"] = to_all;
        s["deliveries_per_second"] = to_all > 0 ? double(deliveries) / to_all : 0.0;
        if (phase == "slow") {
            s["slow"] = slow;                // stopped reading meanwhile
            s["slow_closed"] = slow_closed;  // found closed by the server once they read again
            s["slow_deliveries"] = slow_deliveries;  // read while they should not have
            s["slow_caught_up"] = slow_caught_up;    // read once they read again
        }
    } else if (phase == "channels") {
        // From the first round asked to the last delivery anywhere. Under churn, what was
        // published to a channel between a connection's close and its replacement's
        // subscription is lost: delivered below 1.
        s["rounds"] = rounds == UINT64_MAX ? 0 : rounds;
        s["channels"] = channels;
        s["publications"] = publications;
        s["deliveries"] = deliveries;
        s["expected"] = expected;
        s["delivered"] = expected ? double(deliveries) / double(expected) : 0.0;
        s["deliveries_per_second"] = seconds > 0 ? double(deliveries) / seconds : 0.0;
        s["churned"] = churned;
        s["subscribe"] = {
            {"ok", subscribed},
            {"failed", subscribe_failed},
            {"seconds", subscribe_seconds},
            {"per_second", subscribe_seconds > 0 ? double(subscribed) / subscribe_seconds : 0.0},
            {"latency", subscribe_latency.summary()}};
    } else {
        s["per_second"] = seconds > 0 ? double(ok) / seconds : 0.0;
    }
    return s;
}

Json headline(const Json& summary) {
    if (summary.contains("deliveries_per_second")) return summary["deliveries_per_second"];
    if (summary.contains("per_second")) return summary["per_second"];
    return nullptr;
}

namespace {

std::string describe(const Json& s) {
    if (s.is_null()) return "-";
    const std::string phase = s["phase"];
    auto lat = s["latency"];
    std::string failed = s["failed"].get<std::uint64_t>()
                             ? ", " + std::to_string(s["failed"].get<std::uint64_t>()) + " failed"
                             : "";
    if (phase == "storm") {
        auto secs = [](const Json& v) {
            return v.is_number() ? fmt(v.get<double>(), 2) + " s" : std::string("never");
        };
        return std::to_string(s["drops"].get<std::uint64_t>()) + " dropped, 99.9% back in " +
               secs(s["seconds_to_999"]) + ", all in " + secs(s["seconds"]) + ", " +
               fmt(s["per_second"].get<double>()) + " reconnects/s" +
               (s["failed"].get<std::uint64_t>()
                    ? ", " + std::to_string(s["failed"].get<std::uint64_t>()) + " attempts failed"
                    : "") +
               (s.contains("established")
                    ? "; established calls p99 " +
                          duration_us(s["established"]["latency"]["p99_us"]) +
                          (s["established"]["failed"].get<std::uint64_t>()
                               ? ", " +
                                     std::to_string(
                                         s["established"]["failed"].get<std::uint64_t>()) +
                                     " failed"
                               : "")
                    : "");
    }
    if (phase == "soak")
        return std::to_string(s["ok"].get<std::uint64_t>()) + failed + " in " +
               fmt(s["seconds"].get<double>(), 0) + " s, p99 " + duration_us(lat["p99_us"]) +
               ", server RSS drift " +
               (s["rss_drift"].is_number() ? fmt(s["rss_drift"].get<double>() * 100, 2) + "%"
                                           : std::string("n/a"));
    if (phase == "hold")
        return std::to_string(s["open"].get<std::uint64_t>()) + " held " +
               fmt(s["seconds"].get<double>(), 1) + " s, " +
               std::to_string(s["drops"].get<std::uint64_t>()) + " dropped";
    if (phase == "channels")
        return std::to_string(s["deliveries"].get<std::uint64_t>()) + "/" +
               std::to_string(s["expected"].get<std::uint64_t>()) + " in " +
               fmt(s["seconds"].get<double>(), 2) + " s, " +
               fmt(s["deliveries_per_second"].get<double>()) + "/s, p99 " +
               duration_us(lat["p99_us"]) + ", " +
               std::to_string(s["churned"].get<std::uint64_t>()) + " replaced";
    if (phase == "broadcast" || phase == "slow") {
        auto line = std::to_string(s["deliveries"].get<std::uint64_t>()) + "/" +
                    std::to_string(s["expected"].get<std::uint64_t>()) + " in " +
                    duration_us(std::uint64_t(s["seconds"].get<double>() * 1e6)) + ", " +
                    fmt(s["deliveries_per_second"].get<double>()) + "/s, p99 " +
                    duration_us(lat["p99_us"]);
        if (phase == "slow")
            line += "; " + std::to_string(s["slow"].get<std::uint64_t>()) + " not reading (" +
                    std::to_string(s["slow_closed"].get<std::uint64_t>()) + " closed)" +
                    (s.contains("rss_vs_broadcast")
                         ? ", server RSS " + fmt(s["rss_vs_broadcast"].get<double>(), 2) +
                               "x the broadcast phase's"
                         : "");
        return line;
    }
    return std::to_string(s["ok"].get<std::uint64_t>()) + failed + ", " +
           fmt(s["per_second"].get<double>()) + "/s, p50 " + duration_us(lat["p50_us"]) + ", p99 " +
           duration_us(lat["p99_us"]);
}

}  // namespace

std::string summary_table(const Json& report) {
    std::ostringstream out;
    const auto& runs = report["runs"];
    bool raw = runs.contains("raw");
    char line[512];
    bool sealed = report["plan"].value("raw_sealed", false);
    std::snprintf(line, sizeof line, "%-10s | %-52s | %-44s | %s\n", "phase", "hawser",
                  raw ? (sealed ? "raw, sealed" : "raw") : "", raw ? "ratio" : "");
    out << line << std::string(120, '-') << "\n";
    for (const auto& name : report["plan"]["phases"]) {
        const std::string phase = name;
        if (!runs["hawser"]["phases"].contains(phase)) continue;
        const auto& s = runs["hawser"]["phases"][phase];
        Json r =
            raw && runs["raw"]["phases"].contains(phase) ? runs["raw"]["phases"][phase] : Json();
        std::string ratio;
        if (report["ratios"].contains(phase)) ratio = fmt(report["ratios"][phase].get<double>(), 2);
        std::snprintf(line, sizeof line, "%-10s | %-52s | %-44s | %s\n", phase.c_str(),
                      describe(s).c_str(), raw ? describe(r).c_str() : "", ratio.c_str());
        out << line;
    }
    for (const char* mode : {"hawser", "raw"}) {
        if (!runs.contains(mode)) continue;
        const auto& m = runs[mode];
        if (m.contains("server_bytes_per_connection"))
            out << mode << ": server memory per connection "
                << fmt(m["server_bytes_per_connection"].get<double>()) << " B ("
                << m["server_connections"].get<std::uint64_t>() << " connections, "
                << m["servers"].size() << " server processes)\n";
    }
    return out.str();
}

namespace {

struct Series {
    std::string name;
    std::vector<std::pair<double, double>> points;
};

const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

// A line chart: x in seconds from the start of the run, one polyline per series.
std::string svg_chart(const std::string& title, const std::string& y_label,
                      const std::vector<Series>& series) {
    const double w = 800, h = 400, left = 70, right = 20, top = 40, bottom = 50;
    double max_x = 1, max_y = 1;
    for (auto& s : series)
        for (auto& [x, y] : s.points) max_x = std::max(max_x, x), max_y = std::max(max_y, y);
    max_y *= 1.05;
    auto px = [&](double x) { return left + x / max_x * (w - left - right); };
    auto py = [&](double y) { return h - bottom - y / max_y * (h - top - bottom); };
    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << w / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << title
      << "</text>\n";
    for (int i = 0; i <= 4; ++i) {  // grid and y ticks
        double y = max_y * i / 4;
        o << "<line x1=\"" << left << "\" x2=\"" << w - right << "\" y1=\"" << py(y) << "\" y2=\""
          << py(y) << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << py(y) + 4
          << "\" text-anchor=\"end\">" << fmt(y, y < 10 ? 1 : 0) << "</text>\n";
        double x = max_x * i / 4;
        o << "<text x=\"" << px(x) << "\" y=\"" << h - bottom + 18 << "\" text-anchor=\"middle\">"
          << fmt(x, 0) << " s</text>\n";
    }
    o << "<text x=\"16\" y=\"" << h / 2 << "\" transform=\"rotate(-90 16 " << h / 2
      << ")\" text-anchor=\"middle\">" << y_label << "</text>\n";
    for (std::size_t i = 0; i < series.size(); ++i) {
        auto colour = colours[i % std::size(colours)];
        o << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
        for (auto& [x, y] : series[i].points) o << fmt(px(x), 1) << "," << fmt(py(y), 1) << " ";
        o << "\"/>\n<text x=\"" << left + 10 + 140 * double(i) << "\" y=\"" << h - 12
          << "\" fill=\"" << colour << "\">" << series[i].name << "</text>\n";
    }
    o << "</svg>\n";
    return o.str();
}

}  // namespace

std::vector<std::string> write_charts(const Json& report, const std::string& dir) {
    std::filesystem::create_directories(dir);
    std::map<std::string, Series> open, rss, p99;
    for (const auto& t : report["timeline"]) {
        std::string mode = t["mode"];
        double x = t["t"];
        open[mode].name = rss[mode].name = p99[mode].name = mode;
        open[mode].points.emplace_back(x, t["open"].get<double>());
        rss[mode].points.emplace_back(x, t["server_rss_kib"].get<double>() / 1024);
        if (t["p99_us"].is_number())  // null: nothing recorded then
            p99[mode].points.emplace_back(x, t["p99_us"].get<double>() / 1000);
    }
    auto values = [](auto& m) {
        std::vector<Series> v;
        for (auto& [k, s] : m) v.push_back(s);
        return v;
    };
    std::vector<std::string> written;
    auto write = [&](const std::string& name, const std::string& svg) {
        auto path = dir + "/" + name;
        std::ofstream(path) << svg;
        written.push_back(path);
    };
    write("connections.svg", svg_chart("Connections open", "connections", values(open)));
    write("rss.svg", svg_chart("Server memory (sum of the servers' RSS)", "MiB", values(rss)));
    write("latency.svg", svg_chart("p99 latency, each half second", "ms", values(p99)));
    return written;
}

}  // namespace hawser::bench
