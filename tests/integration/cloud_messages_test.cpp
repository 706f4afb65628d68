// Messages between users end to end over loopback: pushed at once to every connection of the
// recipient, kept in the mailbox until acknowledged (across a restart), bounded, expiring,
// rate-limited, and private to their recipient.
#include <gtest/gtest.h>

#include <mutex>

#include "integration/cloud_support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

struct Pushed {
    std::uint64_t id = 0;
    std::string from, text;
};

// A logged-in client that collects the messages pushed to it.
struct Device {
    std::mutex mu;
    std::vector<Pushed> pushed;
    std::unique_ptr<Client> client;  // last: it goes first, while its handler's data is there

    Device(const CloudServer& s, const std::string& name, bool registered) {
        client = s.client([this](Commands& c) {
            c.direct_dataframe(std::string(Cloud::message_push),
                               [this](const Request&, DataFrame& df) {
                                   Pushed p;
                                   p.id = df.get<std::uint64_t>();
                                   p.from = df.get<std::string>();
                                   p.text = df.get<std::string>();
                                   std::lock_guard lock(mu);
                                   pushed.push_back(std::move(p));
                               });
        });
        if (!registered) register_user(*client, name, password);
        login(*client, name, password).value();
    }
    std::vector<Pushed> received() {
        std::lock_guard lock(mu);
        return pushed;
    }
};

Result<std::uint64_t> send(const Client& from, const std::string& to, const std::string& text) {
    DataFrame arg;
    arg << to << text;
    auto r = call(from, Cloud::send_command, arg);
    if (!r) return r.error();
    return r->get<std::uint64_t>();
}

// The mailbox's texts, oldest first, with their ids.
std::vector<std::pair<std::uint64_t, std::string>> inbox(const Client& c, std::uint64_t after = 0) {
    DataFrame arg;
    arg << after;
    auto r = call(c, Cloud::inbox_command, arg).value();
    auto list = r.get<Value>();
    std::vector<std::pair<std::uint64_t, std::string>> out;
    for (auto& v : list.as<Array>()) {
        auto& m = v.as<Map>();
        out.emplace_back(number(m.at("id")), m.at("body").as<std::string>());
    }
    return out;
}

std::uint64_t ack(const Client& c, std::uint64_t up_to) {
    DataFrame arg;
    arg << up_to;
    return call(c, Cloud::ack_command, arg).value().get<std::uint64_t>();
}

}  // namespace

TEST(CloudMessages, PushedToEveryDeviceAndKeptUntilAcknowledged) {
    CloudServer s(scratch("msg_push"));
    Device phone(s, "bob", false), laptop(s, "bob", true);
    auto ann = s.client();
    register_user(*ann, "ann", password);
    login(*ann, "ann", password).value();
    auto first = send(*ann, "BOB", "hello").value();  // names without case
    auto second = send(*ann, "bob", "again").value();
    EXPECT_LT(first, second);
    for (auto* d : {&phone, &laptop}) {
        ASSERT_TRUE(eventually([&] { return d->received().size() == 2; }));
        auto got = d->received();
        EXPECT_EQ(got[0].id, first);
        EXPECT_EQ(got[0].from, "ann");
        EXPECT_EQ(got[0].text, "hello");
        EXPECT_EQ(got[1].text, "again");
    }
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().messages_pushed == 4u; }));
    auto kept = inbox(*phone.client);
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0], std::pair(first, std::string("hello")));
    EXPECT_EQ(inbox(*phone.client, first).size(), 1u);  // after an id
    EXPECT_EQ(ack(*laptop.client, first), 1u);
    kept = inbox(*phone.client);
    ASSERT_EQ(kept.size(), 1u);
    EXPECT_EQ(kept[0].second, "again");
    EXPECT_TRUE(inbox(*ann).empty());  // the sender's mailbox is its own
    EXPECT_EQ(ack(*ann, second), 0u);  // and acknowledging others' ids removes nothing
    EXPECT_EQ(inbox(*phone.client).size(), 1u);
}

TEST(CloudMessages, AnOfflineUsersMessagesWaitAcrossARestart) {
    auto dir = scratch("msg_offline");
    std::vector<std::uint64_t> ids;
    {
        CloudServer s(dir);
        auto ann = s.client();
        register_user(*ann, "ann", password);
        register_user(*s.client(), "bob", password);
        login(*ann, "ann", password).value();
        for (auto text : {"one", "two", "three"}) ids.push_back(send(*ann, "bob", text).value());
        EXPECT_EQ(s.cloud->stats().messages_pushed, 0u);  // bob was not there
    }
    CloudServer s(dir);
    auto bob = s.client();
    login(*bob, "bob", password).value();
    auto kept = inbox(*bob);
    ASSERT_EQ(kept.size(), 3u);
    EXPECT_EQ(kept[0], std::pair(ids[0], std::string("one")));
    EXPECT_EQ(kept[1], std::pair(ids[1], std::string("two")));
    EXPECT_EQ(kept[2], std::pair(ids[2], std::string("three")));
    EXPECT_EQ(ack(*bob, ids[2]), 3u);
    EXPECT_TRUE(inbox(*bob).empty());
}

