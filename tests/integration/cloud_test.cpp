// The cloud service's accounts, sessions and login gate, end to end over loopback: a real
// server with a real ZDB store, real clients, Argon2id at libsodium's minimum cost.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "integration/cloud_support.hpp"

using namespace hawser;
using namespace hawser::test;

TEST(Cloud, CommandsNeedALoginUnlessPublic) {
    CloudServer s(scratch("gate"), {}, [](Commands& c) {
        c.console("secret", [](const Request& req, std::string_view) {
            auto me = Cloud::user_of(req.connection());
            return me ? me->name : std::string("nobody");
        });
        c.console(
            "open", [](const Request&, std::string_view) { return std::string("hi"); },
            CommandOptions{.public_access = true});
        c.stream("upload", [](const Request&, IncomingStream) {});
    });
    auto c = s.client();
    auto refused = c->connection().call("secret", "", use_wait);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unauthenticated);
    EXPECT_EQ(c->connection().call("open", "", use_wait).value(), "hi");
    EXPECT_EQ(code_of(call(*c, Cloud::whoami_command, {})), Errc::unauthenticated);
    // A stream before login is refused with the same code.
    auto stream = c->connection().send_stream("upload", "bytes", use_wait);
    ASSERT_FALSE(stream);
    EXPECT_EQ(stream.error().code, Errc::unauthenticated);

    auto id = register_user(*c, "Ann");
    EXPECT_GT(id, 0u);
    auto l = login(*c, "Ann", "correct horse").value();
    EXPECT_EQ(l.user, id);
    EXPECT_EQ(c->connection().call("secret", "", use_wait).value(), "Ann");
    auto who = call(*c, Cloud::whoami_command, {}).value();
    EXPECT_EQ(who.get<std::uint64_t>(), id);
    EXPECT_EQ(who.get<std::string>(), "Ann");
    EXPECT_EQ(who.get<std::uint64_t>(), l.session);
    EXPECT_EQ(s.cloud->connections_of(id).size(), 1u);
}

TEST(Cloud, RegistrationChecksNamesAndPasswords) {
    CloudServer s(scratch("register"));
    auto c = s.client();
    for (std::string bad : std::initializer_list<std::string>{
             "ab", "../x", "/etc/passwd", "a/../../b", std::string("nul\0x", 5),
             std::string(10000, 'a'), "_under", "ünï", "spa ce", "tab\tname"}) {
        auto r = call(*c, Cloud::register_command, args({bad, "long enough"}));
        EXPECT_EQ(code_of(r), Errc::invalid_argument) << bad;
    }
    EXPECT_EQ(code_of(call(*c, Cloud::register_command, args({"bob", "short"}))),
              Errc::invalid_argument);
    EXPECT_EQ(code_of(call(*c, Cloud::register_command, args({"bob", std::string(2000, 'p')}))),
              Errc::invalid_argument);
    EXPECT_EQ(code_of(call(*c, Cloud::register_command, args({"bob"}))), Errc::invalid_argument);
    register_user(*c, "bob");
    // Names compare without case.
    EXPECT_EQ(code_of(call(*c, Cloud::register_command, args({"BOB", "another one"}))),
              Errc::already_exists);
    EXPECT_TRUE(login(*c, "Bob", "correct horse"));
}

TEST(Cloud, WrongPasswordsAndUnknownUsersGetTheSameAnswer) {
    CloudServer s(scratch("wrong"));
    auto c = s.client();
    register_user(*c, "carol");
    auto wrong = login(*c, "carol", "not the password");
    auto unknown = login(*c, "nobody-here", "not the password");
    auto invalid = login(*c, "../../etc", "not the password");
    ASSERT_FALSE(wrong);
    ASSERT_FALSE(unknown);
    ASSERT_FALSE(invalid);
    EXPECT_EQ(wrong.error().code, Errc::unauthenticated);
    EXPECT_EQ(unknown.error().code, wrong.error().code);
    EXPECT_EQ(unknown.error().message, wrong.error().message);
    EXPECT_EQ(invalid.error().message, wrong.error().message);
    EXPECT_EQ(code_of(call(*c, Cloud::whoami_command, {})), Errc::unauthenticated);
    EXPECT_EQ(s.cloud->stats().failed_logins, 3u);
}

