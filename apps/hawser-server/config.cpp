#include "config.hpp"

#include <limits>
#include <set>
#include <toml.hpp>
#include <type_traits>

#include "hawser/zdb/store_service.hpp"
#include "rpc/address.hpp"
#include "rpc/admission.hpp"
#include "wire/noise.hpp"

namespace hawser::app {

namespace {

void check_keys(const toml::value& table, const std::set<std::string>& known,
                const std::string& where) {
    for (const auto& [key, value] : table.as_table())
        if (!known.count(key))
            throw std::runtime_error("unknown key '" + key + "'" +
                                     (where.empty() ? "" : " in [" + where + "]"));
}

template <class T>
void read(const toml::value& table, const char* key, T& out) {
    if (!table.contains(key)) return;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        // toml11 casts without a range check: -1 would silently become 2^64 - 1.
        auto v = toml::find<std::int64_t>(table, key);
        if (v < 0) throw std::runtime_error(std::string(key) + " must not be negative");
        // Beyond this, clock arithmetic in nanoseconds would overflow (and 100 years is never).
        constexpr std::int64_t max_ms = 100LL * 365 * 24 * 3600 * 1000;
        if (v > max_ms)
            throw std::runtime_error(std::string(key) + " is too large (at most 100 years)");
        if (static_cast<std::uint64_t>(v) > std::uint64_t(std::numeric_limits<T>::max()))
            throw std::runtime_error(std::string(key) + " is too large (at most " +
                                     std::to_string(std::numeric_limits<T>::max()) + ")");
        out = static_cast<T>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
        const auto& v = toml::find(table, key);
        out = v.is_integer() ? static_cast<T>(v.as_integer()) : toml::get<T>(v);  // 200 or 200.0
    } else {
        out = toml::find<T>(table, key);
    }
}

void read_ms(const toml::value& table, const char* key, Milliseconds& out) {
    std::int64_t v = 0;
    read(table, key, v);  // the same range checks: not negative, at most 100 years
    if (table.contains(key)) out = Milliseconds(v);
}

}  // namespace

Result<void> validate(const ServerOptions& o) {
    auto bad = [](std::string what) { return Error{Errc::invalid_argument, std::move(what)}; };
    if (o.listen.empty()) return bad("listen must name at least one address");
    for (const auto& address : o.listen)
        if (auto hp = detail::parse_host_port(address); !hp) return hp.error();
    if (o.io_threads > 1024) return bad("io_threads must be 0 (one per core) to 1024");
    if (o.worker_threads > 1024) return bad("worker_threads must be at most 1024");
    if (o.backlog < 1) return bad("backlog must be at least 1");
    // A zero here would refuse every job, call or connection: almost surely a mistake.
    if (o.max_worker_jobs < 1) return bad("max_worker_jobs must be at least 1");
    if (o.max_worker_bytes < 1) return bad("max_worker_bytes must be at least 1");
    if (o.limits.max_frame_bytes < 64) return bad("max_frame_bytes below 64");
    if (o.limits.max_pending_calls < 1) return bad("max_pending_calls must be at least 1");
    if (o.limits.dataframe.max_depth < 1) return bad("max_dataframe_depth must be at least 1");
    if (o.limits.dataframe.max_container < 1)
        return bad("max_dataframe_container must be at least 1");
    if (o.limits.dataframe.max_elements < 1)
        return bad("max_dataframe_elements must be at least 1");
    if (o.transport.rekey_messages == 0) return bad("rekey_messages must be at least 1");
    const auto& a = o.admission;
    if (a.max_handshakes < 1) return bad("max_handshakes must be at least 1");
    if (a.max_handshakes_per_ip < 1) return bad("max_handshakes_per_ip must be at least 1");
    if (a.max_tracked_addresses < 1) return bad("max_tracked_addresses must be at least 1");
    if (!(a.max_handshakes_per_second == 0 ||
          (a.max_handshakes_per_second >= 1 && a.max_handshakes_per_second <= 1e9)))
        return bad("max_handshakes_per_second must be 0 (no pace) or 1 to 1e9");
    if (!(a.connections_per_second_per_ip >= 0))
        return bad("connections_per_second_per_ip must not be negative");
    // Admission::configure wants a whole connection in the bucket even without a rate.
    if (!(a.connection_burst_per_ip >= 1)) return bad("connection_burst_per_ip must be at least 1");
    for (const auto* list : {&a.allow, &a.deny})
        for (const auto& range : *list)
            if (auto c = detail::Cidr::parse(range); !c) return c.error();
    // The same checks Server::start makes (client_key_policy), before anything touches the disk.
    for (std::size_t i = 0; i < o.allowed_client_keys.size(); ++i)
        if (!detail::noise::key_from_hex(o.allowed_client_keys[i]))
            return bad("allowed_client_keys[" + std::to_string(i) + "] ('" +
                       o.allowed_client_keys[i].substr(0, 80) +
                       "') is not a public key: 64 hex digits expected");
    if ((o.require_client_key || !o.allowed_client_keys.empty()) && o.transport.insecure_plaintext)
        return bad(
            "require_client_key / allowed_client_keys need encryption, but "
            "insecure_plaintext is set");
    return {};
}

