// hawser-bench: opens, holds and drives many connections against Hawser servers from several
// worker processes, runs the same phases on a raw epoll baseline in the same run, and reports
// rates, latency percentiles and memory per connection (JSON, a table and SVG charts).
//   hawser-bench --connections 50000 --spawn-cluster 3 --raw
//   hawser-bench --endpoint 10.0.0.5:7100 --key <hex> --phases connect,hold,ping
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>

#include "coordinator.hpp"
#include "raw_server.hpp"

namespace {

std::string sibling(const std::string& self, const std::string& name) {
    namespace fs = std::filesystem;
    auto dir = fs::path(self).parent_path();
    for (auto candidate : {dir / name, dir / ".." / name / name})
        if (fs::exists(candidate)) return fs::weakly_canonical(candidate).string();
    return name;  // from PATH
}

}  // namespace

int main(int argc, char** argv) {
    hawser::bench::Plan plan;
    CLI::App cli{"hawser-bench: many connections, phases, figures beside a raw baseline"};
    cli.require_subcommand(0, 1);
    std::string phases = "connect,hold,ping,broadcast";
    cli.add_option("-n,--connections", plan.connections, "connections to open")
        ->capture_default_str();
    cli.add_option("--connect-rate", plan.connect_rate,
                   "connects per second over all workers (0 = as fast as they complete)");
    cli.add_option("--phases", phases,
                   "comma-separated, in order: connect, hold, ping, call, broadcast, slow, "
                   "channels, churn, soak, storm")
        ->capture_default_str();
    cli.add_option("--hold", plan.hold_seconds, "hold: seconds")->capture_default_str();
    cli.add_option("--raw-hold", plan.raw_hold_seconds,
                   "hold: seconds for the raw baseline (default: as --hold)");
    cli.add_option("--calls-in-flight", plan.calls_in_flight, "call: per connection")
        ->capture_default_str();
    cli.add_option("--call-seconds", plan.call_seconds, "call: seconds")->capture_default_str();
    cli.add_option("--broadcasts", plan.broadcasts, "broadcast: messages")->capture_default_str();
    cli.add_option("--broadcast-bytes", plan.broadcast_bytes, "broadcast: bytes each (32..)")
        ->capture_default_str();
    cli.add_option("--slow-fraction", plan.slow_fraction,
                   "slow: the share of connections that stop reading during its broadcasts")
        ->capture_default_str();
    cli.add_option("--churn-rate", plan.churn_rate, "churn: closes and opens per second")
        ->capture_default_str();
    cli.add_option("--churn-seconds", plan.churn_seconds, "churn: seconds")->capture_default_str();
    cli.add_option("--storm-nodes", plan.storm_nodes,
                   "storm: servers killed (SIGKILL) and restarted, the first N (0 = all)")
        ->capture_default_str();
    cli.add_option("--soak-rate", plan.soak_rate,
                   "soak: calls per second over all workers; also the storm's calls on established "
                   "connections")
        ->capture_default_str();
    cli.add_option("--soak-seconds", plan.soak_seconds, "soak: seconds (server RSS sampled)")
        ->capture_default_str();
    cli.add_option("--channel-rounds", plan.channel_rounds,
                   "channels: rounds, each one message on every channel")
        ->capture_default_str();
    cli.add_option("--channel-bytes", plan.channel_bytes, "channels: bytes per message (32..65536)")
        ->capture_default_str();
    cli.add_option("--channel-group", plan.channel_group,
                   "channels: connections per group channel (each is also on its own)")
        ->capture_default_str();
    cli.add_option("--channel-rate", plan.channel_rate,
                   "channels: publications per second over all workers (0 = each round as soon as "
                   "the last was answered)")
        ->capture_default_str();
    cli.add_option("--channel-churn", plan.channel_churn,
                   "channels: connections replaced per second meanwhile, over all workers")
        ->capture_default_str();
    cli.add_option("--per-worker", plan.per_worker, "connections per worker process")
        ->capture_default_str();
    cli.add_option(
           "--max-opening", plan.max_opening,
           "connects in flight per worker (a Hawser worker's connect phase: fewer while they "
           "fail) and twice as many channel subscriptions")
        ->capture_default_str();
    cli.add_option("--spawn-cluster", plan.spawn_cluster,
                   "start this many hawser-server nodes (over a nats-server when more than one)")
        ->capture_default_str();
    cli.add_option("--endpoint", plan.endpoints,
                   "a server it did not start, host:port (repeatable)");
    cli.add_option("--key", plan.key, "those servers' public key (64 hex digits)");
    cli.add_flag("--cluster", plan.cluster, "those endpoints are one cluster");
    cli.add_flag("--plaintext", plan.plaintext, "no encryption (the servers must agree)");
    cli.add_option("--server-max-handshakes-per-second", plan.server_max_handshakes_per_second,
                   "each spawned node's pace of key exchanges ([admission] "
                   "max_handshakes_per_second; 0 = none)")
        ->capture_default_str();
    cli.add_flag("--raw", plan.raw, "run the same phases on raw epoll servers too, for ratios");
    cli.add_flag("--raw-sealed", plan.raw_sealed,
                 "the raw baseline exchanges keys (X25519, as Noise NK) and seals what it sends "
                 "(ChaCha20-Poly1305); implies --raw");
    cli.add_option("--heartbeat-ms", plan.heartbeat_ms, "client heartbeat (0 = none)")
        ->capture_default_str();
    cli.add_option("--timeout-ms", plan.timeout_ms, "connect, call and phase deadlines")
        ->capture_default_str();
    cli.add_option("--report", plan.report, "JSON report")->capture_default_str();
    cli.add_option("--charts", plan.charts, "directory for the SVG charts (default: the report's)");
    cli.add_option("--work-dir", plan.work_dir, "server logs and data")->capture_default_str();
    cli.add_option("--server-binary", plan.server_binary, "hawser-server to start");

    auto* raw_server = cli.add_subcommand("raw-server", "the raw baseline's server (internal)");
    std::string listen;
    raw_server->add_option("--listen", listen, "127.0.0.1:PORT")->required();
    bool sealed = false;
    raw_server->add_flag("--sealed", sealed, "per-connection keys and sealed records");
    CLI11_PARSE(cli, argc, argv);

    if (raw_server->parsed()) {
        auto colon = listen.rfind(':');
        if (colon == std::string::npos) return 2;
        return hawser::bench::run_raw_server(
            listen.substr(0, colon), std::uint16_t(std::stoul(listen.substr(colon + 1))), sealed);
    }
    plan.phases.clear();
    for (std::size_t start = 0; start <= phases.size();) {
        auto comma = phases.find(',', start);
        if (comma == std::string::npos) comma = phases.size();
        if (comma > start) plan.phases.push_back(phases.substr(start, comma - start));
        start = comma + 1;
    }
    for (const auto& p : plan.phases)
        if (p != "connect" && p != "hold" && p != "ping" && p != "call" && p != "broadcast" &&
            p != "slow" && p != "channels" && p != "churn" && p != "soak" && p != "storm") {
            std::fprintf(stderr, "hawser-bench: unknown phase '%s'\n", p.c_str());
            return 2;
        }
    if (!plan.endpoints.empty() &&
        std::find(plan.phases.begin(), plan.phases.end(), "storm") != plan.phases.end()) {
        std::fprintf(stderr,
                     "hawser-bench: storm restarts the servers: it needs servers it started "
                     "(--spawn-cluster), not --endpoint\n");
        return 2;
    }
    auto channel_phases = std::count(plan.phases.begin(), plan.phases.end(), "channels");
    if (channel_phases > 1) {
        std::fprintf(stderr, "hawser-bench: channels may run once in --phases\n");
        return 2;
    }
    if (channel_phases && !plan.endpoints.empty() && !plan.cluster) {
        std::fprintf(stderr,
                     "hawser-bench: channels live in a cluster: --endpoint needs --cluster\n");
        return 2;
    }
    if (plan.storm_nodes > plan.spawn_cluster) {
        std::fprintf(stderr, "hawser-bench: --storm-nodes is more than --spawn-cluster\n");
        return 2;
    }
    if (!plan.endpoints.empty() && plan.key.empty() && !plan.plaintext) {
        std::fprintf(stderr, "hawser-bench: --endpoint needs --key (or --plaintext)\n");
        return 2;
    }
    // Bounds that keep every phase finite and within what the servers accept.
    const char* bad = nullptr;
    if (plan.connections == 0) bad = "--connections must be at least 1";
    if (plan.broadcast_bytes < 32 || plan.broadcast_bytes > (1u << 20))
        bad = "--broadcast-bytes must be 32 to 1048576";
    if (plan.broadcasts == 0 || plan.broadcasts > 10000) bad = "--broadcasts must be 1 to 10000";
    if (std::uint64_t(plan.broadcasts) * plan.broadcast_bytes > (4u << 20))
        bad = "--broadcasts x --broadcast-bytes must be at most 4 MiB (a connection's send queue)";
    if (!(plan.slow_fraction >= 0 && plan.slow_fraction < 1))
        bad = "--slow-fraction must be at least 0 and below 1";
    if (!(plan.soak_rate > 0 && plan.soak_rate <= 1e7))
        bad = "--soak-rate must be above 0, at most 1e7";
    if (!(plan.churn_rate > 0)) bad = "--churn-rate must be above 0";
    if (plan.channel_rounds == 0 || plan.channel_rounds > 10000)
        bad = "--channel-rounds must be 1 to 10000";
    if (plan.channel_bytes < 32 || plan.channel_bytes > 65536)
        bad = "--channel-bytes must be 32 to 65536";
    if (plan.channel_group == 0 || plan.channel_group > 100000)
        bad = "--channel-group must be 1 to 100000";
    if (!(plan.channel_rate == 0 || (plan.channel_rate >= 1 && plan.channel_rate <= 1e8)))
        bad = "--channel-rate must be 0, or 1 to 1e8";
    if (!(plan.channel_churn >= 0 && plan.channel_churn <= 1e6))
        bad = "--channel-churn must be 0 to 1e6";
    if (!(plan.connect_rate >= 0)) bad = "--connect-rate must be 0 or more";
    if (!(plan.server_max_handshakes_per_second == 0 ||
          (plan.server_max_handshakes_per_second >= 1 &&
           plan.server_max_handshakes_per_second <= 1e9)))
        bad = "--server-max-handshakes-per-second must be 0 (none) or 1 to 1e9";
    if (plan.max_opening == 0 || plan.max_opening > 1'000'000)
        bad = "--max-opening must be 1 to 1000000";
    if (plan.calls_in_flight == 0 || plan.calls_in_flight > 1024)
        bad = "--calls-in-flight must be 1 to 1024";
    // A node holds at most ~19,000 connections (a process's files): a few more than a million.
    if (plan.endpoints.empty() && (plan.spawn_cluster == 0 || plan.spawn_cluster > 1000))
        bad = "--spawn-cluster must be 1 to 1000";
    if (plan.timeout_ms <= 0) bad = "--timeout-ms must be above 0";
    if (plan.heartbeat_ms < 0) bad = "--heartbeat-ms must be 0 or more";
    for (double seconds : {plan.hold_seconds, plan.raw_hold_seconds < 0 ? 0 : plan.raw_hold_seconds,
                           plan.call_seconds, plan.churn_seconds, plan.soak_seconds})
        if (!(seconds >= 0 && seconds <= 1e6)) bad = "durations must be 0 to 1e6 seconds";
    if (bad) {
        std::fprintf(stderr, "hawser-bench: %s\n", bad);
        return 2;
    }
    if (plan.raw_sealed) plan.raw = true;
    plan.self = std::filesystem::read_symlink("/proc/self/exe").string();
    if (plan.server_binary.empty()) plan.server_binary = sibling(plan.self, "hawser-server");
    return hawser::bench::run_coordinator(plan);
}