TEST(Cloud, BruteForceHitsTheAccountLimitThenTheAddressLimit) {
    CloudServer s(scratch("brute"), [](cloud::CloudOptions& o) {
        o.failed_logins_per_account = 3;
        o.login_attempts_per_address = 8;
        o.login_window = std::chrono::minutes(10);
    });
    auto c = s.client();
    register_user(*c, "dave");
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(login(*c, "dave", "guess " + std::to_string(i)).error().code,
                  Errc::unauthenticated);
    // Now even the right password is refused for this account, without a hash.
    EXPECT_EQ(login(*c, "dave", "correct horse").error().code, Errc::rate_limited);
    // Other accounts from this address still work until the address limit: 8 attempts, of
    // which 4 are used now.
    register_user(*c, "erin");
    EXPECT_TRUE(login(*c, "erin", "correct horse"));
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(login(*c, "user" + std::to_string(i), "wrong password").error().code,
                  Errc::unauthenticated);
    EXPECT_EQ(login(*c, "user9", "wrong password").error().code, Errc::rate_limited);
    EXPECT_EQ(login(*c, "erin", "correct horse").error().code, Errc::rate_limited);
    EXPECT_GE(s.cloud->stats().rate_limited, 2u);
}

TEST(Cloud, AResumedSessionSkipsThePasswordAndSurvivesARestart) {
    auto dir = scratch("resume");
    Login l;
    std::uint64_t id = 0;
    {
        CloudServer s(dir);
        auto c = s.client();
        id = register_user(*c, "fay");
        l = login(*c, "fay", "correct horse").value();
        EXPECT_EQ(l.token.substr(0, 3), "v1.");
        EXPECT_GT(l.expires_ms, 0);
    }
    CloudServer s(dir);  // the same store and key: sessions outlive the process
    auto c = s.client();
    auto r = call(*c, Cloud::resume_command, args({l.token})).value();
    EXPECT_EQ(r.get<std::uint64_t>(), id);
    EXPECT_EQ(r.get<std::string>(), "fay");
    EXPECT_EQ(r.get<std::uint64_t>(), l.session);
    EXPECT_EQ(call(*c, Cloud::whoami_command, {}).value().get<std::uint64_t>(), id);
    EXPECT_EQ(s.cloud->stats().resumptions, 1u);
    EXPECT_EQ(s.cloud->stats().logins, 0u);
}

TEST(Cloud, ForgedTamperedAndForeignTokensAreRefused) {
    auto dir = scratch("forged");
    CloudServer s(dir);
    auto c = s.client();
    register_user(*c, "gus");
    auto l = login(*c, "gus", "correct horse").value();
    auto refused = [&](const std::string& token) {
        auto other = s.client();
        auto r = call(*other, Cloud::resume_command, args({token}));
        return code_of(r) == Errc::unauthenticated &&
               code_of(call(*other, Cloud::whoami_command, {})) == Errc::unauthenticated;
    };
    EXPECT_TRUE(refused(""));
    EXPECT_TRUE(refused("v1."));
    EXPECT_TRUE(refused(std::string(10000, 'x')));
    EXPECT_TRUE(refused(l.token + "A"));
    for (std::size_t at : {std::size_t(3), std::size_t(10), l.token.size() - 1}) {
        auto t = l.token;
        t[at] = t[at] == 'A' ? 'B' : 'A';
        EXPECT_TRUE(refused(t)) << at;
    }
    // A token made with another server's key names a real session but is not ours.
    CloudServer other(scratch("forged_other"));
    auto oc = other.client();
    register_user(*oc, "gus");
    auto foreign = login(*oc, "gus", "correct horse").value();
    EXPECT_TRUE(refused(foreign.token));
    // The genuine token still works.
    auto again = s.client();
    EXPECT_TRUE(call(*again, Cloud::resume_command, args({l.token})));
}