Result<ProtocolMark> parse_mark(const std::string& head, const std::string& tail) {
    if (head.size() != 4 || tail.size() != 4)
        return Error{Errc::invalid_argument, "protocol marks are exactly 4 bytes each"};
    ProtocolMark m;
    std::copy(head.begin(), head.end(), m.head.begin());
    std::copy(tail.begin(), tail.end(), m.tail.begin());
    return m;
}

Result<ServerOptions> load_config(const std::string& path, ServerOptions o) {
    try {
        auto root = toml::parse(path);
        check_keys(root,
                   {"listen",
                    "io_threads",
                    "worker_threads",
                    "reuse_port",
                    "backlog",
                    "max_connections",
                    "max_worker_jobs",
                    "max_worker_bytes",
                    "data_dir",
                    "send_error_details",
                    "allowed_client_keys",
                    "require_client_key",
                    "mark",
                    "limits",
                    "timeouts",
                    "transport",
                    "admission",
                    "websocket",
                    "cluster",
                    "cloud",
                    "admin"},
                   "");
        read(root, "data_dir", o.data_dir);
        read(root, "listen", o.listen);
        read(root, "io_threads", o.io_threads);
        read(root, "worker_threads", o.worker_threads);
        read(root, "reuse_port", o.reuse_port);
        read(root, "backlog", o.backlog);
        read(root, "max_connections", o.max_connections);
        read(root, "max_worker_jobs", o.max_worker_jobs);
        read(root, "max_worker_bytes", o.max_worker_bytes);
        read(root, "send_error_details", o.send_error_details);
        read(root, "allowed_client_keys", o.allowed_client_keys);
        read(root, "require_client_key", o.require_client_key);
        if (root.contains("mark")) {
            const auto& m = toml::find(root, "mark");
            check_keys(m, {"head", "tail"}, "mark");
            auto mark =
                parse_mark(toml::find<std::string>(m, "head"), toml::find<std::string>(m, "tail"));
            if (!mark) return Error{Errc::invalid_argument, path + ": " + mark.error().message};
            o.mark = *mark;
        }
        if (root.contains("limits")) {
            const auto& l = toml::find(root, "limits");
            check_keys(
                l,
                {"max_frame_bytes", "max_pending_calls", "max_send_queue_bytes",
                 "send_queue_soft_bytes", "send_queue_soft_grace_ms", "max_decompressed_bytes",
                 "worker_decode_bytes", "max_worker_decode_bytes", "max_decoded_bytes",
                 "max_dataframe_depth", "max_dataframe_container", "max_dataframe_elements",
                 "stream_window_bytes", "stream_connection_window_bytes", "stream_chunk_bytes",
                 "stream_hash_turn_bytes", "max_incoming_streams", "max_outgoing_streams"},
                "limits");
            read(l, "max_frame_bytes", o.limits.max_frame_bytes);
            read(l, "max_pending_calls", o.limits.max_pending_calls);
            read(l, "max_send_queue_bytes", o.limits.max_send_queue_bytes);
            read(l, "send_queue_soft_bytes", o.limits.send_queue_soft_bytes);
            read_ms(l, "send_queue_soft_grace_ms", o.limits.send_queue_soft_grace);
            o.limits.dataframe.max_bytes = o.limits.max_frame_bytes;
            o.limits.max_decompressed_bytes = o.limits.max_frame_bytes;  // unless set below
            read(l, "max_decompressed_bytes", o.limits.max_decompressed_bytes);
            read(l, "worker_decode_bytes", o.limits.worker_decode_bytes);
            read(l, "max_worker_decode_bytes", o.limits.max_worker_decode_bytes);
            read(l, "max_decoded_bytes", o.limits.dataframe.max_decoded_bytes);
            read(l, "max_dataframe_depth", o.limits.dataframe.max_depth);
            read(l, "max_dataframe_container", o.limits.dataframe.max_container);
            read(l, "max_dataframe_elements", o.limits.dataframe.max_elements);
            read(l, "stream_window_bytes", o.limits.stream_window_bytes);
            read(l, "stream_connection_window_bytes", o.limits.stream_connection_window_bytes);
            read(l, "stream_chunk_bytes", o.limits.stream_chunk_bytes);
            read(l, "stream_hash_turn_bytes", o.limits.stream_hash_turn_bytes);
            read(l, "max_incoming_streams", o.limits.max_incoming_streams);
            read(l, "max_outgoing_streams", o.limits.max_outgoing_streams);
        }
        if (root.contains("timeouts")) {
            const auto& t = toml::find(root, "timeouts");
            check_keys(t, {"call_ms", "idle_ms", "heartbeat_ms", "shutdown_ms"}, "timeouts");
            read_ms(t, "call_ms", o.timeouts.call);
            read_ms(t, "idle_ms", o.timeouts.idle);
            read_ms(t, "heartbeat_ms", o.timeouts.heartbeat);
            read_ms(t, "shutdown_ms", o.timeouts.shutdown);
        }
        if (root.contains("transport")) {
            const auto& t = toml::find(root, "transport");
            check_keys(t,
                       {"insecure_plaintext", "rekey_messages", "rekey_interval_ms", "compression",
                        "compress_threshold"},
                       "transport");
            read(t, "insecure_plaintext", o.transport.insecure_plaintext);
            read(t, "rekey_messages", o.transport.rekey_messages);
            read_ms(t, "rekey_interval_ms", o.transport.rekey_interval);
            read(t, "compress_threshold", o.transport.compress_threshold);
            if (t.contains("compression")) {
                auto c = toml::find<std::string>(t, "compression");
                if (c == "zstd")
                    o.transport.compression = Compression::zstd;
                else if (c == "lz4")
                    o.transport.compression = Compression::lz4;
                else if (c == "none")
                    o.transport.compression = Compression::none;
                else
                    throw std::runtime_error("compression must be \"zstd\", \"lz4\" or \"none\"");
            }
        }
        if (root.contains("admission")) {
            const auto& a = toml::find(root, "admission");
            check_keys(a,
                       {"handshake_timeout_ms", "max_handshakes", "max_handshakes_per_ip",
                        "max_connections_per_address", "connections_per_second_per_ip",
                        "connection_burst_per_ip", "max_tracked_addresses",
                        "max_handshakes_per_second", "allow", "deny"},
                       "admission");
            read_ms(a, "handshake_timeout_ms", o.admission.handshake_timeout);
            read(a, "max_handshakes", o.admission.max_handshakes);
            read(a, "max_handshakes_per_ip", o.admission.max_handshakes_per_ip);
            read(a, "max_connections_per_address", o.admission.max_connections_per_address);
            read(a, "max_tracked_addresses", o.admission.max_tracked_addresses);
            read(a, "connections_per_second_per_ip", o.admission.connections_per_second_per_ip);
            read(a, "connection_burst_per_ip", o.admission.connection_burst_per_ip);
            read(a, "max_handshakes_per_second", o.admission.max_handshakes_per_second);
            read(a, "allow", o.admission.allow);
            read(a, "deny", o.admission.deny);
        }
        if (root.contains("websocket")) {
            const auto& w = toml::find(root, "websocket");
            check_keys(w,
                       {"listen", "on_native_ports", "path", "allowed_origins", "max_request_bytes",
                        "max_headers"},
                       "websocket");
            read(w, "listen", o.websocket.listen);
            read(w, "on_native_ports", o.websocket.on_native_ports);
            read(w, "path", o.websocket.path);
            read(w, "allowed_origins", o.websocket.allowed_origins);
            read(w, "max_request_bytes", o.websocket.max_request_bytes);
            read(w, "max_headers", o.websocket.max_headers);
        }
    } catch (const std::exception& e) {
        return Error{Errc::invalid_argument, path + ": " + e.what()};
    }
    if (auto valid = validate(o); !valid)
        return Error{Errc::invalid_argument, path + ": " + valid.error().message};
    return o;
}

