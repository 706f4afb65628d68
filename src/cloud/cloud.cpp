// Cloud (include/hawser/cloud/cloud.hpp): the login gate, the account and session commands, and
// the registry of this node's logged-in connections.
//
// Where work runs: a command's handler starts on the connection's IO thread (argument checks,
// rate limits, token MACs), hands the password hash and every storage call to the worker pool,
// and comes back to the IO thread to change what the connection is logged in as, then replies
// from there, so the reply never overtakes the change: the next call after a login's reply
// already passes the gate.
#include "hawser/cloud/cloud.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "cloud/accounts.hpp"
#include "cloud/attempt_limiter.hpp"
#include "cloud/client_source.hpp"
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
#include "cloud/weak_command.hpp"
#include "hawser/server.hpp"
#include "rpc/host.hpp"

namespace hawser::cloud {

namespace {

using Reply = Responder<DataFrame>;
using detail::SignedIn;
using detail::unix_ms;
using Clock = detail::AttemptLimiter::Clock;

Error wrong_credentials() {
    return {Errc::unauthenticated, "wrong username or password"};
}

// Reads the expected strings of a command's argument; invalid_argument naming the first missing.
Result<std::vector<std::string>> read_strings(DataFrame& argument,
                                              std::initializer_list<std::string_view> names) {
    std::vector<std::string> out;
    for (auto name : names) {
        auto s = argument.read_string();
        if (!s)
            return Error{Errc::invalid_argument,
                         "expected a string argument '" + std::string(name) + "'"};
        out.push_back(std::move(*s));
    }
    return out;
}

}  // namespace

struct Cloud::Impl : std::enable_shared_from_this<Impl> {
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
            for (auto conn :
                 online.connections_of(user, [](const Online& o) { return o.confirmed; }))
                out.push_back({user, conn, true});
        return out;
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

    // --- the commands ---

    void do_register(const Request& req, DataFrame arg, Reply reply) {
        auto args = read_strings(arg, {"name", "password"});
        if (!args) return reply.fail(args.error().code, args.error().message);
        std::string name = std::move((*args)[0]), password = std::move((*args)[1]);
        if (!valid_username(name))
            return reply.fail(Errc::invalid_argument,
                              "usernames are 3 to 32 of letters, digits, '_', '-' and '.', "
                              "starting with a letter or a digit");
        if (auto ok = check_password(password); !ok)
            return reply.fail(ok.error().code, ok.error().message);
        if (is_admin_name(name))
            return reply.fail(Errc::not_allowed,
                              "that name is an administrator's: it is created on the server "
                              "(Cloud::create_account, hawser-server --add-account)");
        if (!register_per_address.try_count(detail::client_source(req.connection()), Clock::now()))
            return limited(reply, "too many registrations from this address; wait a minute");
        on_worker(reply, true,
                  [this, name = std::move(name), password = std::move(password), reply] {
                      auto hash = detail::hash_password(password, cost());
                      if (!hash) return reply.fail(hash.error().code, hash.error().message);
                      auto id = create(name, std::move(*hash));
                      if (!id) return reply.fail(id.error().code, id.error().message);
                      DataFrame out;
                      out << *id;
                      reply.reply(std::move(out));
                  });
    }

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
    bool grant(const Reply& reply, bool hashes, const Connection& conn, Check check) {
        auto loop = *hawser::detail::Host::current_loop_index();
        conn.service_context<SignedIn>().pending = true;
        bool started =
            on_worker(reply, hashes, [this, loop, conn, reply, check = std::move(check)]() mutable {
                Result<Granted> granted =
                    Error{Errc::handler_error, "the cloud service failed; see the server log"};
                try {
                    granted = check();
                } catch (const std::exception& e) {
                    spdlog::error("hawser cloud: {}", e.what());
                } catch (...) {
                    spdlog::error("hawser cloud: a login failed with an unknown exception");
                }
                if (!granted) online.forget(conn.id());
                on_loop(loop, [this, self = shared_from_this(), conn, reply,
                               granted = std::move(granted)]() mutable {
                    bool open = conn.connected();
                    if (open) conn.service_context<SignedIn>().pending = false;
                    if (!granted) return reply.fail(granted.error().code, granted.error().message);
                    if (!open) {
                        online.forget(conn.id());
                        if (granted->new_session) discard_session(granted->session);
                        return;
                    }
                    sign_in(conn, granted->user, granted->session, granted->name,
                            granted->expires_ms);
                    online.confirm(conn.id());
                    DataFrame out;
                    if (!granted->token.empty()) out << granted->token;
                    out << granted->user << granted->name << granted->session
                        << granted->expires_ms;
                    reply.reply(std::move(out));
                });
            });
        if (!started) {
            conn.service_context<SignedIn>().pending = false;
            online.forget(conn.id());
        }
        return started;
    }

