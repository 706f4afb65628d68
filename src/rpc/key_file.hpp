// The server's static key pair on disk: <data_dir>/server.key, the private key as 64 hex
// digits, mode 0600, created on first start. A key file others can read is refused, as ssh does.
#pragma once

#include <string>

#include "hawser/error.hpp"
#include "wire/noise.hpp"

namespace hawser::detail {

Result<noise::KeyPair> load_or_create_key(const std::string& data_dir);

}  // namespace hawser::detail
