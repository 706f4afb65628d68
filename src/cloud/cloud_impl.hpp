// Cloud::Impl: what one Cloud holds (its options, accounts, sessions, limits, the registry of
// this node's logged-in connections and the services built on them) and the helpers its parts
// share. The account commands are in account_commands.cpp, the session commands in
// session_commands.cpp; the wiring (the constructor, join, the public methods) in cloud.cpp.
//
// Where work runs: a command's handler starts on the connection's IO thread (argument checks,
// rate limits, token MACs), hands the password hash and every storage call to the worker pool,
// and comes back to the IO thread to change what the connection is logged in as, then replies
// from there, so the reply never overtakes the change: the next call after a login's reply
// already passes the gate.
// Ownership: shared by the Cloud; commands, hooks and jobs hold it weakly or for their run.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cloud/accounts.hpp"
#include "cloud/attempt_limiter.hpp"
#include "cloud/cloud_cluster.hpp"
#include "cloud/data_service.hpp"
#include "cloud/file_service.hpp"
#include "cloud/jobs.hpp"
#include "cloud/messenger.hpp"
#include "cloud/online_registry.hpp"
#include "cloud/password.hpp"
#include "cloud/presence.hpp"
#include "cloud/session_token.hpp"
#include "cloud/sessions.hpp"
#include "cloud/signed_in.hpp"
#include "hawser/cloud/cloud.hpp"
#include "hawser/commands.hpp"
#include "rpc/broadcast.hpp"
#include "rpc/host.hpp"

namespace hawser::cloud {

struct Cloud::Impl : std::enable_shared_from_this<Impl> {
    using Reply = Responder<DataFrame>;
    using SignedIn = detail::SignedIn;

    Impl(const CloudOptions& o)
        : options(o),
          login_per_address(o.login_attempts_per_address, o.login_window, o.max_tracked),
          failures_per_account(o.failed_logins_per_account, o.login_window, o.max_tracked),
          register_per_address(o.registrations_per_address, o.login_window, o.max_tracked) {}

    const CloudOptions options;
    std::shared_ptr<hawser::detail::Host> host;
    detail::TokenKey key{};
    std::unique_ptr<detail::Accounts> accounts;
    std::unique_ptr<detail::Sessions> sessions;
    detail::AttemptLimiter login_per_address, failures_per_account, register_per_address;
    // An unknown user's login is checked against this, so that it takes as long as a known one's.
    std::string decoy_hash;
    std::atomic<std::size_t> hashes_queued{0};

    struct Counters {
        std::atomic<std::uint64_t> registrations{0}, logins{0}, resumptions{0};
        std::atomic<std::uint64_t> failed_logins{0}, failed_resumptions{0}, rate_limited{0};
        std::atomic<std::uint64_t> sessions_revoked{0};
    } counters;

    using Online = detail::OnlineRegistry::Online;
    detail::OnlineRegistry online;

    std::shared_ptr<detail::Jobs> jobs;
    std::shared_ptr<detail::FileService> files;  // when CloudOptions::files_dir is set
    std::shared_ptr<detail::Messenger> messenger;
    std::shared_ptr<detail::Presence> presence;
    std::shared_ptr<detail::DataService> data;
    std::shared_ptr<detail::CloudCluster> cluster;  // set by join, before start

    detail::PasswordCost cost() const { return {options.password_ops, options.password_memory}; }

    // --- running work where it belongs ---

    // Runs `job` on the worker pool. `hashes` jobs count against max_hashes_queued. A stopped
    // cloud, a full pool or too many hashes answer at once (false: the job will not run); a
    // job that throws answers handler_error.
    template <class Job>
    bool on_worker(const Reply& reply, bool hashes, Job job) {
        if (hashes && hashes_queued.fetch_add(1) >= options.max_hashes_queued) {
            hashes_queued.fetch_sub(1);
            reply.fail(Errc::overloaded, "too many logins at once; try again shortly");
            return false;
        }
        bool posted = jobs->post_for(
            reply, [self = shared_from_this(), hashes, job = std::move(job)]() mutable {
                struct Unqueue {
                    Impl* impl;
                    bool hashes;
                    ~Unqueue() {
                        if (hashes) impl->hashes_queued.fetch_sub(1);
                    }
                } unqueue{self.get(), hashes};
                job();
            });
        if (!posted && hashes) hashes_queued.fetch_sub(1);
        return posted;
    }