    // A second login or resume on a connection while one is under way.
    bool busy(const Connection& conn, const Reply& reply) {
        if (!conn.service_context<SignedIn>().pending) return false;
        reply.fail(Errc::too_many_pending, "a login is already under way on this connection");
        return true;
    }

    void do_login(const Request& req, DataFrame arg, Reply reply) {
        auto args = read_strings(arg, {"name", "password"});
        if (!args) return reply.fail(args.error().code, args.error().message);
        std::string name = std::move((*args)[0]), password = std::move((*args)[1]);
        if (password.size() > options.max_password_bytes)
            return reply.fail(Errc::invalid_argument, "the password is too long");
        const auto& conn = req.connection();
        if (busy(conn, reply)) return;
        auto source = detail::client_source(conn);
        auto account_key = detail::Accounts::key_of(name.substr(0, 64));
        // The address first: a flood from one address is refused before it can fill the
        // accounts' table. The account's attempt is counted before the hash and refunded on
        // success, so parallel guesses cannot pass its limit.
        auto now = Clock::now();
        if (!login_per_address.try_count(source, now))
            return limited(reply, "too many logins from this address; wait a minute");
        if (!failures_per_account.try_count(account_key, now)) {
            login_per_address.refund(source);
            return limited(reply, "too many failed logins for this account; wait a minute");
        }
        sign_out(conn);  // a login switches the connection: it is nobody until it succeeds
        bool started = grant(
            reply, true, conn,
            [this, name = std::move(name), password = std::move(password), account_key, conn,
             address = conn.remote_address()]() -> Result<Granted> {
                std::optional<detail::Account> account;
                if (valid_username(name)) {
                    auto found = accounts->find(name);
                    if (!found) return found.error();
                    account = std::move(*found);
                }
                // An unknown name costs the same hash as a wrong password: no timing tells
                // them apart.
                bool ok = detail::verify_password(account ? account->password_hash : decoy_hash,
                                                  password) &&
                          account;
                if (!ok) {
                    counters.failed_logins.fetch_add(1);
                    return wrong_credentials();
                }
                failures_per_account.refund(account_key);
                online.enter(conn.id(), account->id, 0);  // before the session: see OnlineRegistry
                auto session = start_session(account->id, address);
                if (!session) return session.error();
                // Looked at again once the session exists: a password change or deletion that
                // ran meanwhile either shows here or found this connection in the registry.
                auto again = accounts->get(account->id);
                if (!again || !*again || (*again)->password_hash != account->password_hash) {
                    (void)sessions->remove(session->id);
                    if (!again) return again.error();
                    counters.failed_logins.fetch_add(1);
                    return wrong_credentials();
                }
                online.set_session(conn.id(), account->id, session->id);
                counters.logins.fetch_add(1);
                return Granted{
                    account->id,
                    session->id,
                    account->name,
                    session->expires_ms,
                    detail::sign_token({account->id, session->id, session->expires_ms}, key),
                    true};
            });
        if (!started) {
            failures_per_account.refund(account_key);
            login_per_address.refund(source);
        }
    }

