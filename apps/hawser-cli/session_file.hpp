// The cloud session hawser-cli keeps between runs: the endpoint it logged in to, that server's
// public key and the token, one per line, in a file of mode 0600 (missing directories made
// 0700). A later run against the same endpoint and key resumes the session with the token
// instead of asking for the password again; the token is never sent to another server.
#pragma once

#include <optional>
#include <string>

#include "hawser/error.hpp"

namespace hawser::app {

struct SavedSession {
    std::string endpoint, server_key, token;
};

// ${XDG_CONFIG_HOME:-$HOME/.config}/hawser/session
std::string default_session_path();
// nullopt when there is no file; an error for a file others can read or that is malformed.
Result<std::optional<SavedSession>> read_session(const std::string& path);
Result<void> write_session(const std::string& path, const SavedSession& session);

}  // namespace hawser::app