TEST(CloudMessages, MailboxesAreBoundedAndMessagesExpire) {
    CloudServer s(scratch("msg_bounds"), [](cloud::CloudOptions& o) {
        o.max_queued_messages = 2;
        o.max_message_bytes = 100;
        o.messages_per_minute = 5;
    });
    auto ann = s.client();
    register_user(*ann, "ann", password);
    register_user(*s.client(), "bob", password);
    login(*ann, "ann", password).value();
    ASSERT_TRUE(send(*ann, "bob", "1"));
    auto last = send(*ann, "bob", "2").value();
    EXPECT_EQ(send(*ann, "bob", "3").error().code, Errc::limit_exceeded);  // nothing dropped
    EXPECT_EQ(send(*ann, "bob", std::string(200, 'x')).error().code, Errc::invalid_argument);
    EXPECT_EQ(send(*ann, "nobody", "?").error().code, Errc::not_found);
    EXPECT_EQ(send(*ann, "bob", "4").error().code, Errc::limit_exceeded);  // the fifth
    EXPECT_EQ(send(*ann, "bob", "5").error().code, Errc::rate_limited);    // the sixth this minute
    DataFrame who;
    who << Value(Array{Value(std::string("bob"))});
    EXPECT_EQ(code_of(call(*ann, Cloud::who_command, who)), Errc::rate_limited);  // the same budget
    auto bob = s.client();
    login(*bob, "bob", password).value();
    EXPECT_EQ(inbox(*bob).size(), 2u);
    EXPECT_EQ(ack(*bob, last), 2u);

    CloudServer brief(scratch("msg_expiry"),
                      [](cloud::CloudOptions& o) { o.message_lifetime = Milliseconds(50); });
    auto a = brief.client();
    register_user(*a, "ann", password);
    register_user(*brief.client(), "bob", password);
    login(*a, "ann", password).value();
    ASSERT_TRUE(send(*a, "bob", "soon gone"));
    auto b = brief.client();
    login(*b, "bob", password).value();
    EXPECT_TRUE(eventually([&] { return inbox(*b).empty(); }));
}

TEST(CloudMessages, AcknowledgementsFromTwoDevicesAtOnce) {
    CloudServer s(scratch("msg_acks"),
                  [](cloud::CloudOptions& o) { o.messages_per_minute = 1000; });
    auto ann = s.client();
    register_user(*ann, "ann", password);
    register_user(*s.client(), "bob", password);
    login(*ann, "ann", password).value();
    std::uint64_t last = 0;
    for (int i = 0; i < 300; ++i) last = send(*ann, "bob", "m" + std::to_string(i)).value();
    auto phone = s.client(), laptop = s.client();
    login(*phone, "bob", password).value();
    login(*laptop, "bob", password).value();
    auto a = std::make_shared<Slot<Result<DataFrame>>>();
    auto b = std::make_shared<Slot<Result<DataFrame>>>();
    DataFrame up_to;
    up_to << last;
    phone->connection().call(Cloud::ack_command, up_to, [a](Result<DataFrame> r) { a->set(r); });
    laptop->connection().call(Cloud::ack_command, up_to, [b](Result<DataFrame> r) { b->set(r); });
    auto ra = a->get(30s), rb = b->get(30s);
    ASSERT_TRUE(ra) << ra.error().message;
    ASSERT_TRUE(rb) << rb.error().message;
    // Each message deleted once, by one of them.
    EXPECT_EQ(ra->get<std::uint64_t>() + rb->get<std::uint64_t>(), 300u);
    EXPECT_TRUE(inbox(*phone).empty());
}

TEST(CloudMessages, WhoIsOnlineAndTheGate) {
    CloudServer s(scratch("msg_who"));
    auto ann = s.client();
    register_user(*ann, "ann", password);
    register_user(*s.client(), "bob", password);
    auto stranger = s.client();
    DataFrame arg;
    arg << Value(
        Array{Value(std::string("ann")), Value(std::string("bob")), Value(std::string("nobody"))});
    EXPECT_EQ(code_of(call(*stranger, Cloud::who_command, arg)), Errc::unauthenticated);
    EXPECT_EQ(send(*stranger, "ann", "hi").error().code, Errc::unauthenticated);
    login(*ann, "ann", password).value();
    auto who = call(*ann, Cloud::who_command, arg).value().get<Value>().as<Map>();
    EXPECT_TRUE(who.at("ann").as<bool>());
    EXPECT_FALSE(who.at("bob").as<bool>());
    EXPECT_FALSE(who.at("nobody").as<bool>());
    {
        auto bob = s.client();
        login(*bob, "bob", password).value();
        who = call(*ann, Cloud::who_command, arg).value().get<Value>().as<Map>();
        EXPECT_TRUE(who.at("bob").as<bool>());
    }
    EXPECT_TRUE(eventually([&] {
        return !call(*ann, Cloud::who_command, arg)
                    .value()
                    .get<Value>()
                    .as<Map>()
                    .at("bob")
                    .as<bool>();
    }));
}

TEST(CloudMessages, DeletingTheAccountEmptiesItsMailbox) {
    CloudServer s(scratch("msg_delete"));
    auto ann = s.client();
    register_user(*ann, "ann", password);
    auto bob = s.client();
    register_user(*bob, "bob", password);
    login(*ann, "ann", password).value();
    ASSERT_TRUE(send(*ann, "bob", "for the old bob"));
    auto messages = s.store->database("cloud.messages").value();
    EXPECT_EQ(messages->count(), 1u);
    login(*bob, "bob", password).value();
    ASSERT_TRUE(call(*bob, Cloud::delete_command, args({password})));
    EXPECT_EQ(messages->count(), 0u);  // deleted with the account, not left behind
    EXPECT_EQ(send(*ann, "bob", "too late").error().code, Errc::not_found);
    register_user(*bob, "bob", password);
    login(*bob, "bob", password).value();
    EXPECT_TRUE(inbox(*bob).empty());
}
