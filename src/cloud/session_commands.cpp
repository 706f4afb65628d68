// The session commands of the cloud (docs/cloud.md): login, resume, logout, sessions, revoke,
// and the grant that signs a connection in; members of Cloud::Impl (cloud_impl.hpp, which says
// where their work runs).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cloud/client_source.hpp"
#include "cloud/cloud_impl.hpp"
#include "cloud/command_arguments.hpp"
#include "cloud/unix_ms.hpp"

namespace hawser::cloud {

namespace {

using detail::read_strings;
using detail::SignedIn;
using detail::unix_ms;
using detail::wrong_credentials;
using Clock = detail::AttemptLimiter::Clock;

}  // namespace

template <class Check>
bool Cloud::Impl::grant(const Reply& reply, bool hashes, const Connection& conn, Check check) {
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
                sign_in(conn, granted->user, granted->session, granted->name, granted->expires_ms);
                online.confirm(conn.id());
                DataFrame out;
                if (!granted->token.empty()) out << granted->token;
                out << granted->user << granted->name << granted->session << granted->expires_ms;
                reply.reply(std::move(out));
            });
        });
    if (!started) {
        conn.service_context<SignedIn>().pending = false;
        online.forget(conn.id());
    }
    return started;
}

bool Cloud::Impl::busy(const Connection& conn, const Reply& reply) {
    if (!conn.service_context<SignedIn>().pending) return false;
    reply.fail(Errc::too_many_pending, "a login is already under way on this connection");
    return true;
}

void Cloud::Impl::do_login(const Request& req, DataFrame arg, Reply reply) {
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
    // Told when accepted (see share): guesses waiting on several nodes count on all of them.
    bool told_address = share(detail::Attempt::login_from_address, source);
    bool told = share(detail::Attempt::account_attempt, account_key);
    bool started = grant(
        reply, true, conn,
        [this, name = std::move(name), password = std::move(password), account_key, conn,
         address = conn.remote_address(), told]() -> Result<Granted> {
            std::optional<detail::Account> account;
            if (valid_username(name)) {
                auto found = accounts->find(name);
                if (!found) {
                    refund_account(account_key, told);  // no password was tested
                    return found.error();
                }
                account = std::move(*found);
            }
            // An unknown name costs the same hash as a wrong password: no timing tells
            // them apart.
            bool ok =
                detail::verify_password(account ? account->password_hash : decoy_hash, password) &&
                account;
            if (!ok) {
                counters.failed_logins.fetch_add(1);
                return wrong_credentials();
            }
            refund_account(account_key, told);
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
            // And the session, once the registry names it: a revocation of it that ran before
            // found no connection on it here (it looked for the session, not 0), but shows now.
            auto still = sessions->get(session->id);
            if (!still) {
                (void)sessions->remove(session->id);
                return still.error();
            }
            if (!*still) {
                counters.failed_logins.fetch_add(1);
                return Error{Errc::unauthenticated, "the session was ended while logging in"};
            }
            counters.logins.fetch_add(1);
            return Granted{account->id,
                           session->id,
                           account->name,
                           session->expires_ms,
                           detail::sign_token({account->id, session->id, session->expires_ms}, key),
                           true};
        });
    if (!started) {
        refund_account(account_key, told);
        login_per_address.refund(source);
        if (told_address) share(detail::Attempt::address_refund, source);
    }
}

Result<detail::SessionRecord> Cloud::Impl::start_session(std::uint64_t user, std::string address) {
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

void Cloud::Impl::discard_session(std::uint64_t id) {
    (void)jobs->post([self = shared_from_this(), id] { (void)self->sessions->remove(id); });
}

void Cloud::Impl::do_resume(const Request& req, DataFrame arg, Reply reply) {
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

void Cloud::Impl::do_logout(const Request& req, DataFrame, Reply reply) {
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

void Cloud::Impl::do_sessions(const Request& req, DataFrame, Reply reply) {
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

void Cloud::Impl::do_revoke(const Request& req, DataFrame arg, Reply reply) {
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

}  // namespace hawser::cloud