    // A new session for `user`, after pruning its expired ones and, at the cap, its oldest.
    Result<detail::SessionRecord> start_session(std::uint64_t user, std::string address) {
        auto existing = sessions->of_user(user);
        if (!existing) return existing.error();
        auto now = unix_ms();
        std::vector<std::uint64_t> ended;
        std::size_t live = 0;
        for (auto& s : *existing)
            if (s.expires_ms <= now)
                ended.push_back(s.id);
            else
                ++live;
        for (auto& s : *existing) {  // oldest first
            if (live < options.max_sessions_per_user) break;
            if (s.expires_ms > now) {
                ended.push_back(s.id);
                --live;
            }
        }
        if (auto failed = end_sessions(user, ended, 0)) return *failed;
        return sessions->create(user, std::move(address), now, options.session_lifetime.count());
    }

    // A login whose connection closed before it could be told: nobody holds its token.
    // Stopping or busy: it expires by itself.
    void discard_session(std::uint64_t id) {
        (void)jobs->post([self = shared_from_this(), id] { (void)self->sessions->remove(id); });
    }

    void do_resume(const Request& req, DataFrame arg, Reply reply) {
        auto args = read_strings(arg, {"token"});
        if (!args) return reply.fail(args.error().code, args.error().message);
        auto claims = detail::verify_token((*args)[0], key, unix_ms());
        if (!claims) {
            counters.failed_resumptions.fetch_add(1);
            return reply.fail(claims.error().code, claims.error().message);
        }
        const auto& conn = req.connection();
        if (busy(conn, reply)) return;
        sign_out(conn);
        online.enter(conn.id(), claims->user,
                     claims->session);  // before the check: see OnlineRegistry
        grant(reply, false, conn, [this, claims = *claims]() -> Result<Granted> {
            auto session = sessions->get(claims.session);
            if (!session) return session.error();
            std::optional<detail::Account> account;
            if (*session && (*session)->user == claims.user) {
                auto found = accounts->get(claims.user);
                if (!found) return found.error();
                account = std::move(*found);
            }
            if (!account) {
                counters.failed_resumptions.fetch_add(1);
                return Error{Errc::unauthenticated,
                             "the session was ended (logout, revoke or a password change); log "
                             "in again"};
            }
            counters.resumptions.fetch_add(1);
            return Granted{claims.user, claims.session, std::move(account->name), claims.expires_ms,
                           {},          false};
        });
    }

    void do_logout(const Request& req, DataFrame, Reply reply) {
        auto me = req.connection().service_context<SignedIn>();
        auto loop = *hawser::detail::Host::current_loop_index();
        on_worker(reply, false, [this, me, loop, conn = req.connection(), reply] {
            if (auto failed = end_sessions(me.user, {me.session}, conn.id()))
                return reply.fail(failed->code, failed->message);
            on_loop(loop, [this, self = shared_from_this(), conn, me, reply] {
                sign_out_from(conn, me.session);
                reply.reply(DataFrame{});
            });
        });
    }

    void do_password(const Request& req, DataFrame arg, Reply reply) {
        auto args = read_strings(arg, {"old password", "new password"});
        if (!args) return reply.fail(args.error().code, args.error().message);
        std::string old_password = std::move((*args)[0]), new_password = std::move((*args)[1]);
        if (auto ok = check_password(new_password); !ok)
            return reply.fail(ok.error().code, ok.error().message);
        if (old_password.size() > options.max_password_bytes)
            return reply.fail(Errc::invalid_argument, "the password is too long");
        auto me = req.connection().service_context<SignedIn>();
        auto account_key = detail::Accounts::key_of(me.name);
        if (!failures_per_account.try_count(account_key, Clock::now()))
            return limited(reply, "too many wrong passwords for this account; wait a minute");
        bool started = on_worker(
            reply, true,
            [this, me, account_key, old_password = std::move(old_password),
             new_password = std::move(new_password), keep = req.connection().id(), reply] {
                auto account = check_own_password(me, account_key, old_password);
                if (!account) return reply.fail(account.error().code, account.error().message);
                auto hash = detail::hash_password(new_password, cost());
                if (!hash) return reply.fail(hash.error().code, hash.error().message);
                if (auto r = accounts->set_password(me.user, std::move(*hash)); !r)
                    return reply.fail(r.error().code, r.error().message);
                // Whoever else held a session may have held it with the old password: end
                // them all but this one, and close every other connection of the user (logins
                // under way included: see OnlineRegistry).
                auto all = sessions->of_user(me.user);
                if (!all) return reply.fail(all.error().code, all.error().message);
                std::vector<std::uint64_t> ended;
                for (auto& s : *all)
                    if (s.id != me.session) ended.push_back(s.id);
                auto failed = end_sessions(me.user, ended, keep);
                close_where(me.user, [&](const Online& o) {
                    return o.connection != keep && o.session != me.session;
                });
                close_elsewhere(
                    {me.user, detail::CloudCluster::Which::all_but_session, {me.session}});
                if (failed) return reply.fail(failed->code, failed->message);
                reply.reply(DataFrame{});
            });
        if (!started) failures_per_account.refund(account_key);
    }

