// Cloud: accounts, login and resumable sessions on a Server (docs/cloud.md). Once a Cloud is
// attached, every command and stream of the server needs a logged-in session unless it was
// registered CommandOptions::public_access: one check before dispatch, none in the handlers.
// Handlers see who called with cloud::user_of(request.connection()).
//
// Accounts live in ZDB (passwords hashed with Argon2id on the worker pool, never on an IO
// thread). A login returns a session token, MAC'd with the cloud's secret key and carrying its
// expiry; a reconnect presents it (cloud.resume) and skips the password hash. A session is
// revoked by deleting its record: logout, revoke, a password change (every other session) and
// account deletion; connections using a revoked session are closed.
//
// Ownership: a Cloud refers to its Server and its Store; the Store must outlive the Cloud, whose
// destructor waits for its storage work and after which commands answer shutting_down. The
// Cloud owns the connections' service context (Connection::service_context). It refuses a
// plaintext server. Thread safety: construct before
// server.start(); user_of on the connection's IO thread; the rest from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/connection.hpp"
#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser {
class Cluster;
class Server;
namespace zdb {
class Store;
}
}  // namespace hawser

namespace hawser::cloud {

struct CloudOptions {
    // 32 random bytes (64 hex digits) that MAC every session token; created (mode 0600) when the
    // file does not exist. Every node that should accept a token holds the same file.
    std::string secret_key_file = "hawser-data/cloud.key";
    // ZDB databases "<prefix>.accounts" and "<prefix>.sessions", created when missing.
    std::string database_prefix = "cloud";
    // Argon2id cost of one password hash (libsodium crypto_pwhash): iterations and memory. The
    // defaults are libsodium's "interactive" level; the store keeps each hash's own parameters,
    // so raising them later applies to new and changed passwords.
    std::uint64_t password_ops = 2;
    std::size_t password_memory = 64u << 20;
    // At most this many password hashes waiting or running on the worker pool; past it login,
    // registration and password changes fail Errc::overloaded at once.
    std::size_t max_hashes_queued = 64;
    std::size_t min_password_bytes = 8, max_password_bytes = 1024;
    Milliseconds session_lifetime{std::chrono::hours(24 * 30)};
    // Logging in past this many live sessions ends the oldest.
    std::size_t max_sessions_per_user = 32;
    // Login attempts in a window: per source address (every attempt, IPv6 by /64) and per
    // account (failed ones). Past either, logins fail Errc::rate_limited until the window ends.
    std::uint32_t login_attempts_per_address = 30;
    std::uint32_t failed_logins_per_account = 10;
    Milliseconds login_window{std::chrono::minutes(1)};
    // Registrations per source address in the same window.
    std::uint32_t registrations_per_address = 10;
    // Addresses and accounts tracked by the limits at once; when full, new ones are refused
    // (rate_limited) until old windows end, so a flood cannot grow memory.
    std::size_t max_tracked = 100000;

    // Messages between users (docs/cloud.md, "Messages"), kept in the ZDB database
    // "<prefix>.messages" until acknowledged: at most max_queued_messages per recipient (more
    // are refused, limit_exceeded), each for message_lifetime.
    std::size_t max_queued_messages = 1000;
    Milliseconds message_lifetime{std::chrono::hours(24 * 7)};
    std::size_t max_message_bytes = 64 * 1024;  // a body, encoded
    std::uint32_t messages_per_minute = 600;    // per sender
    // Presence (docs/cloud.md, "Presence"): users a connection follows at once.
    std::size_t max_follows = 1000;
    // Rooms (docs/cloud.md, "Rooms"): rooms a connection is in at once, and members a room
    // may hold when one more joins (joins at the same moment may pass it together).
    std::size_t max_rooms = 64;
    std::size_t max_room_members = 1000;
    // Each member's connection keeps its rooms' member lists: past this many members in all
    // of this node's lists, joins here are refused (limit_exceeded).
    std::size_t max_room_views = 2000000;

    // Per-user files (docs/cloud.md, "Files"); off while files_dir is empty. Contents live under
    // files_dir named by their BLAKE2b hash (identical files are stored once), the tree in the
    // ZDB database "<prefix>.files".
    std::string files_dir;
    std::uint64_t quota_bytes = std::uint64_t(1) << 30;  // per user: the sum of file sizes
    std::size_t max_entries_per_user = 10000;            // files and directories
    // Uploads under way at once per user, and downloads; as many cut uploads are kept to
    // resume, the oldest going first.
    std::size_t max_transfers_per_user = 4;
    // A cut upload not resumed for this long is deleted (at start, at its user's next upload,
    // and at any upload at most hourly); at most ten years.
    Milliseconds partial_upload_lifetime{std::chrono::hours(24)};
    // Without files_dir: where clients find the files, on a member of a cluster whose serving
    // node keeps them ("host:port" and that node's server key, 64 hex digits; both or
    // neither). cloud.files_at names that node, and the file commands here fail not_allowed.
    std::string files_endpoint, files_public_key;

