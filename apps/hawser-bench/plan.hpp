// Plan: what one hawser-bench run does, as given on the command line (main.cpp).
// Plain value.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hawser::bench {

struct Plan {
    std::size_t connections = 1000;
    double connect_rate = 0;  // per second over all workers; 0 = as fast as they complete
    std::vector<std::string> phases{"connect", "hold", "ping", "broadcast"};
    double hold_seconds = 5;
    double raw_hold_seconds = -1;  // the raw baseline's hold; < 0 = as long as Hawser's
    unsigned calls_in_flight = 4;
    double call_seconds = 5;
    unsigned broadcasts = 10;
    unsigned broadcast_bytes = 64;
    double slow_fraction = 0.01;  // slow: connections that stop reading during the broadcasts
    double churn_rate = 100;      // closes and opens per second over all workers
    double churn_seconds = 5;
    std::size_t storm_nodes = 0;  // storm: servers killed and restarted (0 = all)
    double soak_rate = 1000;      // soak: calls per second over all workers
    double soak_seconds = 60;
    unsigned channel_rounds = 10;    // channels: one publication on every channel each
    unsigned channel_bytes = 64;     // channels: bytes per message
    std::size_t channel_group = 10;  // channels: connections per group channel
    double channel_rate = 0;         // channels: publications per second over all workers (0: each
                                     // round once the last was answered)
    double channel_churn = 0;        // channels: replacements per second over all workers
    std::size_t per_worker = 15000;  // connections per worker process (file limit: 20,000)
    std::size_t max_opening = 512;   // connects in flight per worker
    // Servers: started here (spawn_cluster nodes) unless endpoints are given.
    std::size_t spawn_cluster = 1;
    std::vector<std::string> endpoints;
    std::string key;
    bool cluster = false;  // the endpoints are one cluster: one broadcast reaches all
    bool plaintext = false;
    double server_max_handshakes_per_second = 0;  // the spawned nodes' pace of key exchanges
    bool raw = false;                             // the raw baseline too, in the same run
    bool raw_sealed = false;  // the baseline with per-connection keys (raw_seal.hpp)
    int heartbeat_ms = 20000;
    int timeout_ms = 30000;
    std::string report = "hawser-bench-report.json";
    std::string charts;  // directory for the SVG charts ("" = next to the report)
    std::string work_dir = "hawser-bench-work";
    std::string server_binary;
    std::string self;  // this program, for the raw servers
};

}  // namespace hawser::bench
