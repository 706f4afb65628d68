// The source a login counts against for rate limits: the client's IPv4 address, or the /64 of
// its IPv6 address (one host or one site, however many addresses it uses), as Admission counts
// connections. An IPv4-mapped IPv6 address is its IPv4 address.
#pragma once

#include <string>
#include <string_view>

#include "hawser/connection.hpp"

namespace hawser::cloud::detail {

// From "ip:port" or "[ip]:port" (Connection::remote_address); the text itself if it is neither.
std::string client_source(std::string_view remote_address);
inline std::string client_source(const Connection& connection) {
    return client_source(connection.remote_address());
}

}  // namespace hawser::cloud::detail
