// Admission: who may connect. Allow/deny lists of CIDR ranges, a token-bucket rate per source
// address, a cap on open connections per source address, and caps on handshakes in progress
// (whole process and per address). A source address is an IPv4 /32 or an IPv6 /64: one host or
// one site's /64 is one source however many addresses it uses.
// Thread safety: all methods lock; called by listeners and by connections on any loop.
#pragma once

#include <array>
#include <asio/ip/address.hpp>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser::detail {

using AddressKey = std::array<std::uint8_t, 16>;  // IPv4 as IPv4-mapped IPv6

struct Cidr {
    AddressKey net{};
    int prefix = 0;  // in IPv6 bits
    static Result<Cidr> parse(const std::string& text);
    bool contains(const AddressKey& address) const;
};

class Admission {
  public:
    using Clock = std::chrono::steady_clock;
    Result<void> configure(const AdmissionOptions& options);
    // The same while connections are open: keeps every source's counts and the shared entry's,
    // and the table size (max_tracked_addresses) and handshake_timeout it started with.
    Result<void> update(AdmissionOptions options);

    // CloseReason::none admits: the connection counts against its source until closed(), and
    // holds a handshake slot until handshake_done() or closed(). `overflow` tells whether it was
    // counted in the shared entry of a full table; the caller hands it back to the other two,
    // so they debit what admit() charged even if the source is tracked by then.
    CloseReason admit(const asio::ip::address& address, Clock::time_point now,
                      bool* overflow = nullptr);
    void handshake_done(const asio::ip::address& address, bool overflow = false);
    void closed(const asio::ip::address& address, bool was_handshaking, bool overflow = false);

    // The full address, for allow/deny lists.
    static AddressKey key(const asio::ip::address& address);
    // The source a connection counts against: IPv4 /32, IPv6 /64.
    static AddressKey source(const asio::ip::address& address);

    std::size_t tracked() const;
    std::size_t handshakes() const;  // in progress, whole process

  private:
    struct PerSource {
        std::uint32_t connections = 0;  // admitted and not yet closed (handshaking included)
        std::uint32_t handshakes = 0;
        double tokens = 0;
        Clock::time_point refilled{};
    };
    struct KeyHash {
        std::size_t operator()(const AddressKey& k) const noexcept;
    };
    PerSource* find_or_track(const AddressKey& source, Clock::time_point now);
    PerSource* find(const AddressKey& source);
    PerSource& charged(const AddressKey& source, bool overflow);
    void refill(PerSource& p, Clock::time_point now) const;
    void forget_if_idle(const AddressKey& source, PerSource& p);

    mutable std::mutex mu_;
    AdmissionOptions options_;
    std::vector<Cidr> allow_, deny_;
    std::unordered_map<AddressKey, PerSource, KeyHash> sources_;
    // Sources that arrive while the table is full share this entry: limits still apply to
    // them as a group, and nobody already tracked is forgotten.
    PerSource overflow_;
    Clock::time_point last_eviction_{};
    std::size_t handshakes_ = 0;
};

}  // namespace hawser::detail