Result<std::optional<ClusterOptions>> load_cluster_config(const std::string& path) {
    ClusterOptions c;
    try {
        auto root = toml::parse(path);
        if (!root.contains("cluster")) return std::optional<ClusterOptions>();
        const auto& t = toml::find(root, "cluster");
        check_keys(t,
                   {"nats",
                    "node_name",
                    "subject_prefix",
                    "public_endpoints",
                    "capacity",
                    "nats_user",
                    "nats_password",
                    "nats_token",
                    "nats_nkey",
                    "nats_nkey_seed_file",
                    "nats_credentials_file",
                    "nats_tls",
                    "nats_tls_ca_file",
                    "report_interval_ms",
                    "node_expiry_ms",
                    "reports_heard_per_second",
                    "max_message_bytes",
                    "max_remote_requests",
                    "max_channels_per_connection",
                    "interest_batch_ms",
                    "redirect_when_full",
                    "client_channel_prefixes",
                    "nats_send_asap"},
                   "cluster");
        read(t, "nats", c.nats_urls);
        read(t, "node_name", c.node_name);
        read(t, "subject_prefix", c.subject_prefix);
        read(t, "public_endpoints", c.public_endpoints);
        read(t, "capacity", c.capacity);
        read(t, "nats_user", c.nats_user);
        read(t, "nats_password", c.nats_password);
        read(t, "nats_token", c.nats_token);
        read(t, "nats_nkey", c.nats_nkey);
        read(t, "nats_nkey_seed_file", c.nats_nkey_seed_file);
        read(t, "nats_credentials_file", c.nats_credentials_file);
        read(t, "nats_tls", c.nats_tls);
        read(t, "nats_tls_ca_file", c.nats_tls_ca_file);
        read_ms(t, "report_interval_ms", c.report_interval);
        read_ms(t, "node_expiry_ms", c.node_expiry);
        read(t, "reports_heard_per_second", c.reports_heard_per_second);
        read(t, "max_message_bytes", c.max_message_bytes);
        read(t, "max_remote_requests", c.max_remote_requests);
        read(t, "max_channels_per_connection", c.max_channels_per_connection);
        read_ms(t, "interest_batch_ms", c.interest_batch);
        read(t, "redirect_when_full", c.redirect_when_full);
        read(t, "client_channel_prefixes", c.client_channel_prefixes);
        read(t, "nats_send_asap", c.nats_send_asap);
    } catch (const std::exception& e) {
        return Error{Errc::invalid_argument, path + ": " + e.what()};
    }
    if (auto valid = Cluster::validate(c); !valid)
        return Error{Errc::invalid_argument, path + ": " + valid.error().message};
    return std::optional<ClusterOptions>(std::move(c));
}

