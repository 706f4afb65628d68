// SignedIn: what a connection is logged in as, kept as its service context
// (Connection::service_context) and read by the login gate on every message.
// Thread affinity: the connection's IO thread.
#pragma once

#include <cstdint>
#include <string>

namespace hawser::cloud::detail {

struct SignedIn {
    std::uint64_t user = 0, session = 0;
    std::string name;
    bool pending = false;  // a login or resume is under way
};

}  // namespace hawser::cloud::detail
