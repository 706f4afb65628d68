// ZDB over the network: a RemoteStore against a StoreService on a real store, over loopback.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <limits>
#include <set>
#include <thread>

#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/remote_store.hpp"
#include "hawser/zdb/store_service.hpp"
#include "integration/support.hpp"
#include "wire/noise.hpp"

namespace hawser::test {
namespace {

std::string hex(const detail::noise::Key& k) {
    return detail::noise::to_hex(k);
}

// A store served by a server, and the key a node needs to use it.
struct ServedStore {
    std::string dir;
    std::unique_ptr<zdb::Store> store;
    std::unique_ptr<Server> server;
    std::unique_ptr<zdb::StoreService> service;
    detail::noise::KeyPair node = detail::noise::KeyPair::generate();

    explicit ServedStore(const std::string& name,
                         std::function<void(zdb::StoreServiceOptions&)> tweak = {},
                         std::function<void(ServerOptions&)> server_tweak = {},
                         std::function<void(Commands&)> commands = {}) {
        dir = ::testing::TempDir() + "hawser_zdb_net_" + name + "_" + std::to_string(::getpid());
        std::filesystem::remove_all(dir);
        store = zdb::Store::open({.path = dir}).value();
        auto server_options = loopback_server();
        if (server_tweak) server_tweak(server_options);
        server = std::make_unique<Server>(server_options);
        if (commands) commands(server->commands());
        zdb::StoreServiceOptions o;
        o.allowed_keys = {hex(node.public_key)};
        if (tweak) tweak(o);
        service = std::make_unique<zdb::StoreService>(*server, *store, o);
        EXPECT_TRUE(server->start());
    }
    ~ServedStore() {
        server->shutdown();
        service.reset();
        server.reset();
        store.reset();
        std::filesystem::remove_all(dir);
    }
    zdb::RemoteStoreOptions remote(std::size_t page = 1000) const {
        zdb::RemoteStoreOptions o;
        o.client = client_for(*server);
        o.client.client_private_key = hex(node.private_key);
        o.scan_page_records = page;
        return o;
    }
};

std::vector<Map> numbered(int n) {
    std::vector<Map> docs;
    for (int i = 0; i < n; ++i) docs.push_back(Map{{"n", Value(std::int64_t(i))}});
    return docs;
}

TEST(ZdbRemote, RecordsRoundTrip) {
    ServedStore s("records");
    auto remote = zdb::connect_store(s.remote()).value();
    auto db = remote->create("people", {zdb::Durability::sync}).value();
    EXPECT_EQ(db->durability(), zdb::Durability::sync);
    auto id = db->insert(Map{{"name", Value("ann")}, {"age", Value(std::int64_t(31))}}).value();
    EXPECT_EQ(db->get(id).value().at("name"), Value("ann"));
    ASSERT_TRUE(db->patch(id, Map{{"age", Value(std::int64_t(32))}}));
    EXPECT_EQ(db->get(id).value().at("age"), Value(std::int64_t(32)));
    ASSERT_TRUE(db->replace(id, Map{{"name", Value("bea")}}));
    EXPECT_EQ(db->get(id).value(), (Map{{"name", Value("bea")}}));
    auto ids = db->insert_batch(numbered(3)).value();
    ASSERT_EQ(ids.size(), 3u);
    EXPECT_EQ(db->count(), 4u);
    EXPECT_TRUE(db->exists(ids[1]).value());
    ASSERT_TRUE(db->remove(ids[1]));
    EXPECT_FALSE(db->exists(ids[1]).value());
    // Errors keep their code across the wire.
    auto missing = db->get(ids[1]);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::not_found);
    EXPECT_EQ(remote->database("nope").error().code, Errc::not_found);
    EXPECT_EQ(remote->create("__bad").error().code, Errc::invalid_argument);
    // What the serving node sees is what the remote one wrote.
    auto local = s.store->database("people").value();
    EXPECT_EQ(local->count(), 3u);
    EXPECT_EQ(local->get(id).value(), (Map{{"name", Value("bea")}}));
    EXPECT_EQ(remote->list(), s.store->list());
    EXPECT_EQ(db->stats().records, 3u);
    ASSERT_TRUE(remote->copy("people", "people2"));
    EXPECT_EQ(remote->database("people2").value()->count(), 3u);
    ASSERT_TRUE(remote->drop("people2"));
    EXPECT_EQ(remote->database("people2").error().code, Errc::not_found);
    EXPECT_EQ(remote->checkpoint(s.dir + "/elsewhere").error().code, Errc::not_allowed);
}

// Two nodes racing to take names through one store: each name is taken once.
TEST(ZdbRemote, InsertUniqueHoldsAcrossNodes) {
    ServedStore s("unique");
    auto one = zdb::connect_store(s.remote()).value();
    auto two = zdb::connect_store(s.remote()).value();
    one->create("names").value()->create_index("key").value();
    std::atomic<int> won{0};
    auto race = [&](zdb::Store& store) {
        auto db = store.database("names").value();
        for (int i = 0; i < 40; ++i) {
            auto r = db->insert_unique(Map{{"key", Value("n" + std::to_string(i))}}, "key");
            if (r)
                ++won;
            else
                EXPECT_EQ(r.error().code, Errc::already_exists);
        }
    };
    std::thread a([&] { race(*one); });
    std::thread b([&] { race(*two); });
    a.join();
    b.join();
    EXPECT_EQ(won.load(), 40);
    EXPECT_EQ(s.store->database("names").value()->count(), 40u);
}

TEST(ZdbRemote, ScanReadsEveryPageInOrder) {
    ServedStore s("scan");
    auto remote = zdb::connect_store(s.remote(/*page=*/64)).value();
    auto db = remote->create("items").value();
    auto ids = db->insert_batch(numbered(1000)).value();
    std::vector<zdb::RecordId> seen;
    ASSERT_TRUE(db->scan([&](zdb::RecordId id, const Map&) {
        seen.push_back(id);
        return true;
    }));
    EXPECT_EQ(seen, ids);
    seen.clear();
    ASSERT_TRUE(db->scan(
        [&](zdb::RecordId id, const Map& r) {
            EXPECT_EQ(r.at("n"), Value(std::int64_t(id - ids.front())));
            seen.push_back(id);
            return true;
        },
        {.reverse = true}));
    ASSERT_EQ(seen.size(), ids.size());
    EXPECT_TRUE(std::equal(seen.begin(), seen.end(), ids.rbegin()));
    // Bounds, and a visitor that stops.
    seen.clear();
    ASSERT_TRUE(db->scan(
        [&](zdb::RecordId id, const Map&) {
            seen.push_back(id);
            return seen.size() < 150;
        },
        {.from = ids[100], .to = ids[900]}));
    ASSERT_EQ(seen.size(), 150u);
    EXPECT_EQ(seen.front(), ids[100]);
    EXPECT_EQ(seen.back(), ids[249]);
    seen.clear();
    ASSERT_TRUE(db->scan(
        [&](zdb::RecordId id, const Map&) {
            seen.push_back(id);
            return true;
        },
        {.from = ids[500], .to = ids[10], .reverse = true}));
    ASSERT_EQ(seen.size(), 490u);
    EXPECT_EQ(seen.front(), ids[500]);
    EXPECT_EQ(seen.back(), ids[11]);
}

TEST(ZdbRemote, PagesAndFragmentsAreCutToWhatAClientDecodes) {
    ServedStore s("big_pages");
    // 40,000 small records fit max_scan_bytes in one page, but not in the 65,536 values a
    // client decodes in one array: the node cuts the page, and the scan reads on.
    auto remote = zdb::connect_store(s.remote(/*page=*/40000)).value();
    auto db = remote->create("items").value();
    auto ids = db->insert_batch(numbered(40000)).value();
    std::size_t scanned = 0;
    ASSERT_TRUE(db->scan([&](zdb::RecordId, const Map&) { return ++scanned > 0; }));
    EXPECT_EQ(scanned, ids.size());
    // A query asking for fragments of any size gets them cut too.
    zdb::QueryOptions o;
    o.fragment_records = std::numeric_limits<std::size_t>::max();
    o.parallelism = 1;
    std::size_t records = 0, largest = 0;
    auto query = zdb::run_query(db, zdb::compile_filter(Map{}).value(), o, [&](zdb::Fragment f) {
                     records += f.records.size();
                     largest = std::max(largest, f.records.size());
                 }).value();
    EXPECT_EQ(query->wait().value(), zdb::QueryEnd::completed);
    EXPECT_EQ(records, ids.size());
    EXPECT_LE(largest, 16384u);
}

TEST(ZdbRemote, AttachmentsAndIndexes) {
    ServedStore s("attachments");
    auto remote = zdb::connect_store(s.remote()).value();
    auto db = remote->create("files").value();
    auto id = db->insert(Map{{"n", Value(std::int64_t(1))}}).value();
    auto content = random_bytes(200000, 7);
    Bytes bytes(content.begin(), content.end());
    ASSERT_TRUE(db->put_attachment(id, "body", bytes));
    EXPECT_EQ(db->get_attachment(id, "body").value(), bytes);
    EXPECT_EQ(db->attachments(id).value(), std::vector<std::string>{"body"});
    ASSERT_TRUE(db->remove_attachment(id, "body"));
    EXPECT_EQ(db->get_attachment(id, "body").error().code, Errc::not_found);
    ASSERT_TRUE(db->create_index("n"));
    EXPECT_EQ(db->stats().indexes, std::vector<std::string>{"n"});
    ASSERT_TRUE(db->drop_index("n"));
    EXPECT_TRUE(db->stats().indexes.empty());
}

TEST(ZdbRemote, QueryDeliversEveryMatchOnceAndUsesIndexes) {
    ServedStore s("query");
    auto remote = zdb::connect_store(s.remote()).value();
    auto db = remote->create("items").value();
    auto ids = db->insert_batch(numbered(5000)).value();
    ASSERT_TRUE(db->create_index("n"));
    std::mutex mu;
    std::set<zdb::RecordId> seen;
    std::size_t fragments = 0, duplicates = 0;
    zdb::QueryOptions o;
    o.fragment_records = 20;
    o.parallelism = 2;
    std::atomic<bool> ended{false};
    o.on_end = [&](Result<zdb::QueryEnd> end, const zdb::QueryProgress& p) {
        EXPECT_TRUE(end);
        EXPECT_EQ(p.matched, 200u);
        ended = true;
    };
    auto query =
        zdb::run_query(db, zdb::compile_filter(Map{{"n", Map{{"$gte", Value(4800)}}}}).value(), o,
                       [&](zdb::Fragment f) {
                           std::lock_guard lock(mu);
                           ++fragments;
                           for (auto& [id, record] : f.records) {
                               EXPECT_GE(record.at("n").as<std::int64_t>(), 4800);
                               duplicates += !seen.insert(id).second;
                           }
                       })
            .value();
    EXPECT_EQ(query->wait().value(), zdb::QueryEnd::completed);
    EXPECT_TRUE(ended);
    EXPECT_EQ(seen.size(), 200u);
    EXPECT_EQ(duplicates, 0u);
    EXPECT_GE(fragments, 10u);
    EXPECT_EQ(query->progress().index, "n");
    // Undecoded: records as stored.
    o.decode = false;
    o.on_end = nullptr;
    o.max_results = 10;
    std::size_t encoded = 0;
    auto limited = zdb::run_query(db, zdb::compile_filter(Map{}).value(), o, [&](zdb::Fragment f) {
                       encoded += f.encoded.size();
                       EXPECT_TRUE(f.records.empty());
                   }).value();
    EXPECT_EQ(limited->wait().value(), zdb::QueryEnd::max_results);
    EXPECT_EQ(encoded, 10u);
    EXPECT_TRUE(eventually([&] { return s.service->stats().queries == 0; }));
}

TEST(ZdbRemote, RefusesWhatCannotTravel) {
    ServedStore s("refuse");
    auto remote = zdb::connect_store(s.remote()).value();
    auto db = remote->create("items").value();
    auto cxx =
        zdb::run_query(db, zdb::Filter([](zdb::RecordId, const Map&, const Map&) { return true; }),
                       {}, [](zdb::Fragment) {});
    ASSERT_FALSE(cxx);
    EXPECT_EQ(cxx.error().code, Errc::invalid_argument);
    auto bad = zdb::run_query(db, zdb::compile_filter(Map{}).value(),
                              {.output = s.store->create("out").value()}, {});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

TEST(ZdbRemote, AdmitsOnlyAllowedKeys) {
    ServedStore s("keys");
    auto stranger = s.remote();
    stranger.client.client_private_key = hex(detail::noise::KeyPair::generate().private_key);
    auto refused = zdb::connect_store(stranger);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::not_allowed);
    auto anonymous = s.remote();
    anonymous.client.client_private_key.clear();
    refused = zdb::connect_store(anonymous);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::not_allowed);
    EXPECT_FALSE(zdb::StoreService::validate({}));
    EXPECT_FALSE(zdb::StoreService::validate({.allowed_keys = {"not a key"}}));
}

