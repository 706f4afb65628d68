// User data and ZDB over the wire, end to end over loopback: collections private to their
// owner or public to read, admins' reach, bad input, limits, and queries whose fragments
// stream back under the client's window, with pause, resume, cancel and progress.
#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <set>

#include "hawser/cloud/data_client.hpp"
#include "integration/cloud_support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

// A logged-in user with a DataClient, and a raw log of fragments for the tests that play the
// client's part in the flow control themselves.
struct User {
    std::mutex mu;
    std::vector<cloud::DataFragment> raw;  // fragments when `raw_fragments`, never acknowledged
    std::unique_ptr<cloud::DataClient> data;
    std::unique_ptr<Client> client;  // last: it goes first, while its handlers' data is there

    enum Kind { registers, created, logs_fragments };  // the last registers too
    User(const CloudServer& s, const std::string& name, Kind kind = registers) {
        bool raw_fragments = kind == logs_fragments;
        client = s.client([&](Commands& c) {
            if (!raw_fragments) {
                data = std::make_unique<cloud::DataClient>(c);
                return;
            }
            c.direct_console(std::string(Cloud::data_fragment_push),
                             [this](const Request&, std::string_view text) {
                                 auto df = DataFrame::decode(text).value();
                                 cloud::DataFragment f;
                                 f.query = df.get<std::uint64_t>();
                                 f.seq = df.get<std::uint64_t>();
                                 while (!df.at_end()) {
                                     auto id = df.get<std::uint64_t>();
                                     f.records.emplace_back(id, df.get<Map>());
                                 }
                                 std::lock_guard lock(mu);
                                 raw.push_back(std::move(f));
                             });
        });
        if (kind != created) {
            auto r = call(*client, Cloud::register_command, args({name, password}));
            EXPECT_TRUE(r || r.error().code == Errc::already_exists) << r.error().message;
        }
        login(*client, name, password).value();
    }
    std::size_t fragments() {
        std::lock_guard lock(mu);
        return raw.size();
    }
    Result<DataFrame> do_call(std::string_view command, DataFrame arg) const {
        return call(*client, command, std::move(arg));
    }
    Result<std::uint64_t> insert(const std::string& target, const Map& doc) const {
        DataFrame arg;
        arg << target << doc;
        auto r = do_call(Cloud::data_insert_command, arg);
        if (!r) return r.error();
        return r->get<std::uint64_t>();
    }
    Result<Map> get(const std::string& target, std::uint64_t id) const {
        DataFrame arg;
        arg << target << id;
        auto r = do_call(Cloud::data_get_command, arg);
        if (!r) return r.error();
        return r->get<Map>();
    }
    Errc patch(const std::string& target, std::uint64_t id, const Map& fields) const {
        DataFrame arg;
        arg << target << id << fields;
        return code_of(do_call(Cloud::data_patch_command, arg));
    }
    Errc remove(const std::string& target, std::uint64_t id) const {
        DataFrame arg;
        arg << target << id;
        return code_of(do_call(Cloud::data_remove_command, arg));
    }
    // A whole query through the DataClient: the ids it returned, in order of arrival.
    Result<std::vector<std::uint64_t>> query(const std::string& target, const Map& filter,
                                             cloud::DataQueryOptions o = {}) {
        std::vector<std::uint64_t> ids;
        auto end = data->query(
            client->connection(), target, filter,
            [&](cloud::DataFragment f) {
                for (auto& [id, record] : f.records) ids.push_back(id);
            },
            use_wait, o);
        if (!end) return end.error();
        EXPECT_EQ(end->matched, ids.size());
        return ids;
    }
    Result<Map> control(std::uint64_t query, const std::string& action) const {
        DataFrame arg;
        arg << query << action;
        auto r = do_call(Cloud::data_control_command, arg);
        if (!r) return r.error();
        return r->get<Map>();
    }
    void ack(std::uint64_t query, std::uint64_t seq) const {
        DataFrame arg;
        arg << query << seq;
        ASSERT_TRUE(client->connection().send(Cloud::data_ack_command, arg));
    }
};

