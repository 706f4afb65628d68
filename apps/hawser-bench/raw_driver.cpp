// The raw driver (raw_driver.hpp): its sockets, the event loop, and the phases that are one
// loop each: connect, hold, ping, call, soak and churn. Heartbeats are in raw_heartbeats.cpp.
#include "raw_driver.hpp"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clock.hpp"
#include "raw_wire.hpp"

namespace hawser::bench {

RawDriver::RawDriver(const DriverSetup& setup)
    : setup_(setup), ep_(::epoll_create1(EPOLL_CLOEXEC)) {
    for (const auto& e : setup.endpoints) {
        auto colon = e.rfind(':');
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(std::uint16_t(std::stoul(e.substr(colon + 1))));
        ::inet_pton(AF_INET, e.substr(0, colon).c_str(), &a.sin_addr);
        targets_.push_back(a);
    }
    if (!setup.source_address.empty()) ::inet_pton(AF_INET, setup.source_address.c_str(), &source_);
}

RawDriver::~RawDriver() {
    for (std::size_t fd = 0; fd < peers_.size(); ++fd)
        if (peers_[fd].state != Peer::unused) ::close(int(fd));
    ::close(ep_);
}

Json RawDriver::connect(std::size_t count, double rate, const Progress& progress) {
    reset();
    auto start = Clock::now();
    auto start_ns = now_ns();
    for (std::size_t i = 0; i < count; ++i) {
        auto at = rate > 0 ? start + std::chrono::nanoseconds(std::int64_t(double(i) * 1e9 / rate))
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

Json RawDriver::hold(std::chrono::milliseconds duration, const Progress& progress) {
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

Json RawDriver::ping(const Progress& progress) {
    reset();
    auto start_ns = now_ns();
    std::size_t sent = 0;
    for_each_open([&](int fd) { sent += send_pings(fd); });
    poll_while([&] { return ok_ + failed_ < sent; }, progress, "ping");
    auto out = figures("ping");
    out["start_ns"] = start_ns;
    return out;
}

Json RawDriver::call(unsigned in_flight, std::chrono::milliseconds duration,
                     const Progress& progress) {
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

Json RawDriver::soak(double rate, std::chrono::milliseconds duration, const Progress& progress) {
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

Json RawDriver::churn(double rate, std::chrono::milliseconds duration, const Progress& progress) {
    reset();
    auto start = Clock::now();
    auto start_ns = now_ns();
    std::size_t opened = 0;
    for (std::size_t i = 0;; ++i) {
        auto at = start + std::chrono::nanoseconds(std::int64_t(double(i) * 1e9 / rate));
        if (at >= start + duration) break;
        poll_until(at, progress, "churn");
        close_oldest();
        open_one(i % targets_.size());
        ++opened;
    }
    poll_while([&] { return ok_ + failed_ < opened; }, progress, "churn");
    auto out = figures("churn");
    out["start_ns"] = start_ns;
    return out;
}

std::optional<std::pair<std::size_t, std::int64_t>> RawDriver::close_oldest() {
    for (auto n = order_.size(); n > 0; --n) {
        auto [fd, serial] = order_.front();
        order_.pop_front();
        auto& p = peers_[std::size_t(fd)];
        if (p.state != Peer::open || p.serial != serial) continue;  // gone already
        if (p.publisher) {
            order_.emplace_back(fd, serial);
            continue;
        }
        std::pair<std::size_t, std::int64_t> victim{p.endpoint, p.channel};
        close_fd(fd, false);
        return victim;
    }
    return std::nullopt;
}

void RawDriver::reset() {
    ok_ = failed_ = 0;
    heartbeats_ = heartbeats_answered_ = 0;
    errors_.clear();
    latency_ = {};
    last_ns_ = 0;
}

Json RawDriver::figures(const char* phase) const {
    return {
        {"phase", phase},
        {"ok", ok_},
        {"failed", failed_},
        {"errors", errors_},
        {"open", open_},
        {"end_ns", last_ns_},
        {"heartbeats", heartbeats_},
        {"heartbeats_answered", heartbeats_answered_},
        // A phase that delivers shows its deliveries' latency; the others their calls'.
        {"latency", (std::string_view(phase) == "broadcast" || std::string_view(phase) == "channels"
                         ? deliveries_.latency
                         : latency_)
                        .to_json()}};
}

void RawDriver::done(bool ok, std::uint64_t t0_us, const std::string& error, std::uint64_t end_ns) {
    if (ok) {
        ++ok_;
        latency_.record(end_ns / 1000 - t0_us);
    } else {
        ++failed_;
        ++errors_[error];
    }
    last_ns_ = end_ns;
}

RawDriver::Peer& RawDriver::peer(int fd) {
    if (std::size_t(fd) >= peers_.size()) peers_.resize(std::size_t(fd) + 1);
    return peers_[std::size_t(fd)];
}

std::vector<std::size_t> RawDriver::per_endpoint(Peer::State state) const {
    std::vector<std::size_t> n(targets_.size());
    for (const auto& p : peers_)
        if (p.state == state) ++n[p.endpoint];
    return n;
}

void RawDriver::open_one(std::size_t endpoint, std::int64_t channel) {
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
    p.channel = channel;
    p.sent_us.assign(1, t0);
    ++opening_;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
}

void RawDriver::watch(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
}

void RawDriver::close_fd(int fd, bool dropped) {
    auto& p = peers_[std::size_t(fd)];
    if (p.state == Peer::open) --open_;
    if (p.state == Peer::connecting) --opening_;
    if (p.state == Peer::open && !p.sent_us.empty()) {  // its calls fail
        in_flight_ -= p.sent_us.size();
        failed_ += p.sent_us.size();
        errors_["connection closed"] += p.sent_us.size();
    }
    if (p.publisher) publication_answered(fd, true);
    if (dropped && p.state == Peer::open) {
        ++drops_;
        if (!first_drop_ns_) first_drop_ns_ = now_ns();
    }
    p = Peer{};
    ::close(fd);
}

bool RawDriver::write_all(int fd, const std::string& frames) {
    auto& p = peers_[std::size_t(fd)];
    std::string sealed;
    if (p.seal) p.seal->seal(frames, sealed);
    const auto& bytes = p.seal ? sealed : frames;
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n == long(bytes.size())) return true;
    // A baseline that never fills a socket: anything else is reported, not buffered.
    ++errors_[n < 0 ? std::string("write: ") + std::strerror(errno) : "write: short"];
    return false;
}

std::size_t RawDriver::send_pings(int fd, std::size_t count) {
    std::string frames;
    for (std::size_t i = 0; i < count; ++i)
        raw::append_frame(frames, raw::ping, std::string_view("01234567", 8));
    if (count == 0 || !write_all(fd, frames)) return 0;
    auto t = now_us();
    for (std::size_t i = 0; i < count; ++i) peers_[std::size_t(fd)].sent_us.push_back(t);
    in_flight_ += count;
    return count;
}

void RawDriver::on_event(int fd, std::uint32_t events) {
    auto& p = peers_[std::size_t(fd)];
    if (p.state == Peer::connecting) {
        if (p.seal) return on_hello(fd);
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        auto t0 = p.sent_us.front();
        if (err != 0) {
            close_fd(fd, false);
            return done(false, t0, std::string("connect: ") + std::strerror(err));
        }
        if (!setup_.sealed) return opened(fd, t0);
        p.seal = std::make_unique<raw::Sealer>(raw::Sealer::client());
        std::string hello;
        p.seal->append_hello(hello);
        if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != long(hello.size())) {
            std::string error = std::string("hello: ") + std::strerror(errno);
            close_fd(fd, false);
            return done(false, t0, error);
        }
        watch(fd, EPOLLIN);
        return;
    }
    char buf[64 << 10];
    for (;;) {
        auto n = ::read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return close_fd(fd, true);
        if (n < 0) break;
        p.in.append(buf, std::size_t(n));
        p.heard_ns = poll_ns_;
    }
    consume(fd);
}

void RawDriver::consume(int fd) {
    auto& p = peers_[std::size_t(fd)];
    if (p.seal) {
        auto used = p.seal->open(p.in, p.plain);
        if (used < 0) return close_fd(fd, true);
        p.in.erase(0, std::size_t(used));
    }
    auto& in = p.seal ? p.plain : p.in;
    std::size_t replies = 0;
    auto used = raw::parse_frames(in, [&](raw::Type type, std::string_view payload) {
        if (type == raw::pong) ++replies;
        if (type == raw::message) on_message(payload, p.slow);
        if (type == raw::heartbeat) ++heartbeats_answered_;
    });
    if (used < 0) return close_fd(fd, true);
    in.erase(0, std::size_t(used));
    if (in.empty()) std::string().swap(in);
    std::size_t answered = 0;
    auto t = replies ? now_ns() : 0;  // one clock read for all the replies of one read
    for (; answered < replies && !p.sent_us.empty(); ++answered) {
        done(true, p.sent_us.front(), {}, t);
        p.sent_us.pop_front();
        --in_flight_;
        if (p.publisher) publication_answered(fd);
    }
    // The next calls of a call phase go out together, as replies that arrive together
    // do in Hawser (one write per turn of the loop).
    if (chaining_ && Clock::now() < calls_until_) send_pings(fd, answered);
}

void RawDriver::opened(int fd, std::uint64_t t0_us) {
    auto& p = peers_[std::size_t(fd)];
    p.sent_us.clear();
    --opening_;
    ++open_;
    p.state = Peer::open;
    p.serial = ++serial_;
    order_.emplace_back(fd, p.serial);
    schedule_heartbeats(fd);
    watch(fd, EPOLLIN);
    if (p.channel >= 0) send_subscribes(fd);  // a replacement in the channels phase
    done(true, t0_us);
}

void RawDriver::on_hello(int fd) {
    auto& p = peers_[std::size_t(fd)];
    auto t0 = p.sent_us.front();
    char buf[4096];
    for (;;) {
        auto n = ::read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            std::string error =
                n == 0 ? "hello: closed" : std::string("hello: ") + std::strerror(errno);
            close_fd(fd, false);
            return done(false, t0, error);
        }
        if (n < 0) break;
        p.in.append(buf, std::size_t(n));
    }
    auto hello = raw::Sealer::hello_at(p.in);
    if (hello && hello->empty()) return;  // not whole yet
    if (!hello || !p.seal->finish(*hello)) {
        close_fd(fd, false);
        return done(false, t0, "hello: not a key");
    }
    p.in.erase(0, raw::Sealer::hello_frame_bytes);
    opened(fd, t0);
    // Records that came with the hello (a broadcast may reach it as soon as the server has
    // answered): epoll has nothing new to tell about them.
    if (!p.in.empty() && peers_[std::size_t(fd)].state == Peer::open) consume(fd);
}

void RawDriver::on_message(std::string_view text, bool slow) {
    if (slow) {
        ++slow_deliveries_;
        return;
    }
    deliveries_.record(text, now_ns());
}

void RawDriver::poll_once(int timeout_ms) {
    epoll_event events[1024];
    int n = ::epoll_wait(ep_, events, 1024, timeout_ms);
    bool beating = setup_.heartbeat.count() > 0;
    if (beating) poll_ns_ = now_ns();  // one clock read a poll: when its reads were heard
    for (int i = 0; i < n; ++i) on_event(events[i].data.fd, events[i].events);
    if (beating) send_heartbeats(poll_ns_);
}

void RawDriver::report(const Progress& progress, const char* phase) {
    if (Clock::now() < next_report_) return;
    next_report_ = Clock::now() + tick;
    progress(figures(phase));
}

void RawDriver::poll_until(Clock::time_point at, const Progress& progress, const char* phase) {
    do {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at - Clock::now());
        poll_once(int(std::clamp<long long>(left.count(), 0, 250)));
        report(progress, phase);
    } while (Clock::now() < at);
}

std::unique_ptr<Driver> make_raw_driver(const DriverSetup& setup) {
    return std::make_unique<RawDriver>(setup);
}

}  // namespace hawser::bench
