// The cloud on a two-node cluster sharing one store: node "home" keeps the store and serves it
// (StoreService), node "edge" uses it (RemoteStore); both hold the same secret key and join the
// cluster over a real nats-server. Sessions, revocations, messages and presence cross nodes.
#include <gtest/gtest.h>

#include <mutex>

#include "cluster/node.hpp"
#include "hawser/zdb/remote_store.hpp"
#include "hawser/zdb/store_service.hpp"
#include "integration/cloud_support.hpp"
#include "wire/noise.hpp"

namespace hawser::test {
namespace {

// One node of the cloud: a server, its cluster membership and its cloud, on a store of its
// own (served to `serve_to`) or on another node's.
struct CloudNode {
    std::unique_ptr<zdb::Store> store;
    std::unique_ptr<Server> server;
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<cloud::Cloud> cloud;
    std::unique_ptr<zdb::StoreService> service;

    CloudNode(const NatsServer& nats, const std::string& name, const std::string& dir,
              std::unique_ptr<zdb::Store> s, const std::vector<std::string>& serve_to = {},
              std::uint32_t max_message_bytes = 1u << 20,
              const std::function<void(cloud::CloudOptions&)>& tweak = {})
        : store(std::move(s)) {
        server = std::make_unique<Server>(loopback_server(1));
        auto options = cluster_options(nats, name);
        options.max_message_bytes = max_message_bytes;
        cluster = std::make_unique<Cluster>(*server, options);
        auto cloud_options = cheap_options(dir);
        if (tweak) tweak(cloud_options);
        cloud = std::make_unique<cloud::Cloud>(*server, *store, cloud_options);
        cloud->join(*cluster);
        if (!serve_to.empty())
            service = std::make_unique<zdb::StoreService>(
                *server, *store, zdb::StoreServiceOptions{.allowed_keys = serve_to});
        EXPECT_TRUE(server->start());
        EXPECT_TRUE(cluster->start());
    }
    ~CloudNode() {
        cluster->stop();
        server->shutdown();
        cloud.reset();
        service.reset();
        server.reset();
        cluster.reset();
        store.reset();
    }
    std::unique_ptr<Client> client(const std::function<void(Commands&)>& commands = {}) const {
        auto c = std::make_unique<Client>(client_for(*server));
        if (commands) commands(c->commands());
        c->connect().value();
        return c;
    }
};

struct TwoNodes {
    NatsServer nats;
    std::string dir = scratch("cluster");
    detail::noise::KeyPair edge_key = detail::noise::KeyPair::generate();
    std::unique_ptr<CloudNode> home, edge;

    // `max_message_bytes`: the cluster's, on both nodes. `files`: home keeps files, and edge
    // sends its clients there for them. `both`: changes both nodes' cloud options.
    explicit TwoNodes(std::uint32_t max_message_bytes = 1u << 20, bool files = false,
                      const std::function<void(cloud::CloudOptions&)>& both = {}) {
        std::filesystem::create_directories(dir);
        home = std::make_unique<CloudNode>(nats, "home", dir,
                                           zdb::Store::open({.path = dir + "/store"}).value(),
                                           std::vector{detail::noise::to_hex(edge_key.public_key)},
                                           max_message_bytes, [&](cloud::CloudOptions& o) {
                                               if (both) both(o);
                                               if (files) o.files_dir = dir + "/files";
                                           });
        zdb::RemoteStoreOptions remote;
        remote.client = client_for(*home->server);
        remote.client.client_private_key = detail::noise::to_hex(edge_key.private_key);
        edge = std::make_unique<CloudNode>(nats, "edge", dir, zdb::connect_store(remote).value(),
                                           std::vector<std::string>{}, max_message_bytes,
                                           [&](cloud::CloudOptions& o) {
                                               if (both) both(o);
                                               if (!files) return;
                                               o.files_endpoint = remote.client.endpoints.at(0);
                                               o.files_public_key = remote.client.server_public_key;
                                           });
        EXPECT_TRUE(sees(*home->cluster, 2));
        EXPECT_TRUE(sees(*edge->cluster, 2));
    }
    ~TwoNodes() {
        edge.reset();  // uses home's store
        home.reset();
        std::filesystem::remove_all(dir);
    }
};

// A client that collects the messages pushed to it.
struct Device {
    std::mutex mu;
    std::vector<std::string> texts;
    std::unique_ptr<Client> client;

