// hawser-server configuration: a TOML file (all keys optional; the embedded defaults are
// ServerOptions'), overridden by command-line flags. Unknown keys are errors, so typos show.
#pragma once

#include <string>

#include <optional>

#include "hawser/admin.hpp"
#include "hawser/cloud/cloud.hpp"
#include "hawser/cluster.hpp"
#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser::app {

// Reads the file over `base` and validates the result.
Result<ServerOptions> load_config(const std::string& path, ServerOptions base = {});
// What the server would refuse: every listen address parses, numbers are in range, CIDR ranges
// and client keys parse, client keys are not combined with plaintext. Run again after
// command-line flags are merged.
Result<void> validate(const ServerOptions& options);
// The [cluster] table of the same file: nullopt when there is none (a single node).
Result<std::optional<ClusterOptions>> load_cluster_config(const std::string& path);
// The [cloud] table: accounts, sessions and the login gate (docs/cloud.md). Paths left empty
// are resolved against the server's data_dir by the caller.
struct CloudConfig {
    cloud::CloudOptions options;
    std::string store_dir;  // the ZDB store holding accounts and sessions
    bool files = true;      // the file service, under options.files_dir (default data_dir)
    // A cluster sharing one store: the node that keeps it serves it to the nodes whose server
    // keys are listed; the others name where it is and its key, and keep no store of their own.
    std::vector<std::string> serve_store_to;
    std::string store_endpoint, store_public_key;
    bool remote_store() const { return !store_endpoint.empty(); }
};
// nullopt when the file has no [cloud] table.
Result<std::optional<CloudConfig>> load_cloud_config(const std::string& path);
// The [admin] table: the admin listener (/metrics and the dashboard). nullopt when there is
// none, or when it says enabled = false.
Result<std::optional<AdminOptions>> load_admin_config(const std::string& path);
Result<ProtocolMark> parse_mark(const std::string& head, const std::string& tail);

}  // namespace hawser::app
