// Static key pairs on disk: the private key as 64 hex digits and a newline, in a file of mode
// 0600 owned by this user, created on first use (the server's <data_dir>/server.key, a client's
// client_key_file). Missing directories are created with mode 0700.
// A new key is written to a temporary file in the same directory, synced, then linked to its
// name, which fails if the name exists: a crash never leaves a partial key under the name, and
// two processes creating at once both end up with the winner's key. A symbolic link, a file of
// another user, or a file others can read is refused, as ssh does.
// Blocking file IO: call it at start-up, on the caller's thread.
#pragma once

#include <optional>
#include <string>

#include "hawser/error.hpp"
#include "hawser/options.hpp"
#include "wire/noise.hpp"

namespace hawser::detail {

// 32 secret bytes in `path` (the same format and checks), created there if missing: a key pair's
// private half, or a symmetric key (the cloud's token key).
Result<noise::Key> load_or_create_secret_file(const std::string& path);
// The key pair in `path`, created there if the file does not exist.
Result<noise::KeyPair> load_or_create_key_file(const std::string& path);
// The server's key: <data_dir>/server.key.
Result<noise::KeyPair> load_or_create_key(const std::string& data_dir);
// A client's own static key from client_private_key or client_key_file (loaded or created);
// none when neither is set. invalid_argument for both, for either with insecure_plaintext, or
// for a bad key.
Result<std::optional<noise::KeyPair>> client_static_key(const ClientOptions& options);

}  // namespace hawser::detail