    // Runs `f` on the IO thread `loop` (the connection's), as the application's code runs.
    void on_loop(std::size_t loop, std::function<void()> f) {
        host->post_user(loop, "cloud", std::move(f));
    }

    // What the connection is logged in as (its IO thread). The registry is done by then.
    static void sign_in(const Connection& c, std::uint64_t user, std::uint64_t session,
                        std::string name, std::int64_t expires_ms) {
        auto& ctx = c.service_context<SignedIn>();
        ctx.user = user;
        ctx.session = session;
        ctx.name = std::move(name);
        ctx.expires_ms = expires_ms;
    }
    void sign_out(const Connection& c) {
        if (!c.connected()) return;
        auto& ctx = c.service_context<SignedIn>();
        ctx.user = ctx.session = 0;
        ctx.name.clear();
        online.forget(c.id());
        data->connection_closed(c.id());  // its queries and follows were the user's
        presence->forget(c.id());
    }
    // Signs out a connection still on `session` (a logout, revoke or deletion that ended it):
    // one that meanwhile started another login keeps it.
    void sign_out_from(const Connection& c, std::uint64_t session) {
        if (c.connected() && c.service_context<SignedIn>().session == session) sign_out(c);
    }

    // Closes this node's connections of `user` that `which` picks, each on its own IO thread
    // (a connection is only ever released there).
    template <class Which>
    void close_where(std::uint64_t user, Which which) {
        for (auto id : online.connections_of(user, which))
            jobs->with_connection(id, [](const Connection& c) { c.close(); });
    }

    // Removes the sessions, then closes the connections using them (but `keep`), even when a
    // removal failed (the first failure is returned). Worker pool.
    std::optional<Error> end_sessions(std::uint64_t user, const std::vector<std::uint64_t>& ended,
                                      ConnectionId keep) {
        std::optional<Error> failed;
        for (auto id : ended) {
            if (auto r = sessions->remove(id); !r)
                failed = failed ? failed : r.error();
            else
                counters.sessions_revoked.fetch_add(1);
        }
        close_where(user, [&](const Online& o) {
            return o.connection != keep &&
                   std::find(ended.begin(), ended.end(), o.session) != ended.end();
        });
        if (!ended.empty())
            close_elsewhere({user, detail::CloudCluster::Which::on_sessions, ended});
        return failed;
    }

    // This node's signed-in connections: of `users`, or all (null).
    std::vector<detail::Presence::Entry> presences_here(const std::vector<std::uint64_t>* users) {
        std::vector<detail::Presence::Entry> out;
        if (!users) {
            for (auto& [user, conn] : online.confirmed()) out.push_back({user, conn, true});
            return out;
        }
        for (auto user : *users)
            for (auto conn : online.signed_in_of(user)) out.push_back({user, conn, true});
        return out;
    }

    // Rate limits hold for the cluster: an attempt counted here is counted by the other nodes
    // (share, false when they were not told), and theirs here (count_elsewhere). A password
    // is told when it is accepted, before its job is posted, so a refund (right, or never run)
    // sent after it arrives after it.
    bool share(detail::Attempt kind, const std::string& key) {
        return cluster && cluster->attempt(kind, key);
    }
    void count_elsewhere(detail::Attempt kind, const std::string& key) {
        using detail::Attempt;
        auto now = detail::AttemptLimiter::Clock::now();
        switch (kind) {
            case Attempt::login_from_address:
                return login_per_address.count(key, now);
            case Attempt::account_attempt:
                return failures_per_account.count(key, now);
            case Attempt::registration_from_address:
                return register_per_address.count(key, now);
            case Attempt::account_refund:
                return failures_per_account.refund(key);
            case Attempt::address_refund:
                return login_per_address.refund(key);
        }
    }
    // An account's attempt that was right, or tested no password: taken back here, and where
    // it was told.
    void refund_account(const std::string& account_key, bool told) {
        failures_per_account.refund(account_key);
        if (told) share(detail::Attempt::account_refund, account_key);
    }

