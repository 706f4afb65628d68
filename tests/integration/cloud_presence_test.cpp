// Presence on one node over loopback: a follow answers with the followed users' connections
// online now, then each change is pushed once, in order; unfollow, sign-out and close end
// follows; bad arguments and limits are refused.
#include <gtest/gtest.h>

#include <mutex>

#include "integration/cloud_support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

TEST(CloudPresence, FollowAnswersWhoIsOnlineThenPushesEachChangeOnce) {
    CloudServer s(scratch("presence_follow"));
    auto bob1 = s.client();
    auto bob_id = register_user(*bob1, "bob", password);
    login(*bob1, "bob", password).value();
    auto p1 = presence_of(s, bob_id);
    Follower ann(s, "ann", password);

    auto r = follow(*ann.client, {"Bob", "nobody"}).value();
    EXPECT_EQ(r.at("Bob"), std::vector<std::string>{p1});
    EXPECT_EQ(r.at("nobody"), std::nullopt);  // unknown: not followed

    // A second device of bob: one change, online.
    auto bob2 = s.client();
    login(*bob2, "bob", password).value();
    auto changes = ann.wait_for(1);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_TRUE(changes[0].online);
    EXPECT_EQ(changes[0].name, "bob");
    auto p2 = changes[0].presence;
    EXPECT_NE(p2, p1);
    // The first device closes, the second logs out: each goes offline once.
    bob1->close();
    changes = ann.wait_for(2);
    EXPECT_EQ(changes[1], (Change{"bob", false, p1}));
    ASSERT_TRUE(call(*bob2, Cloud::logout_command, {}));
    changes = ann.wait_for(3);
    EXPECT_EQ(changes[2], (Change{"bob", false, p2}));
    // Following again answers with nobody online, and nothing more was pushed.
    r = follow(*ann.client, {"bob"}).value();
    EXPECT_EQ(r.at("bob"), std::vector<std::string>{});
    EXPECT_EQ(ann.seen().size(), 3u);
}

TEST(CloudPresence, UnfollowAndSignOutEndFollowsAndCloseFreesThem) {
    CloudServer s(scratch("presence_unfollow"));
    auto bob = s.client();
    register_user(*bob, "bob", password);
    auto carl = s.client();
    register_user(*carl, "carl", password);
    Follower ann(s, "ann", password);
    ASSERT_TRUE(follow(*ann.client, {"bob", "carl"}));
    EXPECT_EQ(s.cloud->stats().followers, 1u);

    auto unfollowed = call(*ann.client, Cloud::unfollow_command, names({"BOB", "dave"}));
    ASSERT_TRUE(unfollowed);
    EXPECT_EQ(unfollowed->get<std::uint64_t>(), 1u);
    // bob's login is pushed to no one; carl's, which comes after it, is.
    login(*bob, "bob", password).value();
    login(*carl, "carl", password).value();
    auto changes = ann.wait_for(1);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].name, "carl");

    // A logout ends the connection's follows: logged in again, ann hears nothing of carl.
    ASSERT_TRUE(call(*ann.client, Cloud::logout_command, {}));
    EXPECT_EQ(code_of(follow(*ann.client, {"carl"})), Errc::unauthenticated);
    login(*ann.client, "ann", password).value();
    ASSERT_TRUE(follow(*ann.client, {"bob"}));
    carl->close();
    bob->close();
    changes = ann.wait_for(2);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[1].name, "bob");
    EXPECT_FALSE(changes[1].online);

    // Unfollowing everyone (no argument), then closing: nothing is kept for the connection.
    auto all = call(*ann.client, Cloud::unfollow_command, {});
    ASSERT_TRUE(all);
    EXPECT_EQ(all->get<std::uint64_t>(), 1u);
    EXPECT_EQ(s.cloud->stats().followers, 0u);
    ASSERT_TRUE(follow(*ann.client, {"bob"}));
    ann.client->close();
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().followers == 0; }));
}

TEST(CloudPresence, BadArgumentsAndLimitsAreRefused) {
    CloudServer s(scratch("presence_limits"), [](cloud::CloudOptions& o) {
        o.max_follows = 2;
        o.messages_per_minute = 3;
    });
    auto c = s.client();
    EXPECT_EQ(code_of(follow(*c, {"bob"})), Errc::unauthenticated);  // not logged in
    register_user(*c, "ann", password);
    login(*c, "ann", password).value();
    for (auto name : {"bob", "carl", "dave"}) register_user(*s.client(), name, password);

    DataFrame not_a_list;
    not_a_list << "bob";
    EXPECT_EQ(code_of(call(*c, Cloud::follow_command, not_a_list)), Errc::invalid_argument);
    Array many(101, Value("bob"));
    DataFrame too_many;
    too_many << Value(many);
    EXPECT_EQ(code_of(call(*c, Cloud::follow_command, too_many)), Errc::invalid_argument);
    DataFrame not_names;
    not_names << Value(Array{Value(1)});
    EXPECT_EQ(code_of(call(*c, Cloud::follow_command, not_names)), Errc::invalid_argument);

    // Two at most: a third is refused and changes nothing; the same two again are fine.
    EXPECT_EQ(code_of(follow(*c, {"bob", "carl", "dave"})), Errc::limit_exceeded);
    EXPECT_EQ(s.cloud->stats().followers, 0u);
    ASSERT_TRUE(follow(*c, {"bob", "carl"}));
    ASSERT_TRUE(follow(*c, {"carl", "bob"}));
    // Each follow that gets past its arguments counts against messages_per_minute (3 here).
    EXPECT_EQ(code_of(follow(*c, {"bob"})), Errc::rate_limited);
}

}  // namespace