// A query started by hand (its fragments go to User::logs_fragments); the future holds its reply.
std::future<Result<DataFrame>> start_query(const User& u, std::uint64_t id,
                                           const std::string& target, const Map& filter,
                                           const Map& options) {
    auto done = std::make_shared<std::promise<Result<DataFrame>>>();
    auto future = done->get_future();
    DataFrame arg;
    arg << id << target << filter << options;
    u.client->connection().call(Cloud::data_query_command, std::move(arg),
                                [done](Result<DataFrame> r) { done->set_value(std::move(r)); });
    return future;
}

std::uint64_t count_of(const Map& progress, const std::string& field) {
    return number(progress.at(field));
}

Map level(std::int64_t n) {
    return Map{{"level", Value(n)}};
}

}  // namespace

TEST(CloudData, RecordsArePrivateToTheirOwnerUnlessPublic) {
    CloudServer s(scratch("data_private"));
    User ann(s, "ann"), bob(s, "bob");
    auto secret = ann.insert("notes", Map{{"text", Value("mine")}}).value();
    auto shown =
        ann.insert("notes", Map{{"text", Value("hello all")}, {"_public", Value(true)}}).value();
    auto other = ann.insert("diary", Map{{"text", Value("elsewhere")}}).value();

    auto mine = ann.get("notes", secret).value();
    EXPECT_EQ(mine.at("text").as<std::string>(), "mine");
    EXPECT_EQ(mine.at("_owner").as<std::string>(), "ann");
    EXPECT_EQ(mine.at("_collection").as<std::string>(), "notes");
    EXPECT_EQ(ann.get("notes", other).error().code, Errc::not_found);  // another collection

    // Bob reads what ann made public, and nothing else, whatever he names.
    EXPECT_EQ(bob.get("notes@ann", shown).value().at("text").as<std::string>(), "hello all");
    EXPECT_EQ(bob.get("notes@ann", secret).error().code, Errc::not_found);
    EXPECT_EQ(bob.get("notes", secret).error().code, Errc::not_found);
    EXPECT_EQ(bob.get("diary@*", other).error().code, Errc::not_found);
    EXPECT_EQ(bob.query("notes@*", {}).value(), std::vector<std::uint64_t>{shown});
    EXPECT_EQ(bob.query("notes@ANN", {}).value(), std::vector<std::uint64_t>{shown});
    EXPECT_TRUE(bob.query("notes", {}).value().empty());
    auto all = ann.query("notes", {}, {.ordered = true}).value();
    EXPECT_EQ(all, (std::vector<std::uint64_t>{secret, shown}));

    // He writes nothing of hers.
    EXPECT_EQ(code_of(bob.insert("notes@ann", level(1))), Errc::not_allowed);
    EXPECT_EQ(bob.patch("notes@ann", shown, level(1)), Errc::not_allowed);
    EXPECT_EQ(bob.patch("notes", shown, level(1)), Errc::not_found);
    EXPECT_EQ(bob.remove("notes", secret), Errc::not_found);
    EXPECT_EQ(bob.remove("notes@ann", secret), Errc::not_allowed);
    EXPECT_EQ(code_of(bob.insert("notes@*", level(1))), Errc::not_allowed);
    EXPECT_EQ(ann.get("notes", secret).value().count("level"), 0u);

    // Ann patches and withdraws.
    EXPECT_EQ(ann.patch("notes", shown, Map{{"_public", Value(false)}}), Errc::ok);
    EXPECT_EQ(bob.get("notes@ann", shown).error().code, Errc::not_found);
    EXPECT_EQ(ann.remove("notes", secret), Errc::ok);
    EXPECT_EQ(ann.get("notes", secret).error().code, Errc::not_found);
    EXPECT_EQ(ann.remove("notes", secret), Errc::not_found);

    // Filters narrow within the scope only: naming another owner in the filter changes nothing.
    ann.insert("scores", Map{{"level", Value(5)}, {"_public", Value(true)}}).value();
    ann.insert("scores", Map{{"level", Value(50)}, {"_public", Value(true)}}).value();
    bob.insert("scores", Map{{"level", Value(70)}}).value();
    Map high{{"level", Value(Map{{"$gte", Value(10)}})}};
    EXPECT_EQ(ann.query("scores", high).value().size(), 1u);
    EXPECT_EQ(bob.query("scores@*", high).value().size(), 1u);  // public ones: not his own 70
    EXPECT_EQ(ann.query("scores", Map{{"_owner", Value("bob")}}).value().size(), 0u);
}

