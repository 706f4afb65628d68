// The raw driver: this worker's connections as plain non-blocking sockets on one epoll, driven
// by the worker's main thread — the baseline each Hawser figure is divided by.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>

#include "clock.hpp"
#include "driver.hpp"
#include "latency.hpp"
#include "raw_wire.hpp"

namespace hawser::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto tick = std::chrono::milliseconds(250);

struct Peer {
    enum State : std::uint8_t { unused, connecting, open } state = unused;
    std::uint8_t endpoint = 0;
    std::uint64_t serial = 0;  // tells a reused fd from the socket it was
    bool slow = false;         // a slow consumer of the broadcast under way
    std::string in;
    std::deque<std::uint64_t> sent_us;  // pings in flight, oldest first
};

class RawDriver final : public Driver {
  public:
    explicit RawDriver(const DriverSetup& setup)
        : setup_(setup), ep_(::epoll_create1(EPOLL_CLOEXEC)) {
        for (const auto& e : setup.endpoints) {
            auto colon = e.rfind(':');
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(std::uint16_t(std::stoul(e.substr(colon + 1))));
            ::inet_pton(AF_INET, e.substr(0, colon).c_str(), &a.sin_addr);
            targets_.push_back(a);
        }
        if (!setup.source_address.empty())
            ::inet_pton(AF_INET, setup.source_address.c_str(), &source_);
    }
    ~RawDriver() override {
        for (std::size_t fd = 0; fd < peers_.size(); ++fd)
            if (peers_[fd].state != Peer::unused) ::close(int(fd));
        ::close(ep_);
    }

    Json connect(std::size_t count, double rate, const Progress& progress) override {
        reset();
        auto start = Clock::now();
        auto start_ns = now_ns();
        for (std::size_t i = 0; i < count; ++i) {
            auto at = rate > 0
                          ? start + std::chrono::nanoseconds(std::int64_t(double(i) * 1e9 / rate))
                          : Clock::now();
            poll_until(at, progress, "connect");
            while (opening_ >= setup_.max_opening) {
                poll_once(50);
                report(progress, "connect");
            }
            open_one(i % targets_.size());
        }
        poll_while([&] { return ok_ + failed_ < count; }, progress, "connect");
        auto out = figures("connect");
        out["start_ns"] = start_ns;
        return out;
    }

    Json hold(std::chrono::milliseconds duration, const Progress& progress) override {
        reset();
        auto drops = drops_;
        auto start_ns = now_ns();
        poll_until(Clock::now() + duration, progress, "hold");
        auto out = figures("hold");
        out["start_ns"] = start_ns;
        out["end_ns"] = now_ns();
        out["drops"] = drops_ - drops;
        return out;
    }

    Json ping(const Progress& progress) override {
        reset();
        auto start_ns = now_ns();
        std::size_t sent = 0;
        for_each_open([&](int fd) { sent += send_pings(fd); });
        poll_while([&] { return ok_ + failed_ < sent; }, progress, "ping");
        auto out = figures("ping");
        out["start_ns"] = start_ns;
        return out;
    }

    Json call(unsigned in_flight, std::chrono::milliseconds duration,
              const Progress& progress) override {
        reset();
        auto start_ns = now_ns();
        calls_until_ = Clock::now() + duration;
        chaining_ = true;
        for_each_open([&](int fd) { send_pings(fd, in_flight); });
        poll_until(calls_until_, progress, "call");
        chaining_ = false;
        poll_while([&] { return in_flight_ > 0; }, progress, "call");
        auto out = figures("call");
        out["start_ns"] = start_ns;
        out["end_ns"] = now_ns();
        return out;
    }

    void storm_arm(std::size_t killed) override {
        storm_targets_ = per_endpoint(Peer::open);
        storm_expected_drops_ = 0;
        for (std::size_t e = 0; e < std::min(killed, storm_targets_.size()); ++e)
            storm_expected_drops_ += storm_targets_[e];
        storm_drops_ = drops_;
        first_drop_ns_ = 0;
    }