    // Cloud::push and broadcast: here, then to the other nodes.
    Result<void> server_push(std::uint64_t user, std::string_view command,
                             const DataFrame& argument) {
        if (command.starts_with("cloud.") || command.starts_with("hawser."))
            return Error{Errc::invalid_argument,
                         "command names starting with cloud. or hawser. are taken"};
        if (cluster &&
            argument.bytes().size() + command.size() + 256 > cluster->max_message_bytes())
            return Error{Errc::invalid_argument, "the argument is over the cluster's message size"};
        if (auto r = server_push_here(user, command, argument.bytes()); !r) return r.error();
        if (cluster && !cluster->server_push(user, command, argument.bytes()))
            return Error{Errc::cluster_unavailable,
                         "pushed on this node; the other nodes could not be told"};
        return {};
    }

    // A server push to this node's connections of `user` (0: every signed-in one): encoded
    // once, sent by each IO thread to those of its connections still signed in (as that user)
    // and not congested (hawser::detail::fan_out).
    Result<void> server_push_here(std::uint64_t user, std::string_view command,
                                  std::string_view argument) {
        hawser::detail::FanOut to;
        std::vector<ConnectionId> ids;
        if (user != 0) {
            ids = online.signed_in_of(user);
            to.only = &ids;
        }
        to.admit = [user](const Connection& c) {
            auto& them = c.service_context<SignedIn>();
            return them.active() && (user == 0 || them.user == user);
        };
        return hawser::detail::fan_out(host, hawser::detail::Kind::direct_dataframe, command,
                                       argument, true, std::move(to));
    }

    // The other nodes close their connections of a user (after this node closed its own).
    void close_elsewhere(const detail::CloudCluster::Closing& closing) {
        if (cluster) cluster->close(closing);
    }
    // Another node told this one to close connections of a user.
    void close_here(const detail::CloudCluster::Closing& c) {
        using Which = detail::CloudCluster::Which;
        close_where(c.user, [&](const Online& o) {
            switch (c.which) {
                case Which::on_sessions:
                    return std::find(c.sessions.begin(), c.sessions.end(), o.session) !=
                           c.sessions.end();
                case Which::all_but_session:
                    return o.session != c.sessions.front();
                case Which::all:
                    break;
            }
            return true;
        });
    }

    // --- the account and session commands (account_commands.cpp, session_commands.cpp) ---

    void do_register(const Request& req, DataFrame arg, Reply reply);

    // What a login or resume grants the connection.
    struct Granted {
        std::uint64_t user = 0, session = 0;
        std::string name;
        std::int64_t expires_ms = 0;
        std::string token;         // a login's new token; empty for a resume
        bool new_session = false;  // a login's: discarded if the connection closed meanwhile
    };

    // Runs a login or resume: `check` on the worker pool, then back on the connection's loop to
    // sign it in and reply. One at a time per connection (`pending`), so that no other attempt
    // can take its registry entry. Every way it ends clears `pending` on the loop; every way but
    // success forgets the entry.
    template <class Check>
    bool grant(const Reply& reply, bool hashes, const Connection& conn, Check check);

    // A second login or resume on a connection while one is under way.
    bool busy(const Connection& conn, const Reply& reply);

    void do_login(const Request& req, DataFrame arg, Reply reply);

    // A new session for `user`, after pruning its expired ones and, at the cap, its oldest.
    Result<detail::SessionRecord> start_session(std::uint64_t user, std::string address);

    // A login whose connection closed before it could be told: nobody holds its token.
    // Stopping or busy: it expires by itself.
    void discard_session(std::uint64_t id);

    void do_resume(const Request& req, DataFrame arg, Reply reply);

    void do_logout(const Request& req, DataFrame, Reply reply);

    void do_password(const Request& req, DataFrame arg, Reply reply);

    // The caller's account, if `password` is its password. The attempt was counted against the
    // account before (and `told` to the other nodes); a right password, or none tested,
    // refunds it.
    Result<detail::Account> check_own_password(const SignedIn& me, const std::string& account_key,
                                               bool told, const std::string& password);

    void do_delete(const Request& req, DataFrame arg, Reply reply);

    void do_sessions(const Request& req, DataFrame, Reply reply);

    void do_revoke(const Request& req, DataFrame arg, Reply reply);

    // A new account, which starts with no records whatever an account of its name left behind
    // (a deletion cut short). Worker pool.
    Result<std::uint64_t> create(std::string_view name, std::string password_hash);

    bool is_admin_name(std::string_view name) const;

    Result<void> check_password(const std::string& password) const;

    void limited(const Reply& reply, std::string why);
};

}  // namespace hawser::cloud