TEST(Cloud, ExpiredTokensAreRefused) {
    CloudServer s(scratch("expired"),
                  [](cloud::CloudOptions& o) { o.session_lifetime = std::chrono::seconds(1); });
    auto c = s.client();
    register_user(*c, "hal");
    auto l = login(*c, "hal", "correct horse").value();
    // Waits for the wall clock to pass the token's own expiry (a fact the token states).
    ASSERT_TRUE(eventually(
        [&] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count() > l.expires_ms;
        },
        5s));
    auto r = call(*s.client(), Cloud::resume_command, args({l.token}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::unauthenticated);
    EXPECT_NE(r.error().message.find("expired"), std::string::npos);
    // The connection that logged in is still open, and no longer passes the gate.
    EXPECT_TRUE(c->connected());
    EXPECT_EQ(code_of(call(*c, Cloud::whoami_command, {})), Errc::unauthenticated);
    // A restart sweeps the expired session from the store.
    auto dir = s.dir;
    auto sessions = s.store->database("cloud.sessions").value();
    EXPECT_EQ(sessions->count(), 1u);
    sessions.reset();
    c.reset();
    s.server.reset();
    s.cloud.reset();
    s.store.reset();
    CloudServer again(dir);
    EXPECT_EQ(again.store->database("cloud.sessions").value()->count(), 0u);
}

TEST(Cloud, LogoutEndsTheSessionAndReplayedTokensFail) {
    CloudServer s(scratch("logout"));
    auto a = s.client();
    register_user(*a, "ivy");
    auto l = login(*a, "ivy", "correct horse").value();
    auto b = s.client();  // a second connection resumes the same session
    ASSERT_TRUE(call(*b, Cloud::resume_command, args({l.token})));
    ASSERT_TRUE(call(*a, Cloud::logout_command, {}));
    EXPECT_EQ(code_of(call(*a, Cloud::whoami_command, {})), Errc::unauthenticated);
    // The other connection on that session is closed; the token no longer resumes.
    EXPECT_TRUE(eventually([&] { return !b->connected(); }));
    EXPECT_EQ(code_of(call(*s.client(), Cloud::resume_command, args({l.token}))),
              Errc::unauthenticated);
    EXPECT_TRUE(eventually([&] { return s.cloud->connections_of(l.user).empty(); }));
}

TEST(Cloud, AResumeStillBeingCheckedIsNotOnline) {
    // Both workers held, so that the resume's check waits in the queue behind them.
    HeldWorkers workers;
    CloudServer s(scratch("unchecked"), {}, [&](Commands& c) {
        workers.add_to(c);
        c.console(
            "open", [](const Request&, std::string_view) { return std::string("hi"); },
            CommandOptions{.public_access = true});
    });
    auto a = s.client();
    auto user = register_user(*a, "kit");
    auto l = login(*a, "kit", "correct horse").value();
    ASSERT_TRUE(call(*a, Cloud::logout_command, {}));
    ASSERT_TRUE(eventually([&] { return s.cloud->connections_of(user).empty(); }));

    auto holder = s.client();
    ASSERT_TRUE(workers.hold(holder->connection(), 2));
    // The logged-out token's MAC is good: the resume enters the registry, then waits.
    auto b = s.client();
    auto resumed = std::make_shared<Slot<Result<DataFrame>>>();
    b->connection().call(Cloud::resume_command, args({l.token}),
                         [resumed](Result<DataFrame> r) { resumed->set(std::move(r)); });
    // Handled after the resume on b's IO thread: the resume has entered the registry by now.
    ASSERT_EQ(b->connection().call("open", "", use_wait).value(), "hi");
    EXPECT_TRUE(s.cloud->connections_of(user).empty());
    EXPECT_EQ(s.cloud->stats().online_connections, 0u);
    workers.release();
    EXPECT_EQ(code_of(resumed->get()), Errc::unauthenticated);
}