    Json storm(const Progress& progress) override {
        reset();
        auto start_ns = now_ns();
        std::size_t target = 0;
        for (auto t : storm_targets_) target += t;
        auto almost = target - target / 1000;  // 99.9 %, rounded up
        std::uint64_t back_999_ns = 0, back_ns = 0;
        auto deadline = Clock::now() + 2 * setup_.timeout;
        while (Clock::now() < deadline) {
            // Back only once every connection to a killed server was seen to drop.
            bool all_dropped = drops_ - storm_drops_ >= storm_expected_drops_;
            if (all_dropped && open_ >= almost && !back_999_ns) back_999_ns = now_ns();
            if (all_dropped && open_ >= target) {
                back_ns = now_ns();
                break;
            }
            auto open = per_endpoint(Peer::open), opening = per_endpoint(Peer::connecting);
            auto room = setup_.max_opening - std::min(setup_.max_opening, opening_);
            for (std::size_t e = 0; e < targets_.size(); ++e) {
                auto missing =
                    storm_targets_[e] - std::min(storm_targets_[e], open[e] + opening[e]);
                for (; missing > 0 && room > 0; --missing, --room) open_one(e);
            }
            poll_until(Clock::now() + tick / 5, progress, "storm");  // as the Hawser driver paces
        }
        if (!back_999_ns && back_ns) back_999_ns = back_ns;
        poll_while([&] { return opening_ > 0; }, progress, "storm");  // not the next phase's
        auto out = figures("storm");
        out["target"] = target;
        out["drops"] = drops_ - storm_drops_;
        out["first_drop_ns"] = first_drop_ns_;
        out["start_ns"] = start_ns;
        out["back_999_ns"] = back_999_ns;
        out["back_ns"] = back_ns;
        out["end_ns"] = back_ns ? back_ns : now_ns();
        return out;
    }

    Json soak(double rate, std::chrono::milliseconds duration, const Progress& progress) override {
        reset();
        std::vector<std::pair<int, std::uint64_t>> all;
        for_each_open([&](int fd) { all.emplace_back(fd, peers_[std::size_t(fd)].serial); });
        auto start = Clock::now();
        auto start_ns = now_ns();
        std::size_t started = 0;
        for (auto now = start; now < start + duration && !all.empty(); now = Clock::now()) {
            auto due = std::size_t(std::chrono::duration<double>(now - start).count() * rate);
            for (; started < due; ++started) {
                auto [fd, serial] = all[started % all.size()];
                auto& p = peers_[std::size_t(fd)];
                if (p.state == Peer::open && p.serial == serial) send_pings(fd);
            }
            poll_until(std::min(start + duration, now + tick / 25), progress, "soak");
        }
        poll_while([&] { return in_flight_ > 0; }, progress, "soak");
        auto out = figures("soak");
        out["start_ns"] = start_ns;
        out["end_ns"] = now_ns();
        return out;
    }

    void arm(double slow_fraction) override {
        deliveries_ = first_delivery_ns_ = last_delivery_ns_ = slow_deliveries_ = 0;
        delivery_latency_ = {};
        std::vector<int> all;
        for_each_open([&](int fd) { all.push_back(fd); });
        slow_.clear();
        // Rounded, and one reader kept, as the Hawser driver does.
        auto n =
            std::min<std::size_t>(std::size_t(std::llround(double(all.size()) * slow_fraction)),
                                  all.empty() ? 0 : all.size() - 1);
        for (std::size_t i = 0; i < n; ++i) {  // spread: every (size / n)-th connection
            auto fd = all[i * all.size() / n];
            peers_[std::size_t(fd)].slow = true;
            slow_.emplace_back(fd, peers_[std::size_t(fd)].serial);
            watch(fd, 0);  // not read until the broadcast is over
        }
    }

    Json broadcast(bool trigger, unsigned count, unsigned size, const Progress& progress) override {
        std::size_t expected = std::size_t(count) * (open_ - slow_.size());
        auto start_ns = now_ns();
        if (trigger) {
            // Raw servers are not a cluster: each endpoint is asked on one of its connections.
            std::vector<bool> asked(targets_.size());
            for_each_open([&](int fd) {
                auto& p = peers_[std::size_t(fd)];
                if (asked[p.endpoint]) return;
                asked[p.endpoint] = true;
                std::string frame;
                raw::append_frame(frame, raw::trigger,
                                  std::to_string(count) + " " + std::to_string(size));
                write_all(fd, frame);
            });
        }
        auto deadline = Clock::now() + setup_.timeout;
        poll_while([&] { return deliveries_ < expected && Clock::now() < deadline; }, progress,
                   "broadcast");
        auto out = figures("broadcast");
        if (!slow_.empty()) {
            out["slow"] = slow_.size();
            out["slow_deliveries"] = slow_deliveries_;  // none: not read
            slow_deliveries_ = 0;
            catch_up(count, out, progress);
        }
        out["start_ns"] = start_ns;
        out["expected"] = expected;
        out["deliveries"] = deliveries_;
        out["first_ns"] = first_delivery_ns_;
        out["end_ns"] = last_delivery_ns_;
        out["latency"] = delivery_latency_.to_json();
        return out;
    }