TEST(CloudData, BadInputGetsAClearErrorAndChangesNothing) {
    CloudServer s(scratch("data_bad"), [](cloud::CloudOptions& o) { o.max_document_bytes = 4096; });
    User ann(s, "ann");
    auto id = ann.insert("notes", level(1)).value();
    for (std::string target : std::vector<std::string>{
             "", "/", "../x", "a/b", "a@", "@ann", "a@b c", "a@b@c", "x@../y", "__x", "a b",
             std::string(10000, 'x'), std::string("a\0b", 3), "caf\xc3\xa9", "notes@\xe2\x80\xae"})
        EXPECT_EQ(code_of(ann.insert(target, level(1))), Errc::invalid_argument) << target;
    EXPECT_EQ(code_of(ann.insert("notes", Map{{"_owner", Value("bob")}})), Errc::invalid_argument);
    EXPECT_EQ(code_of(ann.insert("notes", Map{{"_x", Value(1)}})), Errc::invalid_argument);
    EXPECT_EQ(code_of(ann.insert("notes", Map{{"_public", Value("yes")}})), Errc::invalid_argument);
    EXPECT_EQ(ann.patch("notes", id, Map{{"_collection", Value("other")}}), Errc::invalid_argument);
    EXPECT_EQ(code_of(ann.insert("notes", Map{{"blob", Value(std::string(5000, 'x'))}})),
              Errc::limit_exceeded);
    Value deep = Value(1);
    for (int i = 0; i < 40; ++i) deep = Value(Map{{"d", deep}});
    EXPECT_NE(code_of(ann.insert("notes", deep.as<Map>())), Errc::ok);
    EXPECT_EQ(ann.patch("notes", 987654, level(2)), Errc::not_found);
    // Patches one at a time cannot grow a record past max_document_bytes.
    auto big = ann.insert("notes", Map{{"a", Value(std::string(2500, 'a'))}}).value();
    EXPECT_EQ(ann.patch("notes", big, Map{{"b", Value(std::string(2500, 'b'))}}),
              Errc::limit_exceeded);
    EXPECT_EQ(
        ann.patch("notes", big, Map{{"a", Value(nullptr)}, {"b", Value(std::string(2500, 'b'))}}),
        Errc::ok);
    EXPECT_EQ(ann.get("notes", big).value().count("a"), 0u);
    EXPECT_EQ(ann.remove("notes", big), Errc::ok);
    EXPECT_EQ(ann.remove("notes", 0), Errc::invalid_argument);

    // Not a document, not a filter, bad query options.
    DataFrame not_map;
    not_map << std::string("notes") << std::string("text");
    EXPECT_EQ(code_of(ann.do_call(Cloud::data_insert_command, not_map)), Errc::invalid_argument);
    for (auto options : {Map{{"window", Value(0)}}, Map{{"window", Value(1000)}},
                         Map{{"sideways", Value(true)}}, Map{{"reverse", Value("yes")}}}) {
        DataFrame arg;
        arg << std::uint64_t(1) << std::string("notes") << Map{} << options;
        EXPECT_EQ(code_of(ann.do_call(Cloud::data_query_command, arg)), Errc::invalid_argument);
    }
    EXPECT_EQ(ann.query("notes", Map{{"level", Value(Map{{"$near", Value(1)}})}}).error().code,
              Errc::invalid_argument);
    EXPECT_EQ(ann.control(99, "progress").error().code, Errc::not_found);
    // What was there is there still.
    EXPECT_EQ(ann.query("notes", {}).value(), std::vector<std::uint64_t>{id});
    EXPECT_EQ(number(ann.get("notes", id).value().at("level")), 1u);
}

