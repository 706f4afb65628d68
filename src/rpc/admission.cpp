#include "rpc/admission.hpp"

namespace hawser::detail {

namespace {
constexpr std::size_t max_tracked_addresses = 100000;
}

std::array<std::uint8_t, 16> Admission::key(const asio::ip::address& a) {
    if (a.is_v4()) return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
    return a.to_v6().to_bytes();
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

bool Cidr::contains(const std::array<std::uint8_t, 16>& a) const {
    int full = prefix / 8, rest = prefix % 8;
    for (int i = 0; i < full; ++i)
        if (a[i] != net[i]) return false;
    if (rest == 0) return true;
    std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

Result<void> Admission::configure(const AdmissionOptions& options) {
    std::vector<Cidr> allow, deny;
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
    std::lock_guard lock(mu_);
    options_ = options;
    allow_ = std::move(allow);
    deny_ = std::move(deny);
    return {};
}

CloseReason Admission::admit(const asio::ip::address& address, Clock::time_point now) {
    auto k = key(address);
    std::lock_guard lock(mu_);
    for (const auto& c : deny_)
        if (c.contains(k)) return CloseReason::denied;
    if (!allow_.empty()) {
        bool allowed = false;
        for (const auto& c : allow_) allowed = allowed || c.contains(k);
        if (!allowed) return CloseReason::denied;
    }
    if (handshakes_ >= options_.max_handshakes) return CloseReason::too_many_handshakes;
    if (addresses_.size() >= max_tracked_addresses) {
        // Forget addresses with nothing in progress rather than grow without bound.
        std::erase_if(addresses_, [](const auto& e) { return e.second.handshakes == 0; });
    }
    auto [it, fresh] = addresses_.try_emplace(k);
    auto& p = it->second;
    if (fresh) p.tokens = options_.connection_burst_per_ip, p.refilled = now;
    if (p.handshakes >= options_.max_handshakes_per_ip) return CloseReason::too_many_handshakes;
    if (options_.connections_per_second_per_ip > 0) {
        double elapsed = std::chrono::duration<double>(now - p.refilled).count();
        p.tokens = std::min(options_.connection_burst_per_ip,
                            p.tokens + elapsed * options_.connections_per_second_per_ip);
        p.refilled = now;
        if (p.tokens < 1) return CloseReason::rate_limited;
        p.tokens -= 1;
    }
    ++p.handshakes;
    ++handshakes_;
    return CloseReason::none;
}

void Admission::release(const asio::ip::address& address) {
    std::lock_guard lock(mu_);
    auto it = addresses_.find(key(address));
    if (it == addresses_.end() || it->second.handshakes == 0) return;
    --it->second.handshakes;
    --handshakes_;
    if (it->second.handshakes == 0 && options_.connections_per_second_per_ip <= 0)
        addresses_.erase(it);
}

}  // namespace hawser::detail
