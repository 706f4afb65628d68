// The tables of the services hawser-server may run beside its connections (see config.hpp):
// [cluster], [admin] and [cloud].
#include <toml.hpp>

#include "config.hpp"
#include "config_reading.hpp"
#include "hawser/zdb/store_service.hpp"

namespace hawser::app {

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
                    "max_publish_queue_bytes",
                    "max_remote_requests",
                    "max_channels_per_connection",
                    "interest_batch_ms",
                    "redirect_when_full",
                    "client_channel_prefixes",
                    "nats_send_asap",
                    "nats_write_deadline_ms",
                    "channel_write_deadline_ms"},
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
        read(t, "max_publish_queue_bytes", c.max_publish_queue_bytes);
        read(t, "max_remote_requests", c.max_remote_requests);
        read(t, "max_channels_per_connection", c.max_channels_per_connection);
        read_ms(t, "interest_batch_ms", c.interest_batch);
        read(t, "redirect_when_full", c.redirect_when_full);
        read(t, "client_channel_prefixes", c.client_channel_prefixes);
        read(t, "nats_send_asap", c.nats_send_asap);
        read_ms(t, "nats_write_deadline_ms", c.nats_write_deadline);
        read_ms(t, "channel_write_deadline_ms", c.channel_write_deadline);
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
        read_duration<std::chrono::seconds>(t, "session_lifetime_s", o.session_lifetime);
        read(t, "max_sessions_per_user", o.max_sessions_per_user);
        read(t, "login_attempts_per_address", o.login_attempts_per_address);
        read(t, "failed_logins_per_account", o.failed_logins_per_account);
        read_ms(t, "login_window_ms", o.login_window);
        read(t, "registrations_per_address", o.registrations_per_address);
        read(t, "max_tracked", o.max_tracked);
        read(t, "max_queued_messages", o.max_queued_messages);
        read_duration<std::chrono::seconds>(t, "message_lifetime_s", o.message_lifetime);
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
        read_duration<std::chrono::seconds>(t, "partial_upload_lifetime_s",
                                            o.partial_upload_lifetime);
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
