// Cloud (include/hawser/cloud/cloud.hpp): its options checked, its parts made and wired to the
// server (the commands, the login gate, the close hook) and to a cluster (Cloud::join), and the
// public methods. What it holds is Cloud::Impl (cloud_impl.hpp); the account and session
// commands are in account_commands.cpp and session_commands.cpp.
#include "hawser/cloud/cloud.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "cloud/cloud_impl.hpp"
#include "cloud/files_elsewhere.hpp"
#include "cloud/unix_ms.hpp"
#include "cloud/weak_command.hpp"
#include "hawser/server.hpp"
#include "rpc/address.hpp"

namespace hawser::cloud {

using detail::SignedIn;
using detail::unix_ms;

Result<void> Cloud::validate(const CloudOptions& o) {
    auto bad = [](std::string why) { return Error{Errc::invalid_argument, "cloud: " + why}; };
    if (o.secret_key_file.empty()) return bad("secret_key_file is empty");
    if (auto ok = detail::check_cost({o.password_ops, o.password_memory}); !ok)
        return bad(ok.error().message);
    if (o.database_prefix.empty() || o.database_prefix.size() > 40 ||
        o.database_prefix.starts_with("__") ||
        o.database_prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789_.-") != std::string::npos)
        return bad("database_prefix is 1 to 40 of [A-Za-z0-9_.-], not starting with \"__\"");
    if (o.max_hashes_queued == 0) return bad("max_hashes_queued must be at least 1");
    if (o.min_password_bytes == 0 || o.min_password_bytes > o.max_password_bytes ||
        o.max_password_bytes > 4096)
        return bad("passwords need 1 <= min_password_bytes <= max_password_bytes <= 4096");
    if (o.session_lifetime < Milliseconds(1000)) return bad("session_lifetime is at least 1 s");
    if (o.max_sessions_per_user == 0) return bad("max_sessions_per_user must be at least 1");
    if (o.login_attempts_per_address == 0 || o.failed_logins_per_account == 0 ||
        o.registrations_per_address == 0)
        return bad("login and registration limits must be at least 1");
    if (o.login_window < Milliseconds(1)) return bad("login_window must be positive");
    if (o.max_tracked == 0) return bad("max_tracked must be at least 1");
    if (o.max_queued_messages == 0) return bad("max_queued_messages must be at least 1");
    if (o.message_lifetime < Milliseconds(1) || o.message_lifetime > std::chrono::hours(24 * 3650))
        return bad("message_lifetime is 1 ms to ten years");
    if (o.max_message_bytes == 0 || o.max_message_bytes > (1u << 20))
        return bad("max_message_bytes is 1 to 1048576");
    if (o.messages_per_minute == 0) return bad("messages_per_minute must be at least 1");
    if (o.max_follows == 0 || o.max_follows > 100000) return bad("max_follows is 1 to 100000");
    if (o.max_rooms == 0 || o.max_rooms > 10000) return bad("max_rooms is 1 to 10000");
    if (o.max_room_views == 0) return bad("max_room_views must be at least 1");
    // A node answers a join with a room's members there in one cluster message.
    if (o.max_room_members == 0 || o.max_room_members > detail::max_entries_per_notice)
        return bad("max_room_members is 1 to " + std::to_string(detail::max_entries_per_notice));
    for (const auto& name : o.admins)
        if (!valid_username(name)) return bad("admins: '" + name + "' is not a username");
    if (o.max_records_per_user == 0) return bad("max_records_per_user must be at least 1");
    if (o.max_document_bytes == 0 || o.max_document_bytes > (4u << 20))
        return bad("max_document_bytes is 1 to 4194304");
    if (o.max_queries_per_connection == 0 || o.max_queries == 0)
        return bad("max_queries_per_connection and max_queries must be at least 1");
    if (o.max_query_window == 0 || o.max_query_window > 256)
        return bad("max_query_window is 1 to 256");
    // A fragment decodes within a client's default DataFrame limits.
    if (o.query_fragment_bytes < 1024 || o.query_fragment_bytes > (1u << 20))
        return bad("query_fragment_bytes is 1024 to 1048576");
    if (o.query_parallelism == 0 || o.query_parallelism > 64)
        return bad("query_parallelism is 1 to 64");
    if (o.query_time_limit < Milliseconds(1) || o.query_idle_timeout < Milliseconds(1))
        return bad("query_time_limit and query_idle_timeout must be positive");
    if (o.files_endpoint.empty() != o.files_public_key.empty())
        return bad("files_endpoint and files_public_key go together");
    if (!o.files_endpoint.empty() && !o.files_dir.empty())
        return bad("a node with files_dir keeps the files itself: no files_endpoint");
    if (!o.files_endpoint.empty())
        if (auto at = hawser::detail::parse_host_port(o.files_endpoint); !at)
            return bad("files_endpoint: " + at.error().message);
    if (!o.files_public_key.empty() &&
        (o.files_public_key.size() != 64 ||
         o.files_public_key.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
        return bad("files_public_key is a server key: 64 hex digits");
    if (!o.files_dir.empty()) {
        if (o.quota_bytes == 0) return bad("quota_bytes must be at least 1");
        if (o.max_entries_per_user == 0) return bad("max_entries_per_user must be at least 1");
        if (o.max_transfers_per_user == 0 || o.max_transfers_per_user > 1024)
            return bad("max_transfers_per_user is 1 to 1024");
        if (o.partial_upload_lifetime < Milliseconds(1) ||
            o.partial_upload_lifetime > std::chrono::hours(24 * 3650))
            return bad("partial_upload_lifetime is 1 ms to ten years");
    }
    return {};
}

bool Cloud::valid_username(std::string_view name) {
    if (name.size() < 3 || name.size() > 32) return false;
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (!alnum(name.front())) return false;
    return std::all_of(name.begin(), name.end(),
                       [&](char c) { return alnum(c) || c == '_' || c == '-' || c == '.'; });
}

Cloud::Cloud(Server& server, zdb::Store& store, CloudOptions options) {
    if (auto ok = validate(options); !ok) throw Exception(ok.error());
    if (sodium_init() < 0) throw Exception({Errc::storage_error, "libsodium cannot start"});
    if (server.options().transport.insecure_plaintext)
        throw Exception({Errc::invalid_argument,
                         "the cloud service needs encryption: passwords and tokens would cross "
                         "the wire in clear (insecure_plaintext is set)"});
    impl_ = std::make_shared<Impl>(options);
    auto& impl = *impl_;
    impl.host = hawser::detail::host_of(server).shared_from_this();
    impl.jobs = std::make_shared<detail::Jobs>(impl.host);
    auto key = detail::load_or_create_token_key(options.secret_key_file);
    if (!key) throw Exception(key.error());
    impl.key = *key;
    auto accounts = detail::Accounts::open(store, options.database_prefix + ".accounts");
    if (!accounts) throw Exception(accounts.error());
    impl.accounts = std::move(*accounts);
    auto sessions = detail::Sessions::open(store, options.database_prefix + ".sessions");
    if (!sessions) throw Exception(sessions.error());
    impl.sessions = std::move(*sessions);
    // Expired sessions of users who never came back (a login prunes its user's own).
    if (auto swept = impl.sessions->remove_expired(unix_ms()); !swept)
        spdlog::warn("hawser cloud: expired sessions were not swept: {}", swept.error().message);
    std::array<std::uint8_t, 16> noise{};
    randombytes_buf(noise.data(), noise.size());
    auto decoy = detail::hash_password(
        std::string_view(reinterpret_cast<const char*>(noise.data()), noise.size()), impl.cost());
    if (!decoy) throw Exception(decoy.error());
    impl.decoy_hash = std::move(*decoy);
    std::weak_ptr<Impl> weak_impl = impl_;
    // Whether an account still exists, for work that must not outlive it. Worker pool.
    auto account_exists = [weak_impl](std::uint64_t user) -> Result<bool> {
        auto impl = weak_impl.lock();
        if (!impl || !impl->accounts) return false;
        auto account = impl->accounts->get(user);
        if (!account) return account.error();
        return account->has_value();
    };
    // A user's id and name as registered, by name. Worker pool.
    auto find_user =
        [weak_impl](
            std::string_view name) -> Result<std::optional<std::pair<std::uint64_t, std::string>>> {
        auto impl = weak_impl.lock();
        if (!impl || !impl->accounts || !valid_username(name))
            return std::optional<std::pair<std::uint64_t, std::string>>();
        auto account = impl->accounts->find(name);
        if (!account) return account.error();
        if (!*account) return std::optional<std::pair<std::uint64_t, std::string>>();
        return std::optional(std::pair((*account)->id, (*account)->name));
    };
    auto messenger = detail::Messenger::open(store, impl.jobs, options,
                                             {find_user,
                                              [weak_impl](std::uint64_t user) {
                                                  auto impl = weak_impl.lock();
                                                  if (!impl) return std::vector<ConnectionId>();
                                                  return impl->online.signed_in_of(user);
                                              },
                                              account_exists});
    if (!messenger) throw Exception(messenger.error());
    impl.messenger = std::move(*messenger);
    impl.presence = std::make_shared<detail::Presence>(
        impl.jobs, options,
        detail::Presence::Directory{
            find_user, [weak_impl](const std::vector<std::uint64_t>* users) {
                auto impl = weak_impl.lock();
                return impl ? impl->presences_here(users) : std::vector<detail::Presence::Entry>();
            }});
    impl.online.observe(
        [weak = std::weak_ptr(impl.presence)](ConnectionId id, std::uint64_t user, bool online) {
            if (auto presence = weak.lock()) presence->changed(id, user, online);
        });
    if (!options.files_dir.empty()) {
        auto files = detail::FileService::open(store, impl.jobs, options, account_exists);
        if (!files) throw Exception(files.error());
        impl.files = std::move(*files);
    }
    auto data = detail::DataService::open(
        store, impl.jobs, options,
        {account_exists, [weak_impl](std::string_view name) -> Result<bool> {
             auto impl = weak_impl.lock();
             if (!impl || !impl->accounts) return false;
             auto account = impl->accounts->find(name);
             if (!account) return account.error();
             return account->has_value();
         }});
    if (!data) throw Exception(data.error());
    impl.data = std::move(*data);

    auto& commands = server.commands();
    std::weak_ptr<Impl> weak = impl_;
    auto add = [&](std::string_view name,
                   void (Impl::*handler)(const Request&, DataFrame, Impl::Reply),
                   bool public_access) {
        detail::add_weak_command(commands, weak, name, handler,
                                 CommandOptions{.compress = false, .public_access = public_access});
    };
    add(register_command, &Impl::do_register, true);
    add(login_command, &Impl::do_login, true);
    add(resume_command, &Impl::do_resume, true);
    add(logout_command, &Impl::do_logout, false);
    add(password_command, &Impl::do_password, false);
    add(delete_command, &Impl::do_delete, false);
    add(sessions_command, &Impl::do_sessions, false);
    add(revoke_command, &Impl::do_revoke, false);
    if (impl.files)
        impl.files->add_commands(commands);
    else if (!options.files_endpoint.empty())
        detail::add_files_elsewhere(commands, options.files_endpoint, options.files_public_key);
    impl.messenger->add_commands(commands);
    impl.presence->add_commands(commands);
    impl.data->add_commands(commands);
    commands.dataframe(std::string(whoami_command), [](const Request& req, DataFrame&) {
        auto& me = req.connection().service_context<SignedIn>();
        DataFrame out;
        out << me.user << me.name << me.session;
        return out;
    });
    commands.require([](const Connection& c) { return c.service_context<SignedIn>().active(); });
    hawser::detail::Host::ServiceHooks hooks;
    hooks.closed = [weak](ConnectionId id) {
        auto impl = weak.lock();
        if (!impl) return;
        impl->online.forget(id);
        impl->data->connection_closed(id);
        impl->presence->forget(id);
    };
    hawser::detail::host_of(server).services.push_back(std::move(hooks));
}

void Cloud::join(Cluster& cluster) {
    std::weak_ptr<Impl> weak = impl_;
    detail::CloudCluster::Local local;
    local.close = [weak](const detail::CloudCluster::Closing& c) {
        if (auto impl = weak.lock()) impl->close_here(c);
    };
    local.push = [weak](std::uint64_t user, const DataFrame& message) {
        if (auto impl = weak.lock()) impl->messenger->push_here(user, message);
    };
    local.online = [weak](const std::vector<std::uint64_t>& users) {
        std::vector<std::uint64_t> online;
        if (auto impl = weak.lock())
            for (auto user : users)
                if (!impl->online.signed_in_of(user).empty()) online.push_back(user);
        return online;
    };
    std::weak_ptr<detail::Presence> presence = impl_->presence;
    local.presence = [presence](const std::string& node,
                                std::vector<detail::CloudCluster::PresenceEntry> entries,
                                bool whole) {
        if (auto p = presence.lock()) p->changed_elsewhere(node, std::move(entries), whole);
    };
    local.presences = [weak](const std::vector<std::uint64_t>& users) {
        auto impl = weak.lock();
        return impl ? impl->presences_here(&users) : std::vector<detail::Presence::Entry>();
    };
    local.members = [presence](const std::vector<std::string>& rooms) {
        auto p = presence.lock();
        return p ? p->members_here(&rooms) : std::vector<detail::Presence::Entry>();
    };
    local.send_state = [presence] {
        if (auto p = presence.lock()) p->send_state(false);
    };
    local.node_joined = [presence](const std::string& node) {
        if (auto p = presence.lock()) p->node_joined(node);
    };
    local.node_gone = [presence](const std::string& node) {
        if (auto p = presence.lock()) p->node_gone(node);
    };
    local.notices_lost = [presence] {
        if (auto p = presence.lock()) p->send_state(true);
    };
    local.attempt = [weak](detail::Attempt kind, const std::string& key) {
        if (auto impl = weak.lock()) impl->count_elsewhere(kind, key);
    };
    local.server_push = [weak](std::uint64_t user, const std::string& command,
                               const std::string& argument) {
        auto impl = weak.lock();
        if (!impl) return;
        if (auto r = impl->server_push_here(user, command, argument); !r)
            spdlog::warn("hawser cloud: a server push from another node was not sent here: {}",
                         r.error().message);
    };
    impl_->cluster = detail::CloudCluster::join(cluster, std::move(local));
    impl_->messenger->join(impl_->cluster);
    impl_->presence->join(impl_->cluster, cluster.node_name());
}

Result<std::uint64_t> Cloud::create_account(std::string_view name, std::string_view password) {
    if (hawser::detail::Host::current_loop_index())
        return Error{Errc::would_deadlock, "create_account hashes a password: not on an IO thread"};
    if (!valid_username(name))
        return Error{Errc::invalid_argument,
                     "'" + std::string(name.substr(0, 64)) + "' is not a username"};
    if (auto ok = impl_->check_password(std::string(password)); !ok) return ok.error();
    auto hash = detail::hash_password(password, impl_->cost());
    if (!hash) return hash.error();
    return impl_->create(name, std::move(*hash));
}

Cloud::~Cloud() {
    // Commands may still come (the server can outlive the Cloud): they find it stopped. No job
    // runs after this, and the database handles go now, while the Store surely exists.
    impl_->data->stop_queries();
    impl_->jobs->stop();
    if (impl_->files) impl_->files->close();
    impl_->messenger->close();
    impl_->data->close();
    impl_->accounts.reset();
    impl_->sessions.reset();
}

std::optional<User> Cloud::user_of(const Connection& connection) {
    if (!connection.connected()) return std::nullopt;
    auto& me = connection.service_context<SignedIn>();
    if (!me.active()) return std::nullopt;
    return User{me.user, me.name, me.session};
}

Result<void> Cloud::push(std::uint64_t user, std::string_view command, const DataFrame& argument) {
    if (user == 0) return Error{Errc::invalid_argument, "no user 0: Cloud::broadcast is for all"};
    return impl_->server_push(user, command, argument);
}

Result<void> Cloud::broadcast(std::string_view command, const DataFrame& argument) {
    return impl_->server_push(0, command, argument);
}

std::vector<ConnectionId> Cloud::connections_of(std::uint64_t user) const {
    return impl_->online.signed_in_of(user);
}

CloudStats Cloud::stats() const {
    auto& c = impl_->counters;
    CloudStats s;
    s.registrations = c.registrations.load();
    s.logins = c.logins.load();
    s.resumptions = c.resumptions.load();
    s.failed_logins = c.failed_logins.load();
    s.failed_resumptions = c.failed_resumptions.load();
    s.rate_limited = c.rate_limited.load();
    s.sessions_revoked = c.sessions_revoked.load();
    s.online_connections = impl_->online.signed_in();
    s.messages_sent = impl_->messenger->sent();
    s.messages_pushed = impl_->messenger->pushed();
    s.queries_running = impl_->data->queries_running();
    s.queries_to_release = impl_->data->queries_to_release();
    s.followers = impl_->presence->followers();
    s.room_views = impl_->presence->room_views();
    if (impl_->files) {
        s.files_uploaded = impl_->files->uploaded();
        s.files_downloaded = impl_->files->downloaded();
    }
    return s;
}

}  // namespace hawser::cloud