    // The caller's account, if `password` is its password. The attempt was counted against the
    // account before; a right password refunds it.
    Result<detail::Account> check_own_password(const SignedIn& me, const std::string& account_key,
                                               const std::string& password) {
        auto account = accounts->get(me.user);
        if (!account) return account.error();
        if (!*account) return Error{Errc::not_found, "the account no longer exists"};
        if (!detail::verify_password((*account)->password_hash, password))
            return Error{Errc::unauthenticated, "wrong password"};
        failures_per_account.refund(account_key);
        return std::move(**account);
    }

    void do_delete(const Request& req, DataFrame arg, Reply reply) {
        auto args = read_strings(arg, {"password"});
        if (!args) return reply.fail(args.error().code, args.error().message);
        if ((*args)[0].size() > options.max_password_bytes)
            return reply.fail(Errc::invalid_argument, "the password is too long");
        auto me = req.connection().service_context<SignedIn>();
        auto account_key = detail::Accounts::key_of(me.name);
        if (!failures_per_account.try_count(account_key, Clock::now()))
            return limited(reply, "too many wrong passwords for this account; wait a minute");
        auto loop = *hawser::detail::Host::current_loop_index();
        bool started = on_worker(
            reply, true,
            [this, me, account_key, password = std::move((*args)[0]), loop, conn = req.connection(),
             reply] {
                auto account = check_own_password(me, account_key, password);
                if (!account) return reply.fail(account.error().code, account.error().message);
                // The account goes first: a login under way then fails its second look
                // (OnlineRegistry).
                if (auto r = accounts->remove(me.user); !r)
                    return reply.fail(r.error().code, r.error().message);
                auto all = sessions->of_user(me.user);
                if (!all) return reply.fail(all.error().code, all.error().message);
                std::vector<std::uint64_t> ended;
                for (auto& s : *all) ended.push_back(s.id);
                // The account is gone: whatever fails from here, this connection is signed out.
                auto failed = end_sessions(me.user, ended, conn.id());
                if (files)
                    if (auto r = files->remove_all(me.user); !r && !failed) failed = r.error();
                if (auto r = messenger->remove_all(me.user); !r && !failed) failed = r.error();
                if (auto r = data->remove_all(detail::Accounts::key_of(me.name)); !r && !failed)
                    failed = r.error();
                close_where(me.user, [&](const Online& o) { return o.connection != conn.id(); });
                close_elsewhere({me.user, detail::CloudCluster::Which::all, {}});
                on_loop(loop, [this, self = shared_from_this(), conn, me, failed, reply] {
                    sign_out_from(conn, me.session);
                    if (failed) return reply.fail(failed->code, failed->message);
                    reply.reply(DataFrame{});
                });
            });
        if (!started) failures_per_account.refund(account_key);
    }