TEST(CloudData, AdminsReachEveryCollectionAndDatabaseButTheCloudsOwn) {
    CloudServer s(scratch("data_admin"), [](cloud::CloudOptions& o) { o.admins = {"Root"}; });
    auto players = s.store->create("players").value();
    for (int i = 0; i < 30; ++i) players->insert(Map{{"level", Value(i)}}).value();
    // Nobody may claim an administrator's name: it is made on the server.
    auto guest = s.client();
    EXPECT_EQ(code_of(call(*guest, Cloud::register_command, args({"ROOT", password}))),
              Errc::not_allowed);
    ASSERT_TRUE(s.cloud->create_account("root", password));
    EXPECT_EQ(s.cloud->create_account("root", password).error().code, Errc::already_exists);
    EXPECT_EQ(s.cloud->create_account("x", password).error().code, Errc::invalid_argument);
    User root(s, "root", User::created), ann(s, "ann");
    auto secret = ann.insert("notes", level(7)).value();

    EXPECT_EQ(number(root.get("notes@ann", secret).value().at("level")), 7u);
    EXPECT_EQ(root.query("notes@*", {}).value(), std::vector<std::uint64_t>{secret});
    EXPECT_EQ(root.patch("notes@ann", secret, level(8)), Errc::ok);
    EXPECT_EQ(number(ann.get("notes", secret).value().at("level")), 8u);
    EXPECT_EQ(code_of(root.insert("notes@nobody", level(1))), Errc::not_found);

    Map high{{"level", Value(Map{{"$gte", Value(20)}})}};
    EXPECT_EQ(root.query("/players", high).value().size(), 10u);
    auto added = root.insert("/players", Map{{"level", Value(99)}, {"_any", Value(1)}}).value();
    EXPECT_EQ(number(players->get(added).value().at("level")), 99u);
    EXPECT_EQ(root.patch("/players", added, level(100)), Errc::ok);
    EXPECT_EQ(root.remove("/players", added), Errc::ok);
    EXPECT_FALSE(players->exists(added).value());
    EXPECT_EQ(root.get("/missing", 1).error().code, Errc::not_found);
    EXPECT_EQ(root.get("/cloud.accounts", 1).error().code, Errc::not_allowed);
    EXPECT_EQ(root.query("/cloud.data", {}).error().code, Errc::not_allowed);

    EXPECT_EQ(ann.get("/players", 1).error().code, Errc::not_allowed);
    EXPECT_EQ(ann.query("/players", {}).error().code, Errc::not_allowed);
    EXPECT_EQ(code_of(ann.insert("/players", level(1))), Errc::not_allowed);
}

