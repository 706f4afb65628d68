// The account commands of the cloud (docs/cloud.md): register, password, delete; members of
// Cloud::Impl (cloud_impl.hpp, which says where their work runs). Logins and sessions are in
// session_commands.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cloud/client_source.hpp"
#include "cloud/cloud_impl.hpp"
#include "cloud/command_arguments.hpp"

namespace hawser::cloud {

namespace {

using detail::read_strings;
using detail::SignedIn;
using Clock = detail::AttemptLimiter::Clock;

}  // namespace

void Cloud::Impl::do_register(const Request& req, DataFrame arg, Reply reply) {
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
    auto source = detail::client_source(req.connection());
    if (!register_per_address.try_count(source, Clock::now()))
        return limited(reply, "too many registrations from this address; wait a minute");
    bool started = on_worker(reply, true,
                             [this, name = std::move(name), password = std::move(password), reply] {
                                 auto hash = detail::hash_password(password, cost());
                                 if (!hash)
                                     return reply.fail(hash.error().code, hash.error().message);
                                 auto id = create(name, std::move(*hash));
                                 if (!id) return reply.fail(id.error().code, id.error().message);
                                 DataFrame out;
                                 out << *id;
                                 reply.reply(std::move(out));
                             });
    if (!started) return register_per_address.refund(source);
    share(detail::Attempt::registration_from_address, source);  // no refund follows it
}

void Cloud::Impl::do_password(const Request& req, DataFrame arg, Reply reply) {
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
    bool told = share(detail::Attempt::account_attempt, account_key);  // see do_login
    bool started = on_worker(
        reply, true,
        [this, me, account_key, told, old_password = std::move(old_password),
         new_password = std::move(new_password), keep = req.connection().id(), reply] {
            auto account = check_own_password(me, account_key, told, old_password);
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
            close_elsewhere({me.user, detail::CloudCluster::Which::all_but_session, {me.session}});
            if (failed) return reply.fail(failed->code, failed->message);
            reply.reply(DataFrame{});
        });
    if (!started) refund_account(account_key, told);
}

Result<detail::Account> Cloud::Impl::check_own_password(const SignedIn& me,
                                                        const std::string& account_key, bool told,
                                                        const std::string& password) {
    auto account = accounts->get(me.user);
    if (!account || !*account) {
        refund_account(account_key, told);  // no password was tested
        if (!account) return account.error();
        return Error{Errc::not_found, "the account no longer exists"};
    }
    if (!detail::verify_password((*account)->password_hash, password))
        return Error{Errc::unauthenticated, "wrong password"};
    refund_account(account_key, told);
    return std::move(**account);
}

void Cloud::Impl::do_delete(const Request& req, DataFrame arg, Reply reply) {
    auto args = read_strings(arg, {"password"});
    if (!args) return reply.fail(args.error().code, args.error().message);
    if ((*args)[0].size() > options.max_password_bytes)
        return reply.fail(Errc::invalid_argument, "the password is too long");
    auto me = req.connection().service_context<SignedIn>();
    auto account_key = detail::Accounts::key_of(me.name);
    if (!failures_per_account.try_count(account_key, Clock::now()))
        return limited(reply, "too many wrong passwords for this account; wait a minute");
    bool told = share(detail::Attempt::account_attempt, account_key);  // see do_login
    auto loop = *hawser::detail::Host::current_loop_index();
    bool started = on_worker(
        reply, true,
        [this, me, account_key, told, password = std::move((*args)[0]), loop,
         conn = req.connection(), reply] {
            auto account = check_own_password(me, account_key, told, password);
            if (!account) return reply.fail(account.error().code, account.error().message);
            // Records are kept by name, so they go while the name is still this account's:
            // once it is free, a new account may take it and write records of its own. A
            // failure here leaves the account whole, to be deleted again.
            if (auto r = data->remove_all(account_key); !r)
                return reply.fail(r.error().code, r.error().message);
            // The account goes next: a login under way then fails its second look
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
            close_where(me.user, [&](const Online& o) { return o.connection != conn.id(); });
            close_elsewhere({me.user, detail::CloudCluster::Which::all, {}});
            on_loop(loop, [this, self = shared_from_this(), conn, me, failed, reply] {
                sign_out_from(conn, me.session);
                if (failed) return reply.fail(failed->code, failed->message);
                reply.reply(DataFrame{});
            });
        });
    if (!started) refund_account(account_key, told);
}

Result<std::uint64_t> Cloud::Impl::create(std::string_view name, std::string password_hash) {
    auto id = accounts->create(name, std::move(password_hash));
    if (!id) return id;
    counters.registrations.fetch_add(1);
    if (auto r = data->remove_all(detail::Accounts::key_of(name)); !r)
        spdlog::warn("hawser cloud: records an earlier '{}' left were not removed: {}", name,
                     r.error().message);
    return id;
}

bool Cloud::Impl::is_admin_name(std::string_view name) const {
    auto key = detail::Accounts::key_of(name);
    for (const auto& admin : options.admins)
        if (detail::Accounts::key_of(admin) == key) return true;
    return false;
}

Result<void> Cloud::Impl::check_password(const std::string& password) const {
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

void Cloud::Impl::limited(const Reply& reply, std::string why) {
    counters.rate_limited.fetch_add(1);
    reply.fail(Errc::rate_limited, std::move(why));
}

}  // namespace hawser::cloud