// A sink that stops taking fragments holds the query paused on the serving node.
TEST(ZdbRemote, SlowSinkPausesTheQueryThere) {
    ServedStore s("pause", [](zdb::StoreServiceOptions& o) { o.max_buffered_fragments = 2; });
    auto remote = zdb::connect_store(s.remote()).value();
    auto db = remote->create("items").value();
    ASSERT_TRUE(db->insert_batch(numbered(20000)));
    std::mutex mu;
    std::condition_variable cv;
    bool in_sink = false, release = false;
    zdb::QueryOptions o;
    o.fragment_records = 10;
    o.parallelism = 1;
    auto query = zdb::run_query(db, zdb::compile_filter(Map{}).value(), o, [&](zdb::Fragment) {
                     std::unique_lock lock(mu);
                     in_sink = true;
                     cv.notify_all();
                     cv.wait(lock, [&] { return release; });
                 }).value();
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_sink; });
    }
    ASSERT_TRUE(eventually([&] { return s.service->stats().buffered_fragments >= 2; }));
    query->cancel();
    {
        std::lock_guard lock(mu);
        release = true;
        cv.notify_all();
    }
    EXPECT_EQ(query->wait().value(), zdb::QueryEnd::cancelled);
    // One fragment in the sink, two buffered, one being made when the pause came.
    EXPECT_LE(query->progress().matched, 5u * 10u);
    EXPECT_TRUE(eventually([&] { return s.service->stats().queries == 0; }));
}