TEST(CloudData, RecordsPerUserAreBoundedAndGoWithTheAccount) {
    auto dir = scratch("data_bounded");
    std::uint64_t kept;
    {
        CloudServer s(dir, [](cloud::CloudOptions& o) { o.max_records_per_user = 3; });
        User ann(s, "ann"), bob(s, "bob");
        std::vector<std::uint64_t> ids;
        for (int i = 0; i < 3; ++i) ids.push_back(ann.insert(i ? "a" : "b", level(i)).value());
        EXPECT_EQ(ann.insert("a", level(9)).error().code, Errc::limit_exceeded);
        EXPECT_TRUE(bob.insert("a", level(9)));  // per user
        EXPECT_EQ(ann.remove("a", ids[1]), Errc::ok);
        kept = ann.insert("a", level(3)).value();
        EXPECT_EQ(ann.insert("a", level(4)).error().code, Errc::limit_exceeded);
    }
    {
        // Across a restart: the records are there, and counted again.
        CloudServer s(dir, [](cloud::CloudOptions& o) { o.max_records_per_user = 3; });
        User ann(s, "ann");
        EXPECT_EQ(number(ann.get("a", kept).value().at("level")), 3u);
        EXPECT_EQ(ann.insert("a", level(4)).error().code, Errc::limit_exceeded);
        ASSERT_TRUE(call(*ann.client, Cloud::delete_command, args({password})));
    }
    {
        // A new account under the name starts empty.
        CloudServer s(dir);
        User ann(s, "ann");
        EXPECT_TRUE(ann.query("a@*", {}).value().empty());
        EXPECT_TRUE(ann.query("b", {}).value().empty());
        EXPECT_EQ(ann.get("a", kept).error().code, Errc::not_found);
    }
}

TEST(CloudData, QueryFragmentsWaitForTheClientsAcknowledgements) {
    CloudServer s(scratch("data_window"), [](cloud::CloudOptions& o) {
        o.query_fragment_bytes = 1024;  // a few records per fragment
        o.query_parallelism = 1;
    });
    User ann(s, "ann", User::logs_fragments);
    const std::string text(200, 'x');
    std::set<std::uint64_t> inserted;
    for (int i = 0; i < 150; ++i)
        inserted.insert(ann.insert("notes", Map{{"n", Value(i)}, {"text", Value(text)}}).value());

    auto reply = start_query(ann, 7, "notes", {}, Map{{"window", Value(3)}});
    // Three fragments come, and no more until one is acknowledged. (A control reply can
    // overtake the last fragment sent: it is answered at once, a fragment is queued.)
    ASSERT_TRUE(eventually([&] {
        auto p = ann.control(7, "progress").value();
        return count_of(p, "fragments") == 3 && p.at("paused").as<bool>() && ann.fragments() == 3;
    })) <<
        [&] {
            auto p = ann.control(7, "progress").value();
            return "sent " + std::to_string(count_of(p, "fragments")) + " scanned " +
                   std::to_string(count_of(p, "scanned")) + " paused " +
                   std::to_string(p.at("paused").as<bool>()) + " received " +
                   std::to_string(ann.fragments());
        }();
    ann.ack(7, 1);
    ASSERT_TRUE(eventually([&] { return ann.fragments() == 4; }));
    auto p = ann.control(7, "progress").value();
    EXPECT_EQ(count_of(p, "fragments"), 4u);
    EXPECT_EQ(count_of(p, "acknowledged"), 1u);

    // Acknowledgements of what was never sent, or again, change nothing.
    ann.ack(7, 100);
    ann.ack(7, 1);
    ann.ack(8, 1);
    EXPECT_EQ(count_of(ann.control(7, "progress").value(), "fragments"), 4u);

    // Acknowledging as they come drains the rest.
    std::uint64_t acked = 1;
    auto end_future = std::move(reply);
    while (end_future.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
        auto have = ann.fragments();
        for (; acked < have; ++acked) ann.ack(7, acked + 1);
    }
    auto end = end_future.get().value();
    EXPECT_EQ(end.get<std::string>(), "completed");
    end.get<std::uint64_t>();  // scanned
    EXPECT_EQ(end.get<std::uint64_t>(), inserted.size());
    std::set<std::uint64_t> got;
    std::lock_guard lock(ann.mu);
    for (std::size_t i = 0; i < ann.raw.size(); ++i) {
        EXPECT_EQ(ann.raw[i].seq, i + 1);  // in order, none missing
        EXPECT_LE(ann.raw[i].records.size(), 6u);
        for (auto& [id, record] : ann.raw[i].records) {
            EXPECT_TRUE(got.insert(id).second) << "twice: " << id;
            EXPECT_EQ(record.at("text").as<std::string>(), text);
        }
    }
    EXPECT_EQ(got, inserted);
}