    // User data and ZDB over the wire (docs/cloud.md, "Data"). Users keep records in
    // collections of their own in the ZDB database "<prefix>.data"; admins (these usernames)
    // reach every user's collections and every database of the store but the cloud's own.
    // cloud.register refuses these names: their accounts are made with Cloud::create_account.
    std::vector<std::string> admins;
    std::size_t max_records_per_user = 10000;
    std::size_t max_document_bytes = 64 * 1024;  // a document or patch as sent, encoded
    // Queries: running at once per connection and on this node; fragments a client may leave
    // unacknowledged (it asks for 1 to this many); a fragment's size; ZDB workers per query.
    std::size_t max_queries_per_connection = 4;
    std::size_t max_queries = 64;
    std::size_t max_query_window = 16;
    std::size_t query_fragment_bytes = 256 * 1024;
    std::size_t query_parallelism = 2;
    Milliseconds query_time_limit{std::chrono::minutes(1)};
    // A query left paused (unacknowledged, or by its client) for this long gives up its place
    // when the node is at max_queries.
    Milliseconds query_idle_timeout{std::chrono::seconds(30)};
};

// Who a connection is logged in as.
struct User {
    std::uint64_t id = 0;
    std::string name;
    std::uint64_t session = 0;  // the session this connection uses
};

// One of a user's sessions, as cloud.sessions lists them.
struct SessionInfo {
    std::uint64_t id = 0;
    std::chrono::system_clock::time_point created, expires;
    std::string address;  // where the login came from
};

struct CloudStats {
    std::uint64_t registrations = 0, logins = 0, resumptions = 0;
    std::uint64_t failed_logins = 0, failed_resumptions = 0, rate_limited = 0;
    std::uint64_t sessions_revoked = 0;
    std::uint64_t online_connections = 0;  // logged in, on this node, now
    std::uint64_t files_uploaded = 0, files_downloaded = 0;
    std::uint64_t messages_sent = 0;    // kept in a mailbox
    std::uint64_t messages_pushed = 0;  // handed to a recipient's connection at once
    std::uint64_t queries_running = 0;  // data queries, on this node, now
    // Data queries that ended while the worker pool was full, to let go on a worker (their
    // release waits for their ZDB workers): they count against max_queries meanwhile.
    std::uint64_t queries_to_release = 0;
    std::uint64_t followers = 0;   // connections following someone or in rooms, on this node, now
    std::uint64_t room_views = 0;  // members in their rooms' lists (max_room_views), now
};

class Cloud {
  public:
    // Opens (or creates) the databases and the secret key, registers the cloud commands and the
    // login gate on `server`, which must not have started. Throws hawser::Exception on a bad
    // option, an unreadable key or a store error.
    Cloud(Server& server, zdb::Store& store, CloudOptions options);
    ~Cloud();
    Cloud(const Cloud&) = delete;
    Cloud& operator=(const Cloud&) = delete;

    // What the constructor checks.
    static Result<void> validate(const CloudOptions& options);
    // Usernames: 3 to 32 of ASCII letters, digits, '_', '-' and '.', starting with a letter or
    // a digit; compared without case ("Ann" and "ann" are one account).
    static bool valid_username(std::string_view name);

    // Creates an account on the server's side, as cloud.register does but for any name,
    // administrators' included (which cloud.register refuses: nobody may claim one first).
    // Blocks while the password is hashed: not on an IO thread (would_deadlock).
    Result<std::uint64_t> create_account(std::string_view name, std::string_view password);

    // On a cluster whose nodes share one store (zdb::RemoteStore on all but the node that serves
    // it, zdb::StoreService there) and one secret key file: a session resumes on any node; a
    // session ended on one node (logout, revoke, a password change, a deletion) closes its
    // connections on every node; a message reaches the recipient's connections on every node;
    // cloud.who answers for the whole cluster (docs/cloud.md, "On a cluster"). Before
    // server.start() and cluster.start(); the Cluster must outlive the Cloud.
    void join(Cluster& cluster);