TEST(ZdbRemote, ReleasingAHandleCancelsTheQuery) {
    ServedStore s("release");
    auto remote = zdb::connect_store(s.remote()).value();
    auto db = remote->create("items").value();
    ASSERT_TRUE(db->insert_batch(numbered(20000)));
    std::atomic<int> calls{0};
    zdb::QueryOptions o;
    o.fragment_records = 10;
    o.start_paused = true;
    auto query = zdb::run_query(db, zdb::compile_filter(Map{}).value(), o, [&](zdb::Fragment) {
                     ++calls;
                 }).value();
    EXPECT_EQ(s.service->stats().queries, 1u);
    query.reset();  // cancels and waits for its thread
    int after = calls.load();
    EXPECT_EQ(after, 0);  // started paused, never resumed
    EXPECT_TRUE(eventually([&] { return s.service->stats().queries == 0; }));
}

// A store's table of 100 records and a query on it, started paused: its client never asks.
struct Abandoned {
    std::unique_ptr<zdb::Store> remote;
    std::shared_ptr<zdb::Database> db;
    zdb::QueryOptions options;
    std::shared_ptr<zdb::Query> query;

    explicit Abandoned(const ServedStore& s)
        : remote(zdb::connect_store(s.remote()).value()),
          db(remote->create("items").value()),
          options{.start_paused = true} {
        EXPECT_TRUE(db->insert_batch(numbered(100)));
        query = zdb::run_query(db, zdb::compile_filter(Map{}).value(), options, [](zdb::Fragment) {
                }).value();
    }
};