Result<std::optional<AdminOptions>> load_admin_config(const std::string& path) {
    AdminOptions a;
    try {
        auto root = toml::parse(path);
        if (!root.contains("admin")) return std::optional<AdminOptions>();
        const auto& t = toml::find(root, "admin");
        check_keys(t, {"enabled", "listen", "max_connections", "timeout_ms", "allowed_hosts"},
                   "admin");
        bool enabled = true;
        read(t, "enabled", enabled);
        read(t, "listen", a.listen);
        read(t, "max_connections", a.max_connections);
        read_ms(t, "timeout_ms", a.timeout);
        read(t, "allowed_hosts", a.allowed_hosts);
        if (!enabled) return std::optional<AdminOptions>();
    } catch (const std::exception& e) {
        return Error{Errc::invalid_argument, path + ": " + e.what()};
    }
    if (auto valid = AdminServer::validate(a); !valid)
        return Error{Errc::invalid_argument, path + ": " + valid.error().message};
    return std::optional<AdminOptions>(std::move(a));
}

Result<std::optional<CloudConfig>> load_cloud_config(const std::string& path) {
    CloudConfig c;
    c.options.secret_key_file.clear();  // resolved against data_dir unless given
    bool files_given = false;
    auto& o = c.options;
    try {
        auto root = toml::parse(path);
        if (!root.contains("cloud")) return std::optional<CloudConfig>();
        const auto& t = toml::find(root, "cloud");
        check_keys(t,
                   {"store_dir",
                    "secret_key_file",
                    "database_prefix",
                    "password_ops",
                    "password_memory",
                    "max_hashes_queued",
                    "min_password_bytes",
                    "max_password_bytes",
                    "session_lifetime_s",
                    "max_sessions_per_user",
                    "login_attempts_per_address",
                    "failed_logins_per_account",
                    "login_window_ms",
                    "registrations_per_address",
                    "max_tracked",
                    "files",
                    "files_dir",
                    "quota_bytes",
                    "max_entries_per_user",
                    "max_transfers_per_user",
                    "partial_upload_lifetime_s",
                    "max_queued_messages",
                    "message_lifetime_s",
                    "max_message_bytes",
                    "messages_per_minute",
                    "max_follows",
                    "max_rooms",
                    "max_room_members",
                    "max_room_views",
                    "admins",
                    "max_records_per_user",
                    "max_document_bytes",
                    "max_queries_per_connection",
                    "max_queries",
                    "max_query_window",
                    "query_fragment_bytes",
                    "query_parallelism",
                    "query_time_limit_ms",
                    "query_idle_timeout_ms",
                    "serve_store_to",
                    "store_endpoint",
                    "store_public_key",
                    "files_endpoint"},
                   "cloud");
        read(t, "store_dir", c.store_dir);
        read(t, "secret_key_file", o.secret_key_file);
        read(t, "database_prefix", o.database_prefix);
        read(t, "password_ops", o.password_ops);
        read(t, "password_memory", o.password_memory);
        read(t, "max_hashes_queued", o.max_hashes_queued);
        read(t, "min_password_bytes", o.min_password_bytes);
        read(t, "max_password_bytes", o.max_password_bytes);
        std::uint64_t lifetime_s = 0;
        read(t, "session_lifetime_s", lifetime_s);
        if (t.contains("session_lifetime_s")) o.session_lifetime = std::chrono::seconds(lifetime_s);
        read(t, "max_sessions_per_user", o.max_sessions_per_user);
        read(t, "login_attempts_per_address", o.login_attempts_per_address);
        read(t, "failed_logins_per_account", o.failed_logins_per_account);
        read_ms(t, "login_window_ms", o.login_window);
        read(t, "registrations_per_address", o.registrations_per_address);
        read(t, "max_tracked", o.max_tracked);
        read(t, "max_queued_messages", o.max_queued_messages);
        std::uint64_t message_s = 0;
        read(t, "message_lifetime_s", message_s);
        if (t.contains("message_lifetime_s")) o.message_lifetime = std::chrono::seconds(message_s);
        read(t, "max_message_bytes", o.max_message_bytes);
        read(t, "messages_per_minute", o.messages_per_minute);
        read(t, "max_follows", o.max_follows);
        read(t, "max_rooms", o.max_rooms);
        read(t, "max_room_members", o.max_room_members);
        read(t, "max_room_views", o.max_room_views);
        read(t, "files", c.files);
        read(t, "files_dir", o.files_dir);
        read(t, "quota_bytes", o.quota_bytes);
        read(t, "max_entries_per_user", o.max_entries_per_user);
        read(t, "max_transfers_per_user", o.max_transfers_per_user);
        std::uint64_t partial_s = 0;
        read(t, "partial_upload_lifetime_s", partial_s);
        if (t.contains("partial_upload_lifetime_s"))
            o.partial_upload_lifetime = std::chrono::seconds(partial_s);
        read(t, "admins", o.admins);
        read(t, "max_records_per_user", o.max_records_per_user);
        read(t, "max_document_bytes", o.max_document_bytes);
        read(t, "max_queries_per_connection", o.max_queries_per_connection);
        read(t, "max_queries", o.max_queries);
        read(t, "max_query_window", o.max_query_window);
        read(t, "query_fragment_bytes", o.query_fragment_bytes);
        read(t, "query_parallelism", o.query_parallelism);
        read_ms(t, "query_time_limit_ms", o.query_time_limit);
        read_ms(t, "query_idle_timeout_ms", o.query_idle_timeout);
        read(t, "serve_store_to", c.serve_store_to);
        read(t, "store_endpoint", c.store_endpoint);
        read(t, "store_public_key", c.store_public_key);
        read(t, "files_endpoint", o.files_endpoint);
        files_given = t.contains("files") && c.files;
    } catch (const std::exception& e) {
        return Error{Errc::invalid_argument, path + ": " + e.what()};
    }
    auto bad = [&](std::string why) {
        return Error{Errc::invalid_argument, path + ": cloud: " + why};
    };
    if (c.remote_store() != !c.store_public_key.empty())
        return bad("store_endpoint and store_public_key go together");
    if (c.remote_store() && (!c.serve_store_to.empty() || !c.store_dir.empty()))
        return bad(
            "a node that uses another node's store (store_endpoint) has no store_dir and "
            "serves none (serve_store_to)");
    if (c.remote_store() && (files_given || !o.files_dir.empty()))
        return bad(
            "files are kept by the node that serves the store, not by one that uses "
            "it (store_endpoint)");
    if (c.remote_store()) c.files = false;
    // Clients of a node that uses another's store are sent there for files: to the address
    // this node reaches it at, unless files_endpoint names the one clients use.
    if (!o.files_endpoint.empty() && !c.remote_store())
        return bad("files_endpoint is for a node that uses another node's store (store_endpoint)");
    if (c.remote_store()) {
        if (o.files_endpoint.empty()) o.files_endpoint = c.store_endpoint;
        o.files_public_key = c.store_public_key;
    }
    if (!c.serve_store_to.empty())
        if (auto valid = zdb::StoreService::validate({.allowed_keys = c.serve_store_to}); !valid)
            return bad(valid.error().message);
    auto check = o;
    if (check.secret_key_file.empty()) check.secret_key_file = "cloud.key";
    if (c.files && check.files_dir.empty()) check.files_dir = "cloud-files";
    if (auto valid = cloud::Cloud::validate(check); !valid)
        return Error{Errc::invalid_argument, path + ": " + valid.error().message};
    return std::optional<CloudConfig>(std::move(c));
}

}  // namespace hawser::app
