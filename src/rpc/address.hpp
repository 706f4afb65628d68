// "host:port" and "[v6]:port" strings, as written in options and configuration files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hawser/error.hpp"

namespace hawser::detail {

struct HostPort {
    std::string host;  // without brackets
    std::string port;
};

inline Result<HostPort> parse_host_port(std::string_view s) {
    auto bad = [&](const char* why) {
        return Error{Errc::invalid_argument, "address '" + std::string(s) + "': " + why};
    };
    HostPort hp;
    std::string_view rest;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) return bad("missing ']'");
        hp.host = std::string(s.substr(1, close - 1));
        rest = s.substr(close + 1);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return bad("expected host:port");
        if (s.find(':') != colon) return bad("IPv6 addresses go in brackets: [::1]:7100");
        hp.host = std::string(s.substr(0, colon));
        rest = s.substr(colon);
    }
    if (rest.size() < 2 || rest.front() != ':') return bad("expected :port after the host");
    hp.port = std::string(rest.substr(1));
    if (hp.port.size() > 5 || hp.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(hp.port) > 65535)
        return bad("port must be a number from 0 to 65535");
    if (hp.host.empty()) return bad("empty host");
    return hp;
}

// "host:port", with an IPv6 address in brackets: the form parse_host_port reads.
inline std::string host_port_text(std::string_view host, std::uint16_t port) {
    auto h = host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]"
                                                      : std::string(host);
    return h + ":" + std::to_string(port);
}

}  // namespace hawser::detail