    void do_sessions(const Request& req, DataFrame, Reply reply) {
        auto me = req.connection().service_context<SignedIn>();
        on_worker(reply, false, [this, me, reply] {
            auto all = sessions->of_user(me.user);
            if (!all) return reply.fail(all.error().code, all.error().message);
            auto now = unix_ms();
            Array list;
            for (auto& s : *all) {
                if (s.expires_ms <= now) continue;
                list.emplace_back(Map{{"id", Value(s.id)},
                                      {"created_ms", Value(s.created_ms)},
                                      {"expires_ms", Value(s.expires_ms)},
                                      {"address", Value(s.address)},
                                      {"current", Value(s.id == me.session)}});
            }
            DataFrame out;
            out << Value(std::move(list));
            reply.reply(std::move(out));
        });
    }

    void do_revoke(const Request& req, DataFrame arg, Reply reply) {
        auto id = arg.read_uint();
        if (!id) return reply.fail(Errc::invalid_argument, "expected a session id (an integer)");
        auto me = req.connection().service_context<SignedIn>();
        auto loop = *hawser::detail::Host::current_loop_index();
        on_worker(reply, false, [this, me, id = *id, loop, conn = req.connection(), reply] {
            auto session = sessions->get(id);
            if (!session) return reply.fail(session.error().code, session.error().message);
            // Another user's session is as absent as one that never was.
            if (!*session || (*session)->user != me.user)
                return reply.fail(Errc::not_found, "no such session");
            if (auto failed = end_sessions(me.user, {id}, conn.id()))
                return reply.fail(failed->code, failed->message);
            if (id != me.session) return reply.reply(DataFrame{});
            on_loop(loop, [this, self = shared_from_this(), conn, id, reply] {
                sign_out_from(conn, id);
                reply.reply(DataFrame{});
            });
        });
    }

    // A new account, which starts with no records whatever an account of its name left behind
    // (a deletion cut short). Worker pool.
    Result<std::uint64_t> create(std::string_view name, std::string password_hash) {
        auto id = accounts->create(name, std::move(password_hash));
        if (!id) return id;
        counters.registrations.fetch_add(1);
        if (auto r = data->remove_all(detail::Accounts::key_of(name)); !r)
            spdlog::warn("hawser cloud: records an earlier '{}' left were not removed: {}", name,
                         r.error().message);
        return id;
    }

    bool is_admin_name(std::string_view name) const {
        auto key = detail::Accounts::key_of(name);
        for (const auto& admin : options.admins)
            if (detail::Accounts::key_of(admin) == key) return true;
        return false;
    }

    Result<void> check_password(const std::string& password) const {
        if (password.size() < options.min_password_bytes)
            return Error{
                Errc::invalid_argument,
                "passwords are at least " + std::to_string(options.min_password_bytes) + " bytes"};
        if (password.size() > options.max_password_bytes)
            return Error{
                Errc::invalid_argument,
                "passwords are at most " + std::to_string(options.max_password_bytes) + " bytes"};
        return {};
    }

    void limited(const Reply& reply, std::string why) {
        counters.rate_limited.fetch_add(1);
        reply.fail(Errc::rate_limited, std::move(why));
    }
};

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
    auto messenger = detail::Messenger::open(
        store, impl.jobs, options,
        {find_user,
         [weak_impl](std::uint64_t user) {
             auto impl = weak_impl.lock();
             if (!impl) return std::vector<ConnectionId>();
             return impl->online.connections_of(user, [](const auto& o) { return o.confirmed; });
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
    auto add = [&](std::string_view name, void (Impl::*handler)(const Request&, DataFrame, Reply),
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
    if (impl.files) impl.files->add_commands(commands);
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
                if (!impl->online.connections_of(user, [](const auto& o) { return o.confirmed; })
                         .empty())
                    online.push_back(user);
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

std::vector<ConnectionId> Cloud::connections_of(std::uint64_t user) const {
    return impl_->online.connections_of(user, [](const auto&) { return true; });
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
    s.online_connections = impl_->online.size();
    s.messages_sent = impl_->messenger->sent();
    s.messages_pushed = impl_->messenger->pushed();
    s.queries_running = impl_->data->queries_running();
    s.followers = impl_->presence->followers();
    if (impl_->files) {
        s.files_uploaded = impl_->files->uploaded();
        s.files_downloaded = impl_->files->downloaded();
    }
    return s;
}

}  // namespace hawser::cloud
