#include "cloud/client_source.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace hawser::cloud::detail {

std::string client_source(std::string_view remote_address) {
    if (remote_address.empty() || remote_address.front() != '[') {
        auto colon = remote_address.rfind(':');
        return std::string(remote_address.substr(0, colon));
    }
    auto close = remote_address.find(']');
    if (close == std::string_view::npos) return std::string(remote_address);
    std::string host(remote_address.substr(1, close - 1));
    in6_addr a{};
    if (::inet_pton(AF_INET6, host.c_str(), &a) != 1) return host;
    char text[INET6_ADDRSTRLEN];
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
        in_addr v4{};
        std::memcpy(&v4, a.s6_addr + 12, 4);
        return ::inet_ntop(AF_INET, &v4, text, sizeof text) ? std::string(text) : host;
    }
    std::memset(a.s6_addr + 8, 0, 8);
    if (!::inet_ntop(AF_INET6, &a, text, sizeof text)) return host;
    return std::string(text) + "/64";
}

}  // namespace hawser::cloud::detail
