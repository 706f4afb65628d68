// hawser-cli's cloud file commands (docs/cloud.md, "Files"): put and get with a progress bar on
// a terminal and resume after a cut, ls, rm, mkdir, mv and usage. Blocking, on the main thread.
#pragma once

#include <filesystem>
#include <string>

#include "hawser/hawser.hpp"

namespace hawser::app {

// What a file command needs; the subcommand's own arguments.
struct FileCommand {
    std::string verb;  // put, get, ls, rm, mkdir, mv, usage
    std::string first,
        second;              // put LOCAL [REMOTE]; get REMOTE [LOCAL]; mv FROM TO; ls/rm/mkdir PATH
    bool recursive = false;  // rm -r
    bool force = false;      // get -f: replace a local file
};

// The local file a `get` stores into (its default: the remote name's last segment, here).
std::filesystem::path download_target(const FileCommand& command);
// Registers, before connect, the stream handler a `get` receives its file with.
void prepare_download(Commands& commands, const std::filesystem::path& target);
// Runs the command on a logged-in connection; prints the outcome. Returns the exit status.
int run_file_command(const Connection& conn, const FileCommand& command,
                     std::chrono::milliseconds timeout);
// The same where the user's files are kept: on this connection's node, or on the node
// cloud.files_at names (a cluster whose serving node keeps them), reached with `options` and
// the session's `token` resumed there.
int run_file_command_where_kept(const Connection& conn, const FileCommand& command,
                                std::chrono::milliseconds timeout, ClientOptions options,
                                const std::string& token);

}  // namespace hawser::app
