// Admission: who may start a handshake. Allow/deny lists of CIDR ranges, a token-bucket rate
// per source address, and caps on handshakes in progress (whole process and per address).
// Thread safety: all methods lock; called by listeners and by connections ending a handshake.
#pragma once

#include <array>
#include <asio/ip/address.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser::detail {

struct Cidr {
    std::array<std::uint8_t, 16> net{};  // IPv4 as IPv4-mapped IPv6
    int prefix = 0;                      // in IPv6 bits
    static Result<Cidr> parse(const std::string& text);
    bool contains(const std::array<std::uint8_t, 16>& address) const;
};

class Admission {
  public:
    using Clock = std::chrono::steady_clock;
    Result<void> configure(const AdmissionOptions& options);

    // CloseReason::none admits and reserves a handshake slot, to be given back by release().
    CloseReason admit(const asio::ip::address& address, Clock::time_point now);
    void release(const asio::ip::address& address);

    static std::array<std::uint8_t, 16> key(const asio::ip::address& address);

  private:
    struct PerAddress {
        std::size_t handshakes = 0;
        double tokens = 0;
        Clock::time_point refilled{};
    };
    std::mutex mu_;
    AdmissionOptions options_;
    std::vector<Cidr> allow_, deny_;
    std::map<std::array<std::uint8_t, 16>, PerAddress> addresses_;
    std::size_t handshakes_ = 0;
};

}  // namespace hawser::detail
