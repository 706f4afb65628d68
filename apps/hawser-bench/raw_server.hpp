// The raw baseline's server (raw_server.cpp): runs until killed.
#pragma once

#include <cstdint>
#include <string>

namespace hawser::bench {

int run_raw_server(const std::string& host, std::uint16_t port);

}  // namespace hawser::bench
