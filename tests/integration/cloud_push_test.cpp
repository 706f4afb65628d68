// Server push on one node over loopback: Cloud::push reaches every connection signed in as the
// user, Cloud::broadcast every signed-in connection, and neither reaches a connection that is
// not signed in, or signed out; bad arguments are refused.
#include <gtest/gtest.h>

#include "integration/cloud_support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

const std::string command = "app.note";

DataFrame note(const std::string& text) {
    DataFrame df;
    df << text;
    return df;
}

// One round trip on `c` after a push: a push queued for it before would have come first.
void round_trip(const Receiver& c) {
    EXPECT_EQ(code_of(call(*c.client, Cloud::register_command, args({"!", "x"}))),
              Errc::invalid_argument);
}

TEST(CloudPush, APushReachesEveryConnectionOfTheUserAndABroadcastEverySignedInOne) {
    CloudServer s(scratch("server_push"));
    Receiver bob1(s, command), bob2(s, command), ann(s, command), stranger(s, command);
    auto bob = register_user(*bob1.client, "bob", password);
    login(*bob1.client, "bob", password).value();
    login(*bob2.client, "bob", password).value();
    register_user(*ann.client, "ann", password);
    login(*ann.client, "ann", password).value();

    ASSERT_TRUE(s.cloud->push(bob, command, note("for bob")));
    EXPECT_TRUE(eventually([&] { return bob1.seen().size() == 1 && bob2.seen().size() == 1; }));
    ASSERT_TRUE(s.cloud->broadcast(command, note("for all")));
    EXPECT_TRUE(eventually([&] {
        return ann.seen().size() == 1 && bob1.seen().size() == 2 && bob2.seen().size() == 2;
    }));
    EXPECT_EQ(bob1.seen(), (std::vector<std::string>{"for bob", "for all"}));
    EXPECT_EQ(ann.seen(), std::vector<std::string>{"for all"});

    // Signed out, bob's second device hears no more; a connection never signed in, nothing.
    ASSERT_TRUE(call(*bob2.client, Cloud::logout_command, {}));
    ASSERT_TRUE(s.cloud->push(bob, command, note("again")));
    ASSERT_TRUE(s.cloud->broadcast(command, note("all again")));
    EXPECT_TRUE(eventually([&] { return bob1.seen().size() == 4 && ann.seen().size() == 2; }));
    round_trip(bob2);
    round_trip(stranger);
    EXPECT_EQ(bob2.seen().size(), 2u);
    EXPECT_TRUE(stranger.seen().empty());
}

TEST(CloudPush, BadArgumentsAreRefused) {
    CloudServer s(scratch("server_push_bad"));
    EXPECT_EQ(code_of(s.cloud->push(0, command, note("x"))), Errc::invalid_argument);
    EXPECT_EQ(code_of(s.cloud->push(1, "", note("x"))), Errc::invalid_argument);
    EXPECT_EQ(code_of(s.cloud->broadcast(std::string(256, 'c'), note("x"))),
              Errc::invalid_argument);
    // The cloud's and the framework's own names cannot be spoofed.
    EXPECT_EQ(code_of(s.cloud->broadcast(Cloud::message_push, note("x"))), Errc::invalid_argument);
    EXPECT_EQ(code_of(s.cloud->push(1, "hawser.x", note("x"))), Errc::invalid_argument);
    EXPECT_TRUE(s.cloud->push(12345, command, note("to no one")));  // no connection: nothing to do
}

}  // namespace
