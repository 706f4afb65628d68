// hawser-server configuration: a TOML file (all keys optional; the embedded defaults are
// ServerOptions'), overridden by command-line flags. Unknown keys are errors, so typos show.
#pragma once

#include <string>

#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser::app {

Result<ServerOptions> load_config(const std::string& path, ServerOptions base = {});
Result<ProtocolMark> parse_mark(const std::string& head, const std::string& tail);

}  // namespace hawser::app