    explicit Device(const CloudNode& node) {
        client = node.client([this](Commands& c) {
            c.direct_dataframe(std::string(Cloud::message_push),
                               [this](const Request&, DataFrame& df) {
                                   df.get<std::uint64_t>();
                                   df.get<std::string>();
                                   std::lock_guard lock(mu);
                                   texts.push_back(df.get<std::string>());
                               });
        });
    }
    std::size_t count() {
        std::lock_guard lock(mu);
        return texts.size();
    }
};

Result<DataFrame> resume(const Client& c, const std::string& token) {
    return call(c, Cloud::resume_command, args({token}));
}

TEST(CloudCluster, AccountsAreOneAcrossNodesAndSessionsResumeOnAny) {
    TwoNodes t;
    auto at_home = t.home->client();
    auto at_edge = t.edge->client();
    auto ann = register_user(*at_edge, "ann", password);
    // The name is taken on every node, whatever its case.
    EXPECT_EQ(code_of(call(*at_home, Cloud::register_command, args({"ANN", password}))),
              Errc::already_exists);
    auto session = login(*at_home, "ann", password).value();
    EXPECT_EQ(session.user, ann);
    // The token made on one node resumes on the other, without the password.
    auto resumed = resume(*at_edge, session.token).value();
    EXPECT_EQ(resumed.get<std::uint64_t>(), ann);
    auto me = call(*at_edge, Cloud::whoami_command, {}).value();
    EXPECT_EQ(me.get<std::uint64_t>(), ann);
    EXPECT_EQ(me.get<std::string>(), "ann");
    EXPECT_EQ(t.edge->cloud->stats().resumptions, 1u);
}

TEST(CloudCluster, EndingASessionOnOneNodeClosesItsConnectionsOnTheOther) {
    TwoNodes t;
    auto at_home = t.home->client();
    register_user(*at_home, "bob", password);
    auto session = login(*at_home, "bob", password).value();
    auto at_edge = t.edge->client();
    resume(*at_edge, session.token).value();
    std::atomic<bool> closed{false};
    at_edge->on_disconnect([&](const Connection&, CloseReason) { closed = true; });
    // Another session of bob's on the edge stays.
    auto other = t.edge->client();
    login(*other, "bob", password).value();
    DataFrame which;
    which << session.session;
    ASSERT_TRUE(call(*other, Cloud::revoke_command, which));
    EXPECT_TRUE(eventually([&] { return closed.load(); }));
    EXPECT_TRUE(eventually([&] { return !at_home->connected(); }));
    EXPECT_TRUE(other->connected());
    // The token is dead on every node.
    auto again = t.edge->client();
    EXPECT_EQ(code_of(resume(*again, session.token)), Errc::unauthenticated);
    // A password change on the edge ends every other session, on the home node too.
    auto third = t.home->client();
    login(*third, "bob", password).value();
    ASSERT_TRUE(call(*other, Cloud::password_command, args({password, "battery staple"})));
    EXPECT_TRUE(eventually([&] { return !third->connected(); }));
    EXPECT_TRUE(other->connected());
}

// Records are kept by name. A node not told of a deletion (NATS away) still holds a connection
// of the deleted account; once the name is registered again, that connection must not reach
// the new account's records.
TEST(CloudCluster, ADeletedAccountsConnectionReachesNoRecordOfTheNameTakenAgain) {
    TwoNodes t;
    auto at_home = t.home->client();
    register_user(*at_home, "ann", password);
    login(*at_home, "ann", password).value();
    auto stale = t.edge->client();
    login(*stale, "ann", password).value();
    auto record = [](std::string_view target, auto... more) {
        DataFrame arg;
        arg << std::string(target);
        (arg << ... << more);
        return arg;
    };
    auto old_id = call(*stale, Cloud::data_insert_command,
                       record("notes", Map{{"text", Value("the first ann's")}}))
                      .value()
                      .get<std::uint64_t>();

    t.nats.stop();
    ASSERT_TRUE(eventually([&] { return !t.edge->cluster->connected(); }));
    ASSERT_TRUE(call(*at_home, Cloud::delete_command, args({password})));
    auto fresh = t.home->client();
    register_user(*fresh, "ann", password);
    login(*fresh, "ann", password).value();
    auto new_id = call(*fresh, Cloud::data_insert_command,
                       record("notes", Map{{"text", Value("the second ann's")}}))
                      .value()
                      .get<std::uint64_t>();
    // The first ann's records went with her account.
    EXPECT_EQ(code_of(call(*fresh, Cloud::data_get_command, record("notes", old_id))),
              Errc::not_found);

    ASSERT_TRUE(stale->connected());  // edge was not told
    EXPECT_EQ(code_of(call(*stale, Cloud::data_get_command, record("notes", new_id))),
              Errc::unauthenticated);
    EXPECT_EQ(code_of(call(*stale, Cloud::data_patch_command,
                           record("notes", new_id, Map{{"text", Value("changed")}}))),
              Errc::unauthenticated);
    EXPECT_EQ(code_of(call(*stale, Cloud::data_remove_command, record("notes", new_id))),
              Errc::unauthenticated);
    DataFrame query;
    query << std::uint64_t(1) << "notes" << Map{};
    EXPECT_EQ(code_of(call(*stale, Cloud::data_query_command, query)), Errc::unauthenticated);
    EXPECT_EQ(code_of(call(*stale, Cloud::data_insert_command,
                           record("notes", Map{{"text", Value("late")}}))),
              Errc::not_found);

    auto kept = call(*fresh, Cloud::data_get_command, record("notes", new_id)).value().get<Map>();
    EXPECT_EQ(kept.at("text"), Value("the second ann's"));
}

TEST(CloudCluster, MessagesReachEveryDeviceOnEveryNodeAndWaitWhenOffline) {
    TwoNodes t;
    auto ann = t.home->client();
    register_user(*ann, "ann", password);
    login(*ann, "ann", password).value();
    Device bob_edge(*t.edge), bob_home(*t.home);
    register_user(*bob_edge.client, "bob", password);
    login(*bob_edge.client, "bob", password).value();
    login(*bob_home.client, "bob", password).value();
    // Presence: the home node sees bob's connections on both nodes.
    DataFrame names;
    names << Value(Array{Value("bob"), Value("nobody")});
    auto who = call(*ann, Cloud::who_command, names).value().get<Value>().as<Map>();
    EXPECT_EQ(who.at("bob"), Value(true));
    EXPECT_EQ(who.at("nobody"), Value(false));
    DataFrame hello;
    hello << "bob"
          << "hello";
    ASSERT_TRUE(call(*ann, Cloud::send_command, hello));
    EXPECT_TRUE(eventually([&] { return bob_edge.count() == 1 && bob_home.count() == 1; }));
    // bob only on the edge, then nowhere.
    bob_home.client->close();
    bob_edge.client->close();
    EXPECT_TRUE(eventually([&] {
        auto r = call(*ann, Cloud::who_command, names);
        return r && r->get<Value>().as<Map>().at("bob") == Value(false);
    }));
    DataFrame later;
    later << "bob"
          << "while you were out";
    ASSERT_TRUE(call(*ann, Cloud::send_command, later));
    // bob logs in on the edge and finds both in his mailbox, kept in the shared store.
    auto bob = t.edge->client();
    login(*bob, "bob", password).value();
    auto inbox = call(*bob, Cloud::inbox_command, {}).value().get<Value>().as<Array>();
    ASSERT_EQ(inbox.size(), 2u);
    EXPECT_EQ(inbox[1].as<Map>().at("body"), Value("while you were out"));
}

// A connection's presence as followers see it: "<id>@<node>".
std::string presence_of(const CloudNode& node, const std::string& name, std::uint64_t user) {
    auto ids = node.cloud->connections_of(user);
    EXPECT_EQ(ids.size(), 1u);
    return ids.empty() ? "" : std::to_string(ids[0]) + "@" + name;
}

TEST(CloudCluster, PresenceCrossesNodesAndLeavesWithANodeThatLeaves) {
    TwoNodes t;
    auto bob_edge = t.edge->client();
    auto bob = register_user(*bob_edge, "bob", password);
    login(*bob_edge, "bob", password).value();
    auto on_edge = presence_of(*t.edge, "edge", bob);
    Follower ann(*t.home, "ann", password);
    // The follow on home answers with bob's connection on edge.
    auto r = follow(*ann.client, {"bob"}).value();
    EXPECT_EQ(r.at("bob"), std::vector<std::string>{on_edge});

    // bob on home too, then off edge: each change once, named by its node.
    auto bob_home = t.home->client();
    login(*bob_home, "bob", password).value();
    auto changes = ann.wait_for(1);
    EXPECT_EQ(changes[0], (Change{"bob", true, presence_of(*t.home, "home", bob)}));
    ASSERT_TRUE(call(*bob_edge, Cloud::logout_command, {}));
    changes = ann.wait_for(2);
    EXPECT_EQ(changes[1], (Change{"bob", false, on_edge}));
    // Followed from edge, bob's home connection is there.
    Follower cy(*t.edge, "cyd", password);
    r = follow(*cy.client, {"bob"}).value();
    EXPECT_EQ(r.at("bob"), std::vector<std::string>{presence_of(*t.home, "home", bob)});

    // bob back on edge; then edge leaves the cluster, and its presences with it.
    login(*bob_edge, "bob", password).value();
    on_edge = presence_of(*t.edge, "edge", bob);
    changes = ann.wait_for(3);
    EXPECT_EQ(changes[2], (Change{"bob", true, on_edge}));
    cy.client.reset();
    bob_edge.reset();  // ... closed after the node said it leaves, in what follows
    t.edge->cluster->stop();
    changes = ann.wait_for(4);
    EXPECT_EQ(changes[3], (Change{"bob", false, on_edge}));
    EXPECT_EQ(ann.seen().size(), 4u);
}

TEST(CloudCluster, ANodeBackFromANatsOutageSendsItsWholePresence) {
    // Small cluster messages: edge's whole state takes several parts.
    TwoNodes t(2048);
    auto bob_edge = t.edge->client();
    auto bob = register_user(*bob_edge, "bob", password);
    login(*bob_edge, "bob", password).value();
    auto on_edge = presence_of(*t.edge, "edge", bob);
    auto carl_first = t.edge->client();
    auto carl = register_user(*carl_first, "carl", password);
    // One connection of edge signed in as dave, who becomes erin during the outage.
    auto shared = t.edge->client();
    auto dave = register_user(*shared, "dave", password);
    auto erin = register_user(*t.edge->client(), "erin", password);
    login(*shared, "dave", password).value();
    auto shared_presence = presence_of(*t.edge, "edge", dave);
    Follower ann(*t.home, "ann", password);
    ASSERT_TRUE(follow(*ann.client, {"bob", "carl", "dave", "erin"}));

    // While NATS is away bob leaves edge, carl arrives there on many devices, and dave's
    // connection becomes erin's: home cannot be told.
    t.nats.stop();
    ASSERT_TRUE(
        eventually([&] { return !t.home->cluster->connected() && !t.edge->cluster->connected(); }));
    bob_edge->close();
    std::vector<std::unique_ptr<Client>> carls;
    carls.push_back(std::move(carl_first));
    auto token = login(*carls[0], "carl", password).value().token;
    for (int i = 0; i < 79; ++i) {  // devices resuming carl's session (logins are rate-limited)
        carls.push_back(t.edge->client());
        ASSERT_TRUE(resume(*carls.back(), token));
    }
    ASSERT_TRUE(call(*shared, Cloud::logout_command, {}));
    login(*shared, "erin", password).value();
    ASSERT_TRUE(eventually([&] { return t.edge->cloud->connections_of(bob).empty(); }));

    // Back: edge sends its whole state, and ann's view of edge is what edge holds.
    t.nats.start_again();
    std::size_t expected = 1 + carls.size() + 2;  // bob off, carl's on, dave off, erin on
    auto changes = ann.wait_for(expected);
    EXPECT_EQ(changes.size(), expected);
    auto count = [&](const Change& c) { return std::count(changes.begin(), changes.end(), c); };
    EXPECT_EQ(count({"bob", false, on_edge}), 1);
    EXPECT_EQ(count({"dave", false, shared_presence}), 1);
    EXPECT_EQ(count({"erin", true, shared_presence}), 1);
    // carl's 80 presences on edge do not fit in one of these small answers: refused whole.
    EXPECT_EQ(code_of(follow(*ann.client, {"carl"})), Errc::limit_exceeded);
    auto r = follow(*ann.client, {"bob", "dave", "erin"}).value();
    EXPECT_EQ(r.at("bob"), std::vector<std::string>{});
    EXPECT_EQ(r.at("dave"), std::vector<std::string>{});
    EXPECT_EQ(r.at("erin"), std::vector<std::string>{shared_presence});
    (void)carl;
    (void)erin;
}

TEST(CloudCluster, FilesAreKeptByTheServingNodeAndTheOthersSayWhere) {
    TwoNodes t(1u << 20, true);
    auto at_edge = t.edge->client();
    register_user(*at_edge, "ann", password);
    auto token = login(*at_edge, "ann", password).value().token;
    // The edge names the home node, and refuses its file commands and uploads, saying where.
    auto at = call(*at_edge, Cloud::files_at_command, {}).value().get<Value>().as<Map>();
    EXPECT_EQ(at.at("here"), Value(false));
    auto home = client_for(*t.home->server);
    EXPECT_EQ(at.at("endpoint"), Value(home.endpoints.at(0)));
    EXPECT_EQ(at.at("public_key"), Value(home.server_public_key));
    auto refused = call(*at_edge, Cloud::list_command, args({""}));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::not_allowed);
    EXPECT_NE(refused.error().message.find(home.endpoints.at(0)), std::string::npos);
    StreamOptions put;
    put.metadata << "f.txt";
    auto upload = at_edge->connection().send_stream(Cloud::put_stream, "data", use_wait, put);
    ASSERT_FALSE(upload);
    EXPECT_EQ(upload.error().code, Errc::not_allowed);