TEST(Cloud, SessionsAreListedAndRevokedOnlyByTheirOwner) {
    CloudServer s(scratch("revoke"));
    auto phone = s.client(), laptop = s.client(), mallory = s.client();
    register_user(*phone, "jan");
    register_user(*mallory, "mallory");
    auto on_phone = login(*phone, "jan", "correct horse").value();
    auto on_laptop = login(*laptop, "jan", "correct horse").value();
    auto m = login(*mallory, "mallory", "correct horse").value();
    auto list = call(*phone, Cloud::sessions_command, {}).value().get<Value>();
    ASSERT_TRUE(list.is<Array>());
    ASSERT_EQ(list.as<Array>().size(), 2u);
    int current = 0;
    for (auto& v : list.as<Array>()) {
        auto& entry = v.as<Map>();
        if (entry.at("current").as<bool>()) {
            ++current;
            EXPECT_EQ(number(entry.at("id")), on_phone.session);
        }
        EXPECT_NE(entry.at("address").as<std::string>().find("127.0.0.1"), std::string::npos);
    }
    EXPECT_EQ(current, 1);
    // Mallory cannot revoke Jan's session: it is as absent as one that never was.
    DataFrame theirs;
    theirs << on_laptop.session;
    EXPECT_EQ(code_of(call(*mallory, Cloud::revoke_command, theirs)), Errc::not_found);
    DataFrame none;
    none << std::uint64_t(999999);
    EXPECT_EQ(code_of(call(*mallory, Cloud::revoke_command, none)), Errc::not_found);
    EXPECT_TRUE(laptop->connected());
    // Jan revokes the laptop from the phone: the laptop's connection closes.
    ASSERT_TRUE(call(*phone, Cloud::revoke_command, theirs));
    EXPECT_TRUE(eventually([&] { return !laptop->connected(); }));
    EXPECT_EQ(code_of(call(*s.client(), Cloud::resume_command, args({on_laptop.token}))),
              Errc::unauthenticated);
    EXPECT_TRUE(call(*phone, Cloud::whoami_command, {}));
    EXPECT_TRUE(call(*s.client(), Cloud::resume_command, args({m.token})));
}

TEST(Cloud, APasswordChangeEndsEveryOtherSession) {
    CloudServer s(scratch("password"));
    auto a = s.client(), b = s.client();
    register_user(*a, "kim");
    auto la = login(*a, "kim", "correct horse").value();
    auto lb = login(*b, "kim", "correct horse").value();
    EXPECT_EQ(code_of(call(*a, Cloud::password_command, args({"wrong old", "battery staple"}))),
              Errc::unauthenticated);
    EXPECT_EQ(code_of(call(*a, Cloud::password_command, args({"correct horse", "short"}))),
              Errc::invalid_argument);
    ASSERT_TRUE(call(*a, Cloud::password_command, args({"correct horse", "battery staple"})));
    EXPECT_TRUE(eventually([&] { return !b->connected(); }));
    EXPECT_TRUE(call(*a, Cloud::whoami_command, {}));
    EXPECT_EQ(code_of(call(*s.client(), Cloud::resume_command, args({lb.token}))),
              Errc::unauthenticated);
    EXPECT_TRUE(call(*s.client(), Cloud::resume_command, args({la.token})));
    auto c = s.client();
    EXPECT_FALSE(login(*c, "kim", "correct horse"));
    EXPECT_TRUE(login(*c, "kim", "battery staple"));
}