TEST(CloudData, PauseResumeCancelAndTheConnectionsEnd) {
    CloudServer s(scratch("data_control"), [](cloud::CloudOptions& o) {
        o.query_fragment_bytes = 1024;
        o.query_parallelism = 1;
        o.max_queries_per_connection = 2;
    });
    User ann(s, "ann", User::logs_fragments);
    for (int i = 0; i < 100; ++i)
        ann.insert("notes", Map{{"n", Value(i)}, {"text", Value(std::string(300, 'y'))}}).value();

    // Paused by the client before anything is acknowledged: it stays paused when acknowledged.
    auto first = start_query(ann, 1, "notes", {}, Map{{"window", Value(1)}});
    ASSERT_TRUE(eventually([&] { return ann.fragments() == 1; }))
        << (first.wait_for(std::chrono::seconds(0)) == std::future_status::ready
                ? "ended: " + first.get().error().message
                : "running: " + [&] {
                      auto p = ann.control(1, "progress");
                      return p ? "sent " + std::to_string(count_of(*p, "fragments")) + " scanned " +
                                     std::to_string(count_of(*p, "scanned"))
                               : p.error().message;
                  }());
    EXPECT_TRUE(ann.control(1, "pause").value().at("paused").as<bool>());
    ann.ack(1, 1);
    EXPECT_TRUE(ann.control(1, "progress").value().at("paused").as<bool>());
    EXPECT_FALSE(ann.control(1, "resume").value().at("paused").as<bool>());
    ASSERT_TRUE(eventually([&] { return ann.fragments() == 2; }));  // the window moves again

    // A second query fits, a third does not, and an id in use is refused.
    auto second = start_query(ann, 2, "notes", {}, Map{{"window", Value(1)}});
    ASSERT_TRUE(eventually([&] { return bool(ann.control(2, "progress")); }));
    auto third = start_query(ann, 3, "notes", {}, Map{});
    EXPECT_EQ(third.get().error().code, Errc::limit_exceeded);
    EXPECT_EQ(start_query(ann, 2, "notes", {}, Map{}).get().error().code, Errc::already_exists);
    EXPECT_EQ(ann.control(2, "sideways").error().code, Errc::invalid_argument);

    // Cancel ends it at once, with what it had.
    ASSERT_TRUE(ann.control(2, "cancel"));
    auto end = second.get().value();
    EXPECT_EQ(end.get<std::string>(), "cancelled");
    EXPECT_EQ(ann.control(2, "progress").error().code, Errc::not_found);
    EXPECT_EQ(s.cloud->stats().queries_running, 1u);

    // Signing out cancels what the user left running on the connection.
    ASSERT_TRUE(call(*ann.client, Cloud::logout_command, {}));
    EXPECT_EQ(first.get().error().code, Errc::cancelled);
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().queries_running == 0; }));

    // So does the connection's end.
    login(*ann.client, "ann", password).value();
    auto last = start_query(ann, 4, "notes", {}, Map{{"window", Value(1)}});
    ASSERT_TRUE(eventually([&] { return s.cloud->stats().queries_running == 1; }));
    ann.client->close();
    EXPECT_EQ(last.get().error().code, Errc::disconnected);
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().queries_running == 0; }));
}

TEST(CloudData, AQueryLeftPausedGivesItsPlaceUp) {
    CloudServer s(scratch("data_idle"), [](cloud::CloudOptions& o) {
        o.query_fragment_bytes = 1024;
        o.query_parallelism = 1;
        o.query_idle_timeout = std::chrono::milliseconds(1);
    });
    User ann(s, "ann", User::logs_fragments);
    for (int i = 0; i < 50; ++i)
        ann.insert("notes", Map{{"n", Value(i)}, {"text", Value(std::string(300, 'y'))}}).value();
    auto stuck = start_query(ann, 1, "notes", {}, Map{{"window", Value(1)}});
    ASSERT_TRUE(eventually([&] {
        auto p = ann.control(1, "progress");  // asking for progress does not keep it alive
        return p && p->at("paused").as<bool>();
    }));
    // The next query admitted finds it idle past the timeout and cancels it, with the reason.
    auto next = start_query(ann, 2, "notes", Map{{"n", Value(0)}}, Map{});
    auto end = stuck.get();
    ASSERT_FALSE(end);
    EXPECT_EQ(end.error().code, Errc::timeout);
    EXPECT_NE(end.error().message.find("paused"), std::string::npos);
}

