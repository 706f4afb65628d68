// The raw driver: this worker's connections as plain non-blocking sockets on one epoll, driven
// by the worker's main thread — the baseline each Hawser figure is divided by. The phases are
// defined in raw_driver.cpp (connect, hold, ping, call, soak, churn), raw_storm.cpp,
// raw_broadcast.cpp (broadcast and slow consumers) and raw_channels.cpp; heartbeats in
// raw_heartbeats.cpp.
#pragma once

#include <netinet/in.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <queue>
#include <unordered_map>

#include "bench_channels.hpp"
#include "clock.hpp"
#include "driver.hpp"
#include "latency.hpp"
#include "phase_figures.hpp"
#include "raw_seal.hpp"

namespace hawser::bench {

class RawDriver final : public Driver {
  public:
    explicit RawDriver(const DriverSetup& setup);
    ~RawDriver() override;
    Json connect(std::size_t count, double rate, const Progress& progress) override;
    Json hold(std::chrono::milliseconds duration, const Progress& progress) override;
    Json ping(const Progress& progress) override;
    Json call(unsigned in_flight, std::chrono::milliseconds duration,
              const Progress& progress) override;
    void storm_arm(std::size_t killed) override;
    Json storm(double probe_rate, const Progress& progress) override;
    Json soak(double rate, std::chrono::milliseconds duration, const Progress& progress) override;
    void arm(double slow_fraction) override;
    Json broadcast(bool trigger, unsigned count, unsigned size, const Progress& progress) override;
    Json churn(double rate, std::chrono::milliseconds duration, const Progress& progress) override;
    Json channels(const ChannelsPlan& plan, const Progress& progress) override;

    std::size_t open_count() const override { return open_; }

  private:
    using Clock = std::chrono::steady_clock;
    static constexpr auto tick = std::chrono::milliseconds(250);  // progress, and pacing

    // One socket, by its fd.
    struct Peer {
        enum State : std::uint8_t { unused, connecting, open } state = unused;
        std::uint8_t endpoint = 0;
        std::uint64_t serial = 0;   // tells a reused fd from the socket it was
        bool slow = false;          // a slow consumer of the broadcast under way
        bool publisher = false;     // asks its server for the channels phase's rounds
        std::int64_t channel = -1;  // the channels phase: its personal channel (k), or none
        std::string in;
        std::uint64_t heard_ns = 0, beat_ns = 0;  // its last read; its last heartbeat
        std::deque<std::uint64_t> sent_us;        // pings in flight, oldest first
        // Sealed only: its keys, made when the socket connects (still `connecting` until the
        // server's hello gives the rest), and the frames opened from `in`.
        std::unique_ptr<raw::Sealer> seal;
        std::string plain;
    };

    // The socket is open: it counts as connected.
    void opened(int fd, std::uint64_t t0_us);
    // The sealed variant's connecting socket read `p.in`: the server's hello finishes it.
    void on_hello(int fd);

    // Closes the oldest socket still open, never a publisher: its endpoint and channel.
    std::optional<std::pair<std::size_t, std::int64_t>> close_oldest();

    // Its personal channel and its group's, both answered with a pong (counted as calls).
    void send_subscribes(int fd);

    // Asks every server for the publications due (up to `due` in all; chained: the next
    // round once the last is answered everywhere). A slice of publications counts once every
    // server asked has answered: each reaches its own share of the subscribers.
    void publish_next(std::uint64_t due = 0);

    // A server answered the oldest slice it was asked (each answers in order); or, with
    // `lost`, it closed and none of what it was asked will be answered.
    void publication_answered(int fd, bool lost = false);
    void reset();
    Json figures(const char* phase) const;
    void done(bool ok, std::uint64_t t0_us, const std::string& error = {},
              std::uint64_t end_ns = now_ns());

    Peer& peer(int fd);

    // How many sockets are in `state`, per endpoint.
    std::vector<std::size_t> per_endpoint(Peer::State state) const;