    Json churn(double rate, std::chrono::milliseconds duration, const Progress& progress) override {
        reset();
        auto start = Clock::now();
        auto start_ns = now_ns();
        std::size_t opened = 0;
        for (std::size_t i = 0;; ++i) {
            auto at = start + std::chrono::nanoseconds(std::int64_t(double(i) * 1e9 / rate));
            if (at >= start + duration) break;
            poll_until(at, progress, "churn");
            while (!order_.empty()) {  // the oldest still open goes
                auto [fd, serial] = order_.front();
                order_.pop_front();
                auto& p = peers_[std::size_t(fd)];
                if (p.state != Peer::open || p.serial != serial) continue;  // gone already
                close_fd(fd, false);
                break;
            }
            open_one(i % targets_.size());
            ++opened;
        }
        poll_while([&] { return ok_ + failed_ < opened; }, progress, "churn");
        auto out = figures("churn");
        out["start_ns"] = start_ns;
        return out;
    }

    std::size_t open_count() const override { return open_; }

  private:
    void reset() {
        ok_ = failed_ = 0;
        errors_.clear();
        latency_ = {};
        last_ns_ = 0;
    }

    Json figures(const char* phase) const {
        return {{"phase", phase},
                {"ok", ok_},
                {"failed", failed_},
                {"errors", errors_},
                {"open", open_},
                {"end_ns", last_ns_},
                {"latency", latency_.to_json()}};
    }

    void done(bool ok, std::uint64_t t0_us, const std::string& error = {}) {
        if (ok) {
            ++ok_;
            latency_.record(now_us() - t0_us);
        } else {
            ++failed_;
            ++errors_[error];
        }
        last_ns_ = now_ns();
    }

    Peer& peer(int fd) {
        if (std::size_t(fd) >= peers_.size()) peers_.resize(std::size_t(fd) + 1);
        return peers_[std::size_t(fd)];
    }

    // How many sockets are in `state`, per endpoint.
    std::vector<std::size_t> per_endpoint(Peer::State state) const {
        std::vector<std::size_t> n(targets_.size());
        for (const auto& p : peers_)
            if (p.state == state) ++n[p.endpoint];
        return n;
    }

    template <class F>
    void for_each_open(F&& f) {
        for (std::size_t fd = 0; fd < peers_.size(); ++fd)
            if (peers_[fd].state == Peer::open) f(int(fd));
    }