    // Server push (docs/cloud.md, "Server push"): a one-way DataFrame command to every
    // connection signed in as `user`, or to every signed-in connection (broadcast), on every
    // node: this node's at once, the others' through the cluster. A connection over its send
    // soft limit is skipped, as a broadcast skips it. invalid_argument for a command name that
    // is empty, over 255 bytes or starting with "cloud." or "hawser.", or (on a cluster) an
    // argument over the cluster's message size; limit_exceeded past the frame size;
    // overloaded when broadcasts wait; cluster_unavailable when the other nodes could not be
    // told (this node's connections have it). Any thread (after join, on a cluster).
    Result<void> push(std::uint64_t user, std::string_view command, const DataFrame& argument);
    Result<void> broadcast(std::string_view command, const DataFrame& argument);

    // The logged-in user of a connection, or nullopt. On the connection's IO thread (a handler's).
    static std::optional<User> user_of(const Connection& connection);
    // This node's connections logged in as `user`.
    std::vector<ConnectionId> connections_of(std::uint64_t user) const;
    CloudStats stats() const;

    // The commands (docs/cloud.md has arguments, replies and errors). Public: register, login,
    // resume. The rest need a session.
    static constexpr std::string_view register_command = "cloud.register";
    static constexpr std::string_view login_command = "cloud.login";
    static constexpr std::string_view resume_command = "cloud.resume";
    static constexpr std::string_view logout_command = "cloud.logout";
    static constexpr std::string_view whoami_command = "cloud.whoami";
    static constexpr std::string_view password_command = "cloud.password";
    static constexpr std::string_view delete_command = "cloud.delete";
    static constexpr std::string_view sessions_command = "cloud.sessions";
    static constexpr std::string_view revoke_command = "cloud.revoke";
    // Files (with files_dir): the upload stream, and the calls.
    static constexpr std::string_view put_stream = "cloud.put";
    static constexpr std::string_view get_command = "cloud.get";
    static constexpr std::string_view list_command = "cloud.list";
    static constexpr std::string_view stat_command = "cloud.stat";
    static constexpr std::string_view mkdir_command = "cloud.mkdir";
    static constexpr std::string_view move_command = "cloud.move";
    static constexpr std::string_view remove_command = "cloud.remove";
    static constexpr std::string_view usage_command = "cloud.usage";
    // Where this user's files are: {"here": true}, or {"here": false, "endpoint", "public_key"}
    // naming the node that keeps them, where the session's token resumes.
    static constexpr std::string_view files_at_command = "cloud.files_at";
    // Messages: the calls, and the one-way command a message is pushed to the recipient with
    // (a DataFrame: id, sender's name, body, sent (Unix ms)).
    static constexpr std::string_view send_command = "cloud.send";
    static constexpr std::string_view inbox_command = "cloud.inbox";
    static constexpr std::string_view ack_command = "cloud.ack";
    static constexpr std::string_view who_command = "cloud.who";
    static constexpr std::string_view message_push = "cloud.message";
    // Presence: follow and unfollow users; the one-way command each change of a followed
    // user's presences is pushed with (a DataFrame: name, online (bool), presence).
    static constexpr std::string_view follow_command = "cloud.follow";
    static constexpr std::string_view unfollow_command = "cloud.unfollow";
    static constexpr std::string_view presence_push = "cloud.presence";
    // Rooms: join and leave them; the one-way command each member that joins or leaves a room
    // the connection is in is pushed with (a DataFrame: room, name, joined (bool), presence).
    static constexpr std::string_view join_command = "cloud.join";
    static constexpr std::string_view leave_command = "cloud.leave";
    static constexpr std::string_view room_push = "cloud.room";
    // The stream handler a download goes to unless cloud.get names another.
    static constexpr std::string_view download_stream = "cloud.file";
    // User data and ZDB: the calls; the one-way acknowledgement a client sends for query
    // fragments, and the one-way command fragments come with (query id, sequence number, then
    // each record's id and record).
    static constexpr std::string_view data_insert_command = "cloud.data.insert";
    static constexpr std::string_view data_get_command = "cloud.data.get";
    static constexpr std::string_view data_patch_command = "cloud.data.patch";
    static constexpr std::string_view data_remove_command = "cloud.data.remove";
    static constexpr std::string_view data_query_command = "cloud.data.query";
    static constexpr std::string_view data_control_command = "cloud.data.control";
    static constexpr std::string_view data_ack_command = "cloud.data.ack";
    static constexpr std::string_view data_fragment_push = "cloud.data.fragment";

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hawser::cloud