    template <class F>
    void for_each_open(F&& f) {
        for (std::size_t fd = 0; fd < peers_.size(); ++fd)
            if (peers_[fd].state == Peer::open) f(int(fd));
    }

    void open_one(std::size_t endpoint, std::int64_t channel = -1);

    // The slow sockets are read again until each has its `count` messages (or closed), nothing
    // more came for 2 s, or the timeout, so that the next phase starts clean.
    void catch_up(unsigned count, Json& out, const Progress& progress);
    void watch(int fd, std::uint32_t events);
    void close_fd(int fd, bool dropped);

    // Sealed into one record first, in the sealed variant.
    bool write_all(int fd, const std::string& frames);

    // `count` pings in one write.
    std::size_t send_pings(int fd, std::size_t count = 1);
    // A heartbeat on each open socket due one, as Hawser's client sends them: after
    // --heartbeat-ms of quiet, and no sooner than that after the last (raw_heartbeats.cpp).
    void send_heartbeats(std::uint64_t now);
    // The socket just opened: its first check (none without --heartbeat-ms).
    void schedule_heartbeats(int fd);
    void on_event(int fd, std::uint32_t events);
    // Opens and handles what `in` holds whole.
    void consume(int fd);
    void on_message(std::string_view text, bool slow);
    void poll_once(int timeout_ms);
    void report(const Progress& progress, const char* phase);
    void poll_until(Clock::time_point at, const Progress& progress, const char* phase);

    template <class Pred>
    void poll_while(Pred&& more, const Progress& progress, const char* phase) {
        auto deadline = Clock::now() + 2 * setup_.timeout;
        while (more() && Clock::now() < deadline) {
            poll_once(250);
            report(progress, phase);
        }
    }

    const DriverSetup setup_;
    int ep_;
    std::vector<sockaddr_in> targets_;
    in_addr source_{};
    std::vector<Peer> peers_;                          // by fd
    std::deque<std::pair<int, std::uint64_t>> order_;  // opened sockets, oldest first (churn)
    std::vector<std::pair<int, std::uint64_t>> slow_;  // not read during a broadcast
    std::uint64_t serial_ = 0;
    std::size_t open_ = 0, opening_ = 0, in_flight_ = 0;
    std::uint64_t ok_ = 0, failed_ = 0, last_ns_ = 0, drops_ = 0, first_drop_ns_ = 0;
    StormWatch storm_;
    // Each open socket's next heartbeat check, soonest first; an entry whose serial is no longer
    // its socket's is dropped when it comes up.
    struct Beat {
        std::uint64_t due_ns;
        int fd;
        std::uint64_t serial;
        bool operator>(const Beat& other) const { return due_ns > other.due_ns; }
    };
    std::priority_queue<Beat, std::vector<Beat>, std::greater<>> beats_;
    std::uint64_t heartbeats_ = 0, heartbeats_answered_ = 0;
    std::uint64_t poll_ns_ = 0;  // when the last epoll_wait returned (with heartbeats only)
    std::map<std::string, std::uint64_t> errors_;
    Latency latency_;
    Deliveries deliveries_;  // of the broadcast or channels phase under way
    std::uint64_t slow_deliveries_ = 0;
    // The channels phase's: what was asked of each server and what all of them answered.
    struct Slice {
        std::pair<std::uint64_t, std::uint64_t> range;  // first, count
        std::size_t waiting = 0;                        // servers that have not answered it yet
        bool lost = false;  // a server was not asked, or closed: not all of it was sent
    };
    struct Publisher {
        int fd = -1;
        std::deque<std::uint64_t> waiting;  // the slices it was asked, in order
    };
    Publications publishing_;
    std::uint64_t next_slice_ = 0;
    // The last answer, or the request that began a wait: a server that stalls is given up.
    Clock::time_point last_answer_;
    std::unordered_map<std::uint64_t, Slice> slices_;
    std::vector<Publisher> publishers_;  // one open connection to each server, never replaced
    ChannelLayout layout_;
    Clock::time_point calls_until_, next_report_;
    bool chaining_ = false;
};

}  // namespace hawser::bench