    void open_one(std::size_t endpoint) {
        auto t0 = now_us();
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return done(false, t0, std::string("socket: ") + std::strerror(errno));
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (source_.s_addr) {
            ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr = source_;
            if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                ::close(fd);
                return done(false, t0, std::string("bind: ") + std::strerror(errno));
            }
        }
        auto& target = targets_[endpoint];
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0 &&
            errno != EINPROGRESS) {
            ::close(fd);
            return done(false, t0, std::string("connect: ") + std::strerror(errno));
        }
        auto& p = peer(fd);
        p.state = Peer::connecting;
        p.endpoint = std::uint8_t(endpoint);
        p.sent_us.assign(1, t0);
        ++opening_;
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }

    // The slow sockets are read again until each has its `count` messages (or closed), nothing
    // more came for 2 s, or the timeout, so that the next phase starts clean.
    void catch_up(unsigned count, Json& out, const Progress& progress) {
        auto open_slow = [&] {
            std::size_t n = 0;
            for (auto [fd, serial] : slow_) {
                auto& p = peers_[std::size_t(fd)];
                n += p.state == Peer::open && p.serial == serial;
            }
            return n;
        };
        for (auto [fd, serial] : slow_) {
            auto& p = peers_[std::size_t(fd)];
            if (p.state == Peer::open && p.serial == serial) watch(fd, EPOLLIN);
        }
        auto deadline = Clock::now() + setup_.timeout;
        auto last_change = Clock::now();
        std::uint64_t seen = 0;
        poll_while(
            [&] {
                if (slow_deliveries_ != seen) {
                    seen = slow_deliveries_;
                    last_change = Clock::now();
                }
                return slow_deliveries_ < std::uint64_t(count) * open_slow() &&
                       Clock::now() < deadline &&
                       Clock::now() - last_change < std::chrono::seconds(2);
            },
            progress, "broadcast");
        out["slow_caught_up"] = slow_deliveries_;
        out["slow_closed"] = slow_.size() - open_slow();
        for (auto [fd, serial] : slow_) {
            auto& p = peers_[std::size_t(fd)];
            if (p.serial == serial) p.slow = false;
        }
        slow_.clear();
    }

    void watch(int fd, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
    }

    void close_fd(int fd, bool dropped) {
        auto& p = peers_[std::size_t(fd)];
        if (p.state == Peer::open) --open_;
        if (p.state == Peer::connecting) --opening_;
        if (p.state == Peer::open && !p.sent_us.empty()) {  // its calls fail
            in_flight_ -= p.sent_us.size();
            failed_ += p.sent_us.size();
            errors_["connection closed"] += p.sent_us.size();
        }
        if (dropped && p.state == Peer::open) {
            ++drops_;
            if (!first_drop_ns_) first_drop_ns_ = now_ns();
        }
        p = Peer{};
        ::close(fd);
    }

    bool write_all(int fd, const std::string& frame) {
        auto n = ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
        if (n == long(frame.size())) return true;
        // A baseline that never fills a socket: anything else is reported, not buffered.
        ++errors_[n < 0 ? std::string("write: ") + std::strerror(errno) : "write: short"];
        return false;
    }

    // `count` pings in one write.
    std::size_t send_pings(int fd, std::size_t count = 1) {
        std::string frames;
        for (std::size_t i = 0; i < count; ++i)
            raw::append_frame(frames, raw::ping, std::string_view("01234567", 8));
        if (count == 0 || !write_all(fd, frames)) return 0;
        auto t = now_us();
        for (std::size_t i = 0; i < count; ++i) peers_[std::size_t(fd)].sent_us.push_back(t);
        in_flight_ += count;
        return count;
    }

    void on_event(int fd, std::uint32_t events) {
        auto& p = peers_[std::size_t(fd)];
        if (p.state == Peer::connecting) {
            if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            auto t0 = p.sent_us.front();
            p.sent_us.clear();
            if (err != 0) {
                close_fd(fd, false);
                return done(false, t0, std::string("connect: ") + std::strerror(err));
            }
            --opening_;
            ++open_;
            p.state = Peer::open;
            p.serial = ++serial_;
            order_.emplace_back(fd, p.serial);
            watch(fd, EPOLLIN);
            return done(true, t0);
        }
        char buf[64 << 10];
        for (;;) {
            auto n = ::read(fd, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return close_fd(fd, true);
            if (n < 0) break;
            p.in.append(buf, std::size_t(n));
        }
        std::size_t replies = 0;
        auto used = raw::parse_frames(p.in, [&](raw::Type type, std::string_view payload) {
            if (type == raw::pong) ++replies;
            if (type == raw::message) on_message(payload, p.slow);
        });
        if (used < 0) return close_fd(fd, true);
        p.in.erase(0, std::size_t(used));
        if (p.in.empty()) std::string().swap(p.in);
        std::size_t answered = 0;
        for (; answered < replies && !p.sent_us.empty(); ++answered) {
            done(true, p.sent_us.front());
            p.sent_us.pop_front();
            --in_flight_;
        }
        // The next calls of a call phase go out together, as replies that arrive together
        // do in Hawser (one write per turn of the loop).
        if (chaining_ && Clock::now() < calls_until_) send_pings(fd, answered);
    }

    void on_message(std::string_view text, bool slow) {
        if (slow) {
            ++slow_deliveries_;
            return;
        }
        auto t = now_ns();
        auto space = text.find(' ');
        std::uint64_t sent = 0;
        if (space != std::string_view::npos)
            std::from_chars(text.data() + space + 1, text.data() + text.size(), sent);
        if (sent && t > sent) delivery_latency_.record((t - sent) / 1000);
        if (!first_delivery_ns_) first_delivery_ns_ = t;
        last_delivery_ns_ = t;
        ++deliveries_;
    }

    void poll_once(int timeout_ms) {
        epoll_event events[1024];
        int n = ::epoll_wait(ep_, events, 1024, timeout_ms);
        for (int i = 0; i < n; ++i) on_event(events[i].data.fd, events[i].events);
    }

    void report(const Progress& progress, const char* phase) {
        if (Clock::now() < next_report_) return;
        next_report_ = Clock::now() + tick;
        progress(figures(phase));
    }

    void poll_until(Clock::time_point at, const Progress& progress, const char* phase) {
        do {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at - Clock::now());
            poll_once(int(std::clamp<long long>(left.count(), 0, 250)));
            report(progress, phase);
        } while (Clock::now() < at);
    }

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
    std::vector<std::size_t> storm_targets_;  // per endpoint: open when the storm was armed
    std::uint64_t storm_expected_drops_ = 0;  // of those, on the servers to be killed
    std::uint64_t storm_drops_ = 0;           // drops_ then
    std::map<std::string, std::uint64_t> errors_;
    Latency latency_;
    std::uint64_t deliveries_ = 0, first_delivery_ns_ = 0, last_delivery_ns_ = 0;
    std::uint64_t slow_deliveries_ = 0;
    Latency delivery_latency_;
    Clock::time_point calls_until_, next_report_;
    bool chaining_ = false;
};

}  // namespace

std::unique_ptr<Driver> make_raw_driver(const DriverSetup& setup) {
    return std::make_unique<RawDriver>(setup);
}

}  // namespace hawser::bench