    // There, the token resumes, files are here, and the upload is kept.
    auto at_home = t.home->client();
    ASSERT_TRUE(resume(*at_home, token));
    at = call(*at_home, Cloud::files_at_command, {}).value().get<Value>().as<Map>();
    EXPECT_EQ(at.at("here"), Value(true));
    ASSERT_TRUE(at_home->connection().send_stream(Cloud::put_stream, "data", use_wait, put));
    auto listed = call(*at_home, Cloud::list_command, args({""}));
    ASSERT_TRUE(listed) << listed.error().message;
    auto list = listed->get<Value>();
    ASSERT_EQ(list.as<Array>().size(), 1u);
    EXPECT_EQ(list.as<Array>()[0].as<Map>().at("name"), Value("f.txt"));
}

TEST(CloudCluster, ServerPushesReachTheirConnectionsOnEveryNode) {
    TwoNodes t;
    Receiver bob(*t.edge, "app.note"), ann(*t.home, "app.note");
    auto bob_id = register_user(*bob.client, "bob", password);
    login(*bob.client, "bob", password).value();
    register_user(*ann.client, "ann", password);
    login(*ann.client, "ann", password).value();
    DataFrame note;
    note << "from home";
    ASSERT_TRUE(t.home->cloud->push(bob_id, "app.note", note));
    EXPECT_TRUE(eventually([&] { return bob.seen() == std::vector<std::string>{"from home"}; }));
    DataFrame all;
    all << "to all";
    ASSERT_TRUE(t.edge->cloud->broadcast("app.note", all));
    EXPECT_TRUE(eventually([&] { return ann.seen() == std::vector<std::string>{"to all"}; }));
    EXPECT_TRUE(eventually([&] { return bob.seen().size() == 2; }));
    // An argument of more values than one array may hold crosses as it is (its bytes).
    DataFrame many;
    many << "many";
    for (std::uint64_t i = 0; i < 70000; ++i) many << i;
    ASSERT_TRUE(t.home->cloud->push(bob_id, "app.note", many));
    EXPECT_TRUE(eventually([&] { return bob.seen().size() == 3; }));
    // An argument past the cluster's message size is refused before anything is pushed.
    DataFrame big;
    big << std::string(t.home->cluster->max_message_bytes(), 'x');
    EXPECT_EQ(code_of(t.home->cloud->push(bob_id, "app.note", big)), Errc::invalid_argument);
    DataFrame last;
    last << "last";
    ASSERT_TRUE(t.home->cloud->push(bob_id, "app.note", last));
    EXPECT_TRUE(eventually([&] { return bob.seen().size() == 4; }));
    EXPECT_EQ(bob.seen().back(), "last");
}

TEST(CloudCluster, RateLimitsHoldForTheClusterNotPerNode) {
    TwoNodes t(1u << 20, false, [](cloud::CloudOptions& o) {
        o.failed_logins_per_account = 3;
        o.login_attempts_per_address = 1000;  // the probes below count against it
    });
    auto at_home = t.home->client();
    register_user(*at_home, "ann", password);
    register_user(*at_home, "bob", password);
    register_user(*at_home, "cyd", password);
    // A right password is taken back on every node: five right logins of bob on the edge
    // leave home counting none. A message from the edge, told after them on the same NATS
    // connection, marks when home has heard them all.
    auto at_edge = t.edge->client();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(login(*at_edge, "bob", password));
    Device ann(*t.home);
    login(*ann.client, "ann", password).value();
    ASSERT_TRUE(call(*at_edge, Cloud::send_command, args({"ann", "after the logins"})));
    ASSERT_TRUE(eventually([&] { return ann.count() == 1; }));
    for (int i = 0; i < 2; ++i)
        EXPECT_EQ(code_of(login(*at_home, "bob", "wrong password")), Errc::unauthenticated);

    // Three wrong passwords for cyd on the edge lock the account there...
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(code_of(login(*at_edge, "cyd", "wrong password")), Errc::unauthenticated);
    EXPECT_EQ(code_of(login(*at_edge, "cyd", password)), Errc::rate_limited);
    // ... and at home, which saw none of them: probed with the right password, which fails
    // nothing, until the edge's count arrives.
    std::string refused;
    EXPECT_TRUE(eventually([&] {
        auto r = login(*at_home, "cyd", password);
        if (!r && r.error().code == Errc::rate_limited) refused = r.error().message;
        return !refused.empty();
    }));
    EXPECT_NE(refused.find("account"), std::string::npos) << refused;
}

TEST(CloudCluster, RoomsCrossNodesAndLeaveWithANodeThatLeaves) {
    TwoNodes t;
    Follower ann(*t.home, "ann", password);
    auto pa = presence_of(*t.home, "home", ann.user);
    ASSERT_TRUE(join(*ann.client, {"lobby"}));
    Follower bob(*t.edge, "bob", password);
    auto pb = presence_of(*t.edge, "edge", bob.user);
    // The join on edge answers with ann on home; ann hears bob join, named by his node.
    auto r = join(*bob.client, {"lobby"}).value();
    EXPECT_EQ(r.at("lobby"), (std::vector<std::string>{"ann " + pa, "bob " + pb}));
    EXPECT_EQ(ann.wait_for_rooms(1)[0], (RoomChange{"lobby", "bob", true, pb}));
    ASSERT_TRUE(call(*bob.client, Cloud::leave_command, names({"lobby"})));
    EXPECT_EQ(ann.wait_for_rooms(2)[1], (RoomChange{"lobby", "bob", false, pb}));
    ASSERT_TRUE(join(*bob.client, {"lobby"}));
    EXPECT_EQ(ann.wait_for_rooms(3)[2], (RoomChange{"lobby", "bob", true, pb}));
    // A second member on home hears of both; then edge leaves the cluster, with its members.
    Follower cyd(*t.home, "cyd", password);
    r = join(*cyd.client, {"lobby"}).value();
    EXPECT_EQ(r.at("lobby").value().size(), 3u);
    t.edge->cluster->stop();
    EXPECT_EQ(ann.wait_for_rooms(5)[4], (RoomChange{"lobby", "bob", false, pb}));
    EXPECT_EQ(ann.rooms_seen()[3].name, "cyd");
    EXPECT_EQ(cyd.wait_for_rooms(1)[0], (RoomChange{"lobby", "bob", false, pb}));
    EXPECT_EQ(ann.rooms_seen().size(), 5u);
}

TEST(CloudCluster, RoomMembersChangedInANatsOutageArePutRightWhenItIsBack) {
    // Small cluster messages: edge's whole state, long room names and all, takes several parts.
    TwoNodes t(2048);
    Follower ann(*t.home, "ann", password);
    ASSERT_TRUE(join(*ann.client, {"lobby"}));
    Follower bob(*t.edge, "bob", password);
    auto pb = presence_of(*t.edge, "edge", bob.user);
    ASSERT_TRUE(join(*bob.client, {"lobby"}));
    ann.wait_for_rooms(1);

    t.nats.stop();
    ASSERT_TRUE(
        eventually([&] { return !t.home->cluster->connected() && !t.edge->cluster->connected(); }));
    // While NATS is away bob leaves and carl joins, with 15 more rooms of long names: home
    // cannot be told, and carl's join answers for edge alone.
    ASSERT_TRUE(call(*bob.client, Cloud::leave_command, {}));
    Follower carl(*t.edge, "carl", password);
    auto pc = presence_of(*t.edge, "edge", carl.user);
    Array rooms{Value("lobby")};
    for (int i = 0; i < 15; ++i) rooms.emplace_back(std::to_string(i) + std::string(100, 'r'));
    DataFrame arg;
    arg << Value(rooms);
    auto r = call(*carl.client, Cloud::join_command, arg);
    ASSERT_TRUE(r) << r.error().message;
    auto lobby = r->get<Value>().as<Map>().at("lobby").as<Array>();
    ASSERT_EQ(lobby.size(), 1u);
    EXPECT_EQ(lobby[0].as<Array>().at(0).as<std::string>(), "carl");

    // Back: edge sends its whole state, and ann's view of the lobby is what edge holds.
    t.nats.start_again();
    auto seen = ann.wait_for_rooms(3);
    EXPECT_EQ(seen.size(), 3u);
    auto count = [&](const RoomChange& c) { return std::count(seen.begin(), seen.end(), c); };
    EXPECT_EQ(count({"lobby", "bob", false, pb}), 1);
    EXPECT_EQ(count({"lobby", "carl", true, pc}), 1);
    auto again = join(*ann.client, {"lobby"}).value();
    EXPECT_EQ(again.at("lobby").value().size(), 2u);  // ann and carl
}

}  // namespace
}  // namespace hawser::test
