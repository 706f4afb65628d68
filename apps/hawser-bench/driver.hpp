// Driver: the connections of one worker process and the phases run on them. Two kinds: Hawser
// (a ClientGroup) and raw (plain epoll sockets, the baseline). Every phase returns its figures
// as JSON (see report.hpp for the fields) and calls `progress` about four times a second.
// Thread affinity: the worker's main thread; a Hawser driver's IO thread works underneath.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hawser::bench {

using Json = nlohmann::json;
using Progress = std::function<void(const Json&)>;

struct DriverSetup {
    std::string mode;                    // "hawser" or "raw"
    std::vector<std::string> endpoints;  // host:port of each server
    std::string server_key;              // hawser: 64 hex digits ("" with plaintext)
    bool plaintext = false;              // hawser
    bool cluster = false;                // one broadcast reaches every endpoint's connections
    std::string source_address;          // this worker's local address ("" = any)
    std::chrono::milliseconds heartbeat{20000};  // a ping after this much quiet (0: none)
    std::chrono::milliseconds timeout{30000};    // connect, call and phase deadlines
    std::size_t max_opening = 512;               // connects in flight at once
    bool sealed = false;  // raw: per-connection keys and sealed records (raw_seal.hpp)
};

// The channels phase, the shape of Centrifugo's million-connection test: every connection on
// a personal channel and on a group channel (apps/common/bench_channels.hpp), rounds of one
// publication on every channel, and connections replaced meanwhile.
struct ChannelsPlan {
    std::size_t worker = 0;  // this worker's number: its channels are its own
    unsigned rounds = 10;
    unsigned size = 64;      // bytes per message
    std::size_t group = 10;  // connections per group channel
    double rate = 0;         // publications per second (0: a round once the last is answered)
    double churn_rate = 0;   // connections closed and replaced per second meanwhile
};

class Driver {
  public:
    virtual ~Driver() = default;
    // Opens `count` more connections at `rate` per second (0 = as fast as they complete).
    virtual Json connect(std::size_t count, double rate, const Progress& progress) = 0;
    // Keeps them open for `duration` (heartbeats flow); counts the ones that drop.
    virtual Json hold(std::chrono::milliseconds duration, const Progress& progress) = 0;
    // One round trip on every connection at once.
    virtual Json ping(const Progress& progress) = 0;
    // `in_flight` calls on every connection, each followed by the next, for `duration`.
    virtual Json call(unsigned in_flight, std::chrono::milliseconds duration,
                      const Progress& progress) = 0;
    // Reconnect storm. storm_arm: notes what is open, per server, before the first `killed`
    // servers are killed. storm (they were started again meanwhile): reopens what was lost on
    // the server it was lost on, at most max_opening at once, retrying failures every 50 ms,
    // until every connection to a killed server was seen to drop and all are back, or nothing
    // more came back for twice the timeout. Figures: drops, reconnects (ok), failed attempts by
    // reason, when reopening began (start_ns), and when 99.9 % and all were back (ns). Meanwhile
    // `probe_rate` echo calls a second go to the connections open at the time, spread over
    // them: what established clients see while a storm runs ("established": ok, failed,
    // latency; the Hawser driver only).
    virtual void storm_arm(std::size_t killed) = 0;
    virtual Json storm(double probe_rate, const Progress& progress) = 0;
    // Steady calls for `duration`: `rate` per second, one connection after the other (soak).
    virtual Json soak(double rate, std::chrono::milliseconds duration,
                      const Progress& progress) = 0;
    // Forgets the broadcasts counted so far: every worker arms before any triggers. Stops
    // reading on `slow_fraction` of the connections, spread over them (slow consumers), until
    // the broadcast is over; once this returns they read nothing more.
    virtual void arm(double slow_fraction) = 0;
    // Waits for `count` broadcasts of `size` bytes on every connection that reads; `trigger`:
    // this worker asks the server(s) to send them. Then the slow consumers read again.
    virtual Json broadcast(bool trigger, unsigned count, unsigned size,
                           const Progress& progress) = 0;
    // Subscribes every connection to its two channels (figures under "subscribe"; at most
    // 2 x max_opening subscriptions in flight), then has
    // the servers publish `rounds` rounds, at `rate` or each once the last was answered, asked
    // on one connection that is never replaced (Hawser: one node of the cluster; raw: each
    // server, for its own subscribers). A replacement joins the channels of the connection it
    // replaces. Counts the deliveries, their latency from publish, until all came, nothing
    // more came for 2 s, or the timeout.
    virtual Json channels(const ChannelsPlan& plan, const Progress& progress) = 0;
    // Closes `rate` connections per second and opens as many again, for `duration`.
    virtual Json churn(double rate, std::chrono::milliseconds duration,
                       const Progress& progress) = 0;
    virtual std::size_t open_count() const = 0;
};

std::unique_ptr<Driver> make_hawser_driver(const DriverSetup& setup);
std::unique_ptr<Driver> make_raw_driver(const DriverSetup& setup);

}  // namespace hawser::bench