// A query its client stopped asking for leaves the serving node once another starts.
TEST(ZdbRemote, AnAbandonedQueryLeavesWhenAnotherStarts) {
    ServedStore s("abandoned", [](zdb::StoreServiceOptions& o) {
        o.query_idle_timeout = std::chrono::milliseconds(20);
    });
    Abandoned a(s);
    auto& [remote, db, o, abandoned] = a;
    EXPECT_TRUE(eventually([&] {
        auto other =
            zdb::run_query(db, zdb::compile_filter(Map{}).value(), o, [](zdb::Fragment) {});
        return other && s.service->stats().queries == 1;  // only the new one
    }));
    // Asked again, the abandoned one is gone.
    abandoned->resume();
    EXPECT_EQ(abandoned->wait().error().code, Errc::not_found);
}

TEST(ZdbRemote, AnAbandonedQueryLeavesAfterItsIdleTimeAlone) {
    ServedStore s("abandoned_alone", [](zdb::StoreServiceOptions& o) {
        o.query_idle_timeout = std::chrono::milliseconds(500);  // past the start and the check
    });
    Abandoned a(s);
    auto& [remote, db, o, abandoned] = a;
    EXPECT_EQ(s.service->stats().queries, 1u);
    // No other query starts: the service's own sweep lets it go.
    EXPECT_TRUE(eventually([&] { return s.service->stats().queries == 0; }));
    abandoned->resume();
    EXPECT_EQ(abandoned->wait().error().code, Errc::not_found);
}

