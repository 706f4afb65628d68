// Rooms on one node over loopback: a join answers with who is in each room, then each member
// that joins or leaves is pushed once, in order, to the room's members only; leaving, signing
// out and closing end memberships; bad names and limits are refused and change nothing.
#include <gtest/gtest.h>

#include "integration/cloud_support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

TEST(CloudRooms, JoinAnswersWhoIsInThenPushesEachJoinAndLeaveOnce) {
    CloudServer s(scratch("rooms_join"));
    Follower ann(s, "ann", password);
    auto pa = presence_of(s, ann.user);
    auto r = join(*ann.client, {"lobby"}).value();
    EXPECT_EQ(r.at("lobby"), std::vector<std::string>{"ann " + pa});

    Follower bob(s, "bob", password);
    auto pb = presence_of(s, bob.user);
    r = join(*bob.client, {"lobby", "games", "lobby"}).value();  // a repeat counts once
    EXPECT_EQ(r.at("lobby"), (std::vector<std::string>{"ann " + pa, "bob " + pb}));
    EXPECT_EQ(r.at("games"), std::vector<std::string>{"bob " + pb});
    auto seen = ann.wait_for_rooms(1);
    EXPECT_EQ(seen[0], (RoomChange{"lobby", "bob", true, pb}));

    // bob's second device joins the lobby: both members hear of it, bob's first device too.
    auto bob2 = s.client([](Commands&) {});
    login(*bob2, "bob", password).value();
    auto ids = s.cloud->connections_of(bob.user);
    ASSERT_EQ(ids.size(), 2u);
    auto pb2 = std::to_string(std::to_string(ids[0]) == pb ? ids[1] : ids[0]);
    r = join(*bob2, {"lobby"}).value();
    EXPECT_EQ(r.at("lobby").value().size(), 3u);
    seen = ann.wait_for_rooms(2);
    EXPECT_EQ(seen[1], (RoomChange{"lobby", "bob", true, pb2}));
    EXPECT_EQ(bob.wait_for_rooms(1)[0], (RoomChange{"lobby", "bob", true, pb2}));

    // carl in games is heard by bob, not by ann.
    Follower carl(s, "carl", password);
    ASSERT_TRUE(join(*carl.client, {"games"}));
    auto pc = presence_of(s, carl.user);
    EXPECT_EQ(bob.wait_for_rooms(2)[1], (RoomChange{"games", "carl", true, pc}));

    // bob's first device leaves the lobby, the second logs out, carl closes.
    auto left = call(*bob.client, Cloud::leave_command, names({"lobby", "nowhere"}));
    ASSERT_TRUE(left);
    EXPECT_EQ(left->get<std::uint64_t>(), 1u);
    seen = ann.wait_for_rooms(3);
    EXPECT_EQ(seen[2], (RoomChange{"lobby", "bob", false, pb}));
    ASSERT_TRUE(call(*bob2, Cloud::logout_command, {}));
    seen = ann.wait_for_rooms(4);
    EXPECT_EQ(seen[3], (RoomChange{"lobby", "bob", false, pb2}));
    carl.client->close();
    EXPECT_EQ(bob.wait_for_rooms(3)[2], (RoomChange{"games", "carl", false, pc}));

    // Joining again answers afresh; ann heard nothing of games, and no more than this.
    r = join(*ann.client, {"lobby", "games"}).value();
    EXPECT_EQ(r.at("lobby"), std::vector<std::string>{"ann " + pa});
    EXPECT_EQ(r.at("games"), (std::vector<std::string>{"ann " + pa, "bob " + pb}));
    EXPECT_EQ(ann.rooms_seen().size(), 4u);
    EXPECT_EQ(bob.wait_for_rooms(4)[3], (RoomChange{"games", "ann", true, pa}));
    EXPECT_TRUE(ann.seen().empty());  // rooms are not follows
}

TEST(CloudRooms, LeaveAllSignOutAndCloseEndMemberships) {
    CloudServer s(scratch("rooms_leave"));
    Follower ann(s, "ann", password);
    Follower bob(s, "bob", password);
    ASSERT_TRUE(join(*bob.client, {"a", "b", "c"}));
    ASSERT_TRUE(join(*ann.client, {"a", "b", "c"}));
    EXPECT_EQ(s.cloud->stats().followers, 2u);
    EXPECT_EQ(bob.wait_for_rooms(3).size(), 3u);  // ann joined each
    EXPECT_EQ(s.cloud->stats().room_views, 12u);  // each of them lists both, in three rooms

    // Leaving every room (no argument): ann hears bob leave each once.
    auto all = call(*bob.client, Cloud::leave_command, {});
    ASSERT_TRUE(all);
    EXPECT_EQ(all->get<std::uint64_t>(), 3u);
    auto seen = ann.wait_for_rooms(3);
    for (auto& ch : seen) EXPECT_FALSE(ch.joined);
    EXPECT_EQ(s.cloud->stats().followers, 1u);
    EXPECT_EQ(s.cloud->stats().room_views, 3u);  // ann alone in each

    // A logout ends memberships: logged in again, bob is in no room and hears nothing.
    ASSERT_TRUE(join(*bob.client, {"a"}));
    EXPECT_EQ(ann.wait_for_rooms(4)[3].joined, true);
    ASSERT_TRUE(call(*bob.client, Cloud::logout_command, {}));
    EXPECT_EQ(code_of(join(*bob.client, {"a"})), Errc::unauthenticated);
    EXPECT_FALSE(ann.wait_for_rooms(5)[4].joined);
    login(*bob.client, "bob", password).value();
    auto r = join(*ann.client, {"a"}).value();
    EXPECT_EQ(r.at("a").value().size(), 1u);  // ann alone
    EXPECT_EQ(bob.rooms_seen().size(), 3u);   // nothing since ann's joins

    // Closing frees everything kept for the connection.
    ann.client->close();
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().followers == 0; }));
    EXPECT_EQ(s.cloud->stats().room_views, 0u);
}