TEST(CloudData, TheDataClientDeliversEveryFragmentInOrder) {
    CloudServer s(scratch("data_client"), [](cloud::CloudOptions& o) {
        o.query_fragment_bytes = 1024;
        o.max_records_per_user = 1000;
    });
    User ann(s, "ann");
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 400; ++i)
        ids.push_back(
            ann.insert("n", Map{{"i", Value(i)}, {"pad", Value(std::string(100, 'z'))}}).value());
    EXPECT_EQ(ann.query("n", {}, {.window = 1, .ordered = true}).value(), ids);
    auto reversed = ids;
    std::reverse(reversed.begin(), reversed.end());
    EXPECT_EQ(ann.query("n", {}, {.window = 2, .reverse = true, .ordered = true}).value(),
              reversed);
    auto few = ann.query("n", {}, {.max_results = 25, .ordered = true}).value();
    EXPECT_EQ(few, std::vector<std::uint64_t>(ids.begin(), ids.begin() + 25));
    // A handler that throws cancels the query, which completes with that error.
    auto thrown = ann.data->query(ann.client->connection(), "n", {},
                                  [](cloud::DataFragment) { throw std::runtime_error("no room"); },
                                  use_wait, {.window = 1});
    ASSERT_FALSE(thrown);
    EXPECT_EQ(thrown.error().code, Errc::handler_error);
    EXPECT_NE(thrown.error().message.find("no room"), std::string::npos);
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().queries_running == 0; }));

    Map odd{{"$or", Value(Array{Value(Map{{"i", Value(1)}}), Value(Map{{"i", Value(3)}})})}};
    EXPECT_EQ(ann.query("n", odd, {.ordered = true}).value(),
              (std::vector<std::uint64_t>{ids[1], ids[3]}));
}

// A query's end waits for its ZDB workers as its handle goes: with every worker busy and the
// pool's queue full, it waits for a worker, not on the IO thread that saw the end.
TEST(CloudData, AQueryEndedWhileTheWorkersAreFullIsLetGoOnAWorkerLater) {
    HeldWorkers workers;
    CloudServer s(
        scratch("data_parked"),
        [](cloud::CloudOptions& o) {
            o.query_fragment_bytes = 1024;
            o.query_parallelism = 1;
        },
        [&](Commands& c) { workers.add_to(c); },
        [](ServerOptions& o) { o.max_worker_jobs = 2; });  // the two held: the pool takes no job
    User ann(s, "ann", User::logs_fragments);
    for (int i = 0; i < 20; ++i)
        ann.insert("notes", Map{{"n", Value(i)}, {"text", Value(std::string(300, 'z'))}}).value();
    auto reply = start_query(ann, 1, "notes", {}, Map{{"window", Value(1)}});
    ASSERT_TRUE(eventually([&] { return ann.fragments() == 1; }));  // held at its window

    auto holder = s.client();
    ASSERT_TRUE(workers.hold(holder->connection(), 2));
    ASSERT_TRUE(ann.control(1, "cancel"));  // ends on ann's IO thread
    EXPECT_EQ(code_of(reply.get()), Errc::ok);
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().queries_to_release == 1; }));
    EXPECT_EQ(s.cloud->stats().queries_running, 0u);

    // Workers free again: a retry lets it go.
    workers.release();
    EXPECT_TRUE(eventually([&] { return s.cloud->stats().queries_to_release == 0; }));
}