TEST(Cloud, DeletingAnAccountEndsItsSessionsAndFreesItsName) {
    CloudServer s(scratch("delete"));
    auto a = s.client(), b = s.client();
    auto id = register_user(*a, "lee");
    auto la = login(*a, "lee", "correct horse").value();
    login(*b, "lee", "correct horse").value();
    EXPECT_EQ(code_of(call(*a, Cloud::delete_command, args({"wrong password"}))),
              Errc::unauthenticated);
    ASSERT_TRUE(call(*a, Cloud::delete_command, args({"correct horse"})));
    EXPECT_EQ(code_of(call(*a, Cloud::whoami_command, {})), Errc::unauthenticated);
    EXPECT_TRUE(a->connected());  // signed out, not dropped
    EXPECT_TRUE(eventually([&] { return !b->connected(); }));
    EXPECT_EQ(code_of(call(*a, Cloud::resume_command, args({la.token}))), Errc::unauthenticated);
    EXPECT_EQ(login(*a, "lee", "correct horse").error().code, Errc::unauthenticated);
    auto again = register_user(*a, "lee");
    EXPECT_NE(again, id);  // ids are never reused
}

TEST(Cloud, OldestSessionEndsPastTheCap) {
    CloudServer s(scratch("cap"), [](cloud::CloudOptions& o) { o.max_sessions_per_user = 2; });
    auto c = s.client();
    register_user(*c, "max");
    auto first = login(*c, "max", "correct horse").value();
    auto second = login(*c, "max", "correct horse").value();
    auto third = login(*c, "max", "correct horse").value();
    EXPECT_EQ(code_of(call(*s.client(), Cloud::resume_command, args({first.token}))),
              Errc::unauthenticated);
    EXPECT_TRUE(call(*s.client(), Cloud::resume_command, args({second.token})));
    EXPECT_TRUE(call(*s.client(), Cloud::resume_command, args({third.token})));
}

TEST(Cloud, TheSecretKeyFileIsPrivate) {
    auto dir = scratch("key");
    { CloudServer s(dir); }
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/cloud.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ::chmod((dir + "/cloud.key").c_str(), 0644);
    EXPECT_THROW(CloudServer again(dir), Exception);
}

TEST(Cloud, BadOptionsAreRefused) {
    cloud::CloudOptions o;
    EXPECT_TRUE(Cloud::validate(o));
    o.password_ops = 0;
    EXPECT_FALSE(Cloud::validate(o));
    o = {};
    o.database_prefix = "__x";
    EXPECT_FALSE(Cloud::validate(o));
    o = {};
    o.min_password_bytes = 100;
    o.max_password_bytes = 10;
    EXPECT_FALSE(Cloud::validate(o));
    o = {};
    o.max_sessions_per_user = 0;
    EXPECT_FALSE(Cloud::validate(o));
    o = {};
    o.max_rooms = 0;
    EXPECT_FALSE(Cloud::validate(o));
    o = {};
    o.max_room_members = 2049;  // more than one cluster message's answer carries
    EXPECT_FALSE(Cloud::validate(o));
    // Files elsewhere: an endpoint with a server key, and only on a node without files.
    o = {};
    o.files_endpoint = "10.0.0.1:7000";
    EXPECT_FALSE(Cloud::validate(o));
    o.files_public_key = std::string(64, 'g');
    EXPECT_FALSE(Cloud::validate(o));
    o.files_public_key = std::string(64, 'a');
    EXPECT_TRUE(Cloud::validate(o));
    o.files_dir = "/tmp/files";
    EXPECT_FALSE(Cloud::validate(o));
    EXPECT_TRUE(Cloud::valid_username("a.b-c_9"));
    EXPECT_FALSE(Cloud::valid_username(".ab"));
}

TEST(Cloud, APlaintextServerIsRefused) {
    auto dir = scratch("plaintext");
    std::filesystem::create_directories(dir);
    auto store = zdb::Store::open({.path = dir + "/store"}).value();
    Server server(plaintext_server());
    EXPECT_THROW(Cloud(server, *store, cheap_options(dir)), Exception);
}

// After the Cloud is gone (the server may outlive it), its commands answer shutting_down.
TEST(Cloud, CommandsAfterTheCloudIsGoneAnswerShuttingDown) {
    CloudServer s(scratch("gone"));
    auto c = s.client();
    register_user(*c, "ned");
    s.cloud.reset();
    EXPECT_EQ(code_of(call(*c, Cloud::login_command, args({"ned", "correct horse"}))),
              Errc::shutting_down);
}