TEST(CloudRooms, ANodeKeepsAtMostMaxRoomViewsMembersInItsLists) {
    CloudServer s(scratch("rooms_views"), [](cloud::CloudOptions& o) { o.max_room_views = 3; });
    Follower ann(s, "ann", password);
    Follower bob(s, "bob", password);
    ASSERT_TRUE(join(*ann.client, {"a"}));
    ASSERT_TRUE(join(*bob.client, {"a"}));  // ann lists ann and bob, bob both: 4
    ann.wait_for_rooms(1);
    EXPECT_EQ(s.cloud->stats().room_views, 4u);
    Follower carl(s, "carl", password);
    EXPECT_EQ(code_of(join(*carl.client, {"b"})), Errc::limit_exceeded);
    ASSERT_TRUE(join(*ann.client, {"a"}));  // a room it is in already takes nothing more
    ASSERT_TRUE(call(*bob.client, Cloud::leave_command, {}));
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().room_views == 1; }));
    EXPECT_TRUE(join(*carl.client, {"b"}));
}

TEST(CloudRooms, BadNamesAndLimitsAreRefusedAndChangeNothing) {
    CloudServer s(scratch("rooms_limits"), [](cloud::CloudOptions& o) {
        o.max_rooms = 2;
        o.max_room_members = 2;
        o.messages_per_minute = 6;
    });
    auto c = s.client();
    EXPECT_EQ(code_of(join(*c, {"lobby"})), Errc::unauthenticated);  // not logged in
    register_user(*c, "ann", password);
    login(*c, "ann", password).value();

    DataFrame not_a_list;
    not_a_list << "lobby";
    EXPECT_EQ(code_of(call(*c, Cloud::join_command, not_a_list)), Errc::invalid_argument);
    for (auto bad : {std::string(), std::string("a..b"), std::string(".a"), std::string("a b"),
                     std::string("../x"), std::string("a\0b", 3), std::string(129, 'x')})
        EXPECT_EQ(code_of(join(*c, {bad})), Errc::invalid_argument) << bad;
    Array many(101, Value("lobby"));
    DataFrame too_many;
    too_many << Value(many);
    EXPECT_EQ(code_of(call(*c, Cloud::join_command, too_many)), Errc::invalid_argument);
    EXPECT_EQ(code_of(call(*c, Cloud::leave_command, not_a_list)), Errc::invalid_argument);
    EXPECT_EQ(s.cloud->stats().followers, 0u);

    // Two rooms at most: a third is refused and changes nothing.
    Follower bob(s, "bob", password);
    ASSERT_TRUE(join(*bob.client, {"lobby"}));
    EXPECT_EQ(code_of(join(*c, {"lobby", "games", "chess"})), Errc::limit_exceeded);
    EXPECT_EQ(s.cloud->stats().followers, 1u);
    // Two members at most: ann makes the lobby full; carl is refused, and no one hears of him.
    ASSERT_TRUE(join(*c, {"lobby"}));
    Follower carl(s, "carl", password);
    EXPECT_EQ(code_of(join(*carl.client, {"lobby"})), Errc::limit_exceeded);
    auto r = join(*carl.client, {"games"}).value();  // and carl is in no other room
    EXPECT_EQ(r.at("games").value().size(), 1u);
    ASSERT_TRUE(call(*c, Cloud::leave_command, names({"lobby"})));
    auto seen = bob.wait_for_rooms(2);
    EXPECT_EQ(seen[0].name, "ann");
    EXPECT_EQ(seen[1], (RoomChange{"lobby", "ann", false, seen[0].presence}));
    // Each join that gets past its arguments counts against messages_per_minute (6 here).
    while (join(*c, {"games"}))
        ;
    EXPECT_EQ(code_of(join(*c, {"games"})), Errc::rate_limited);
    EXPECT_EQ(bob.rooms_seen().size(), 2u);  // carl's refused join was never told
}

}  // namespace
