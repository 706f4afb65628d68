// The raw baseline's server (raw_server.cpp): runs until killed.
#pragma once

#include <cstdint>
#include <string>

namespace hawser::bench {

// `sealed`: the variant with per-connection keys (raw_seal.hpp).
int run_raw_server(const std::string& host, std::uint16_t port, bool sealed);

}  // namespace hawser::bench
