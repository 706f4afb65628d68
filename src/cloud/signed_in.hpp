// SignedIn: what a connection is logged in as, kept as its service context
// (Connection::service_context) and read by the login gate on every message. A session that
// expires while its connection is open stops passing the gate at that moment: the client
// logs in again (its token has expired too).
// Thread affinity: the connection's IO thread.
#pragma once

#include <cstdint>
#include <string>

#include "cloud/unix_ms.hpp"

namespace hawser::cloud::detail {

struct SignedIn {
    std::uint64_t user = 0, session = 0;
    std::string name;
    std::int64_t expires_ms = 0;  // the session's expiry (Unix ms)
    bool pending = false;         // a login or resume is under way

    // Logged in, on a session that has not expired: what the gate lets through.
    bool active() const noexcept { return user != 0 && unix_ms() < expires_ms; }
};

}  // namespace hawser::cloud::detail