// A query that leaves waits for its workers as its handle goes: with every worker busy and the
// pool's queue full, that waits for a worker, not on the IO thread that took the cancel.
TEST(ZdbRemote, AQueryLeftWhileTheWorkersAreFullIsLetGoOnAWorkerLater) {
    HeldWorkers workers;
    ServedStore s(
        "parked", {},
        [](ServerOptions& o) { o.max_worker_jobs = 2; },  // the two held: the pool takes no job
        [&](Commands& c) { workers.add_to(c); });
    Abandoned a(s);
    auto& [remote, db, o, query] = a;
    ASSERT_EQ(s.service->stats().queries, 1u);
    auto holder = Client(client_for(*s.server));
    ASSERT_TRUE(holder.connect());
    ASSERT_TRUE(workers.hold(holder.connection(), 2));
    query->cancel();  // reaches the service's IO thread
    EXPECT_TRUE(eventually([&] { return s.service->stats().queries_to_release == 1; }));
    EXPECT_EQ(s.service->stats().queries, 0u);
    // Workers free again: a retry lets it go.
    workers.release();
    EXPECT_TRUE(eventually([&] { return s.service->stats().queries_to_release == 0; }));
}

TEST(ZdbRemote, ServingNodeGoneEndsQueriesAndFailsCalls) {
    auto s = std::make_unique<ServedStore>("gone");
    auto remote = zdb::connect_store(s->remote()).value();
    auto db = remote->create("items").value();
    ASSERT_TRUE(db->insert_batch(numbered(2000)));
    zdb::QueryOptions o;
    o.fragment_records = 10;
    o.start_paused = true;
    auto query =
        zdb::run_query(db, zdb::compile_filter(Map{}).value(), o, [](zdb::Fragment) {}).value();
    s.reset();  // the serving node stops
    query->resume();
    auto end = query->wait();
    ASSERT_FALSE(end);
    auto after = db->get(1);
    ASSERT_FALSE(after);
    EXPECT_TRUE(after.error().code == Errc::not_connected ||
                after.error().code == Errc::disconnected)
        << to_string(after.error().code);
    EXPECT_EQ(db->count(), 0u);  // no error in its signature
}

}  // namespace
}  // namespace hawser::test
