// Admission (see admission.hpp): CIDR lists, token buckets and caps per source address.
// Thread safety: every method takes the one mutex; called by listeners and by connections on
// any loop.
#include "rpc/admission.hpp"

#include <algorithm>
#include <cstring>

namespace hawser::detail {

AddressKey Admission::key(const asio::ip::address& a) {
    if (a.is_v4()) return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
    return a.to_v6().to_bytes();
}

AddressKey Admission::source(const asio::ip::address& a) {
    auto k = key(a);
    bool v4 = a.is_v4() || a.to_v6().is_v4_mapped();
    if (!v4) std::fill(k.begin() + 8, k.end(), 0);  // one IPv6 /64 is one source
    return k;
}

std::size_t Admission::KeyHash::operator()(const AddressKey& k) const noexcept {
    std::uint64_t a, b;
    std::memcpy(&a, k.data(), 8);
    std::memcpy(&b, k.data() + 8, 8);
    return std::hash<std::uint64_t>{}(a * 0x9e3779b97f4a7c15ull ^ b);
}

Result<Cidr> Cidr::parse(const std::string& text) {
    auto slash = text.find('/');
    std::error_code ec;
    auto addr = asio::ip::make_address(text.substr(0, slash), ec);
    if (ec) return Error{Errc::invalid_argument, "CIDR '" + text + "': not an address"};
    int max_bits = addr.is_v4() ? 32 : 128;
    int bits = max_bits;
    if (slash != std::string::npos) {
        try {
            std::size_t used = 0;
            bits = std::stoi(text.substr(slash + 1), &used);
            if (used != text.size() - slash - 1) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            return Error{Errc::invalid_argument, "CIDR '" + text + "': bad prefix length"};
        }
        if (bits < 0 || bits > max_bits)
            return Error{Errc::invalid_argument, "CIDR '" + text + "': prefix out of range"};
    }
    Cidr c;
    c.net = Admission::key(addr);
    c.prefix = addr.is_v4() ? bits + 96 : bits;
    return c;
}

bool Cidr::contains(const AddressKey& a) const {
    int full = prefix / 8, rest = prefix % 8;
    for (int i = 0; i < full; ++i)
        if (a[i] != net[i]) return false;
    if (rest == 0) return true;
    std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

namespace {

// The lists and the rate of `options`, checked.
Result<void> parse_rules(const AdmissionOptions& options, std::vector<Cidr>& allow,
                         std::vector<Cidr>& deny) {
    for (const auto& t : options.allow) {
        auto c = Cidr::parse(t);
        if (!c) return c.error();
        allow.push_back(*c);
    }
    for (const auto& t : options.deny) {
        auto c = Cidr::parse(t);
        if (!c) return c.error();
        deny.push_back(*c);
    }
    // Written as !(x >= n) so that NaN fails too.
    if (!(options.connections_per_second_per_ip >= 0) || !(options.connection_burst_per_ip >= 1))
        return Error{Errc::invalid_argument,
                     "admission: the rate must be >= 0 and the burst >= 1 connection"};
    if (!(options.max_handshakes_per_second == 0 ||
          (options.max_handshakes_per_second >= 1 && options.max_handshakes_per_second <= 1e9)))
        return Error{Errc::invalid_argument,
                     "admission: max_handshakes_per_second must be 0 (no pace) or 1 to 1e9"};
    if (options.max_handshakes < 1 || options.max_handshakes_per_ip < 1)
        return Error{Errc::invalid_argument,
                     "admission: max_handshakes and max_handshakes_per_ip must be at least 1"};
    return {};
}

}  // namespace

Result<void> Admission::configure(const AdmissionOptions& options) {
    std::vector<Cidr> allow, deny;
    if (auto parsed = parse_rules(options, allow, deny); !parsed) return parsed;
    std::lock_guard lock(mu_);
    options_ = options;
    allow_ = std::move(allow);
    deny_ = std::move(deny);
    overflow_ = PerSource{};
    overflow_.tokens = options.connection_burst_per_ip;
    return {};
}

Result<void> Admission::update(AdmissionOptions options) {
    {
        std::lock_guard lock(mu_);
        options.max_tracked_addresses = options_.max_tracked_addresses;
        options.handshake_timeout = options_.handshake_timeout;
    }
    std::vector<Cidr> allow, deny;
    if (auto parsed = parse_rules(options, allow, deny); !parsed) return parsed;
    std::lock_guard lock(mu_);
    options_ = options;
    allow_ = std::move(allow);
    deny_ = std::move(deny);
    // A smaller burst applies at once; tokens refill at the new rate (the time since a source's
    // last refill included: at most one burst's difference).
    auto burst = options.connection_burst_per_ip;
    for (auto& [key, source] : sources_) source.tokens = std::min(source.tokens, burst);
    overflow_.tokens = std::min(overflow_.tokens, burst);
    return {};
}

void Admission::refill(PerSource& p, Clock::time_point now) const {
    if (options_.connections_per_second_per_ip <= 0) return;
    double elapsed = std::chrono::duration<double>(now - p.refilled).count();
    p.tokens = std::min(options_.connection_burst_per_ip,
                        p.tokens + elapsed * options_.connections_per_second_per_ip);
    p.refilled = now;
}

Admission::PerSource* Admission::find(const AddressKey& source) {
    auto it = sources_.find(source);
    return it == sources_.end() ? nullptr : &it->second;
}

Admission::PerSource* Admission::find_or_track(const AddressKey& source, Clock::time_point now) {
    if (auto p = find(source)) return p;
    if (sources_.size() >= options_.max_tracked_addresses &&
        now - last_eviction_ >= std::chrono::seconds(1)) {
        // Forget only sources that carry no state: nothing open and a bucket that has refilled
        // (a new entry would be the same). At most one pass a second, so a flood of new sources
        // cannot make every accept walk the table.
        last_eviction_ = now;
        for (auto it = sources_.begin(); it != sources_.end();) {
            auto& p = it->second;
            refill(p, now);
            bool stateless = p.connections == 0 && (options_.connections_per_second_per_ip <= 0 ||
                                                    p.tokens >= options_.connection_burst_per_ip);
            it = stateless ? sources_.erase(it) : std::next(it);
        }
    }
    if (sources_.size() >= options_.max_tracked_addresses) return &overflow_;
    auto& p = sources_[source];
    p.tokens = options_.connection_burst_per_ip;
    p.refilled = now;
    return &p;
}

CloseReason Admission::admit(const asio::ip::address& address, Clock::time_point now,
                             bool* overflow) {
    auto k = key(address);
    std::lock_guard lock(mu_);
    for (const auto& c : deny_)
        if (c.contains(k)) return CloseReason::denied;
    if (!allow_.empty() &&
        std::none_of(allow_.begin(), allow_.end(), [&](const Cidr& c) { return c.contains(k); }))
        return CloseReason::denied;
    if (handshakes_ >= options_.max_handshakes) return CloseReason::too_many_handshakes;
    auto src = source(address);
    PerSource* p = find_or_track(src, now);
    auto refuse = [&](CloseReason r) {
        forget_if_idle(src, *p);
        return r;
    };
    if (options_.max_connections_per_address &&
        p->connections >= options_.max_connections_per_address)
        return refuse(CloseReason::too_many_per_address);
    if (p->handshakes >= options_.max_handshakes_per_ip)
        return refuse(CloseReason::too_many_handshakes);
    if (options_.connections_per_second_per_ip > 0) {
        refill(*p, now);
        if (p->tokens < 1) return CloseReason::rate_limited;  // kept: the empty bucket matters
        p->tokens -= 1;
    }
    ++p->connections;
    ++p->handshakes;
    ++handshakes_;
    if (overflow) *overflow = p == &overflow_;
    return CloseReason::none;
}

void Admission::forget_if_idle(const AddressKey& source, PerSource& p) {
    if (&p == &overflow_ || p.connections || options_.connections_per_second_per_ip > 0) return;
    sources_.erase(source);  // without a rate limit an idle entry holds nothing worth keeping
}

Admission::PerSource& Admission::charged(const AddressKey& source, bool overflow) {
    if (overflow) return overflow_;
    auto p = find(source);  // tracked while it has a connection: never evicted before closed()
    return p ? *p : overflow_;
}

void Admission::handshake_done(const asio::ip::address& address, bool overflow) {
    auto src = source(address);
    std::lock_guard lock(mu_);
    auto& p = charged(src, overflow);
    if (p.handshakes == 0) return;
    --p.handshakes;
    --handshakes_;
}

void Admission::closed(const asio::ip::address& address, bool was_handshaking, bool overflow) {
    auto src = source(address);
    std::lock_guard lock(mu_);
    auto& p = charged(src, overflow);
    if (was_handshaking && p.handshakes > 0) {
        --p.handshakes;
        --handshakes_;
    }
    if (p.connections > 0) --p.connections;
    forget_if_idle(src, p);
}

std::size_t Admission::handshakes() const {
    std::lock_guard lock(mu_);
    return handshakes_;
}

std::size_t Admission::tracked() const {
    std::lock_guard lock(mu_);
    return sources_.size();
}

}  // namespace hawser::detail
