// What the cloud's end-to-end tests share: a server with the cloud on over a scratch store,
// clients, and the account calls.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hawser/cloud/cloud.hpp"
#include "hawser/zdb/store.hpp"
#include "integration/support.hpp"

namespace hawser::test {

using cloud::Cloud;

// Every test user's password.
inline const std::string password = "correct horse";

inline cloud::CloudOptions cheap_options(const std::string& dir) {
    cloud::CloudOptions o;
    o.secret_key_file = dir + "/cloud.key";
    o.password_ops = 1;
    o.password_memory = 8192;  // libsodium's minimum: tests are about behaviour, not cost
    o.min_password_bytes = 8;
    return o;
}

inline DataFrame args(std::initializer_list<std::string> values) {
    DataFrame df;
    for (auto& v : values) df << v;
    return df;
}

struct Login {
    std::string token;
    std::uint64_t user = 0, session = 0;
    std::int64_t expires_ms = 0;
};

// A server with the cloud on, its store and key in a scratch directory that outlives restarts
// within one test.
struct CloudServer {
    std::string dir;
    std::unique_ptr<zdb::Store> store;
    std::unique_ptr<Server> server;
    std::unique_ptr<Cloud> cloud;

    explicit CloudServer(std::string directory,
                         const std::function<void(cloud::CloudOptions&)>& tweak = {},
                         const std::function<void(Commands&)>& commands = {},
                         const std::function<void(ServerOptions&)>& server_tweak = {})
        : dir(std::move(directory)) {
        std::filesystem::create_directories(dir);
        store = zdb::Store::open({.path = dir + "/store"}).value();
        auto server_options = loopback_server();
        if (server_tweak) server_tweak(server_options);
        server = std::make_unique<Server>(server_options);
        auto o = cheap_options(dir);
        if (tweak) tweak(o);
        cloud = std::make_unique<Cloud>(*server, *store, o);
        if (commands) commands(server->commands());
        server->start().value();
    }
    ~CloudServer() {
        server.reset();  // before the store: handlers in flight use it
        cloud.reset();
    }
    // A connected client; `commands`, when given, registers the client's own (a download's
    // stream handler).
    std::unique_ptr<Client> client(const std::function<void(Commands&)>& commands = {}) const {
        auto c = std::make_unique<Client>(client_for(*server));
        if (commands) commands(c->commands());
        c->connect().value();
        return c;
    }
};

inline std::string scratch(const std::string& name) {
    auto dir = ::testing::TempDir() + "hawser_cloud_" + name + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    return dir;
}

inline Result<DataFrame> call(const Client& c, std::string_view command, DataFrame argument) {
    return c.connection().call(command, std::move(argument), use_wait);
}

inline Result<Login> login(const Client& c, const std::string& name, const std::string& password) {
    auto r = call(c, Cloud::login_command, args({name, password}));
    if (!r) return r.error();
    Login l;
    l.token = r->get<std::string>();
    l.user = r->get<std::uint64_t>();
    EXPECT_EQ(r->get<std::string>().size(), name.size());  // the name as registered
    l.session = r->get<std::uint64_t>();
    l.expires_ms = r->get<std::int64_t>();
    return l;
}

inline std::uint64_t register_user(const Client& c, const std::string& name,
                                   const std::string& password = test::password) {
    return call(c, Cloud::register_command, args({name, password})).value().get<std::uint64_t>();
}

// MessagePack carries a small non-negative integer one way; read it either way.
inline std::uint64_t number(const Value& v) {
    return v.is<std::uint64_t>() ? v.as<std::uint64_t>() : std::uint64_t(v.as<std::int64_t>());
}

template <class T>
Errc code_of(const Result<T>& r) {
    return r ? Errc::ok : r.error().code;
}

// Presence (cloud.follow): a change pushed to a follower, and a follower that collects them.
struct Change {
    std::string name;
    bool online = false;
    std::string presence;
    friend bool operator==(const Change&, const Change&) = default;
};

// A connection's presence as followers and room members see it on one node: its id.
inline std::string presence_of(const CloudServer& s, std::uint64_t user, std::size_t nth = 0) {
    auto ids = s.cloud->connections_of(user);
    std::sort(ids.begin(), ids.end());
    return std::to_string(ids.at(nth));
}

// Rooms (cloud.join): a member that joined or left a room, as pushed to the room's members.
struct RoomChange {
    std::string room, name;
    bool joined = false;
    std::string presence;
    friend bool operator==(const RoomChange&, const RoomChange&) = default;
};

// A logged-in client that collects the presence and room changes pushed to it.
struct Follower {
    std::mutex mu;
    std::vector<Change> changes;
    std::vector<RoomChange> room_changes;
    std::uint64_t user = 0;
    std::unique_ptr<Client> client;  // last: it goes first, while its handler's data is there

    // On `node` (a CloudServer, or a cluster test's node), as `name`, registered first unless
    // `registered`.
    template <class Node>
    Follower(const Node& node, const std::string& name, const std::string& password,
             bool registered = false) {
        client = node.client([this](Commands& c) {
            c.direct_dataframe(std::string(Cloud::presence_push),
                               [this](const Request&, DataFrame& df) {
                                   Change ch;
                                   ch.name = df.get<std::string>();
                                   ch.online = df.get<bool>();
                                   ch.presence = df.get<std::string>();
                                   std::lock_guard lock(mu);
                                   changes.push_back(std::move(ch));
                               });
            c.direct_dataframe(std::string(Cloud::room_push),
                               [this](const Request&, DataFrame& df) {
                                   RoomChange ch;
                                   ch.room = df.get<std::string>();
                                   ch.name = df.get<std::string>();
                                   ch.joined = df.get<bool>();
                                   ch.presence = df.get<std::string>();
                                   std::lock_guard lock(mu);
                                   room_changes.push_back(std::move(ch));
                               });
        });
        if (!registered) register_user(*client, name, password);
        user = login(*client, name, password).value().user;
    }
    std::vector<Change> seen() {
        std::lock_guard lock(mu);
        return changes;
    }
    // Waits for `n` changes in all and returns them.
    std::vector<Change> wait_for(std::size_t n) {
        EXPECT_TRUE(eventually([&] { return seen().size() >= n; })) << "expected " << n;
        return seen();
    }
    std::vector<RoomChange> rooms_seen() {
        std::lock_guard lock(mu);
        return room_changes;
    }
    std::vector<RoomChange> wait_for_rooms(std::size_t n) {
        EXPECT_TRUE(eventually([&] { return rooms_seen().size() >= n; })) << "expected " << n;
        return rooms_seen();
    }
};

inline DataFrame names(std::initializer_list<std::string> list) {
    Array a;
    for (auto& n : list) a.emplace_back(n);
    DataFrame df;
    df << Value(std::move(a));
    return df;
}

// The follow's reply: name -> presences (sorted), or nullopt for an unknown name.
inline Result<std::map<std::string, std::optional<std::vector<std::string>>>> follow(
    const Client& c, std::initializer_list<std::string> who) {
    auto r = call(c, Cloud::follow_command, names(who));
    if (!r) return r.error();
    std::map<std::string, std::optional<std::vector<std::string>>> out;
    auto reply = r->get<Value>();
    for (auto& [name, v] : reply.as<Map>()) {
        if (v.is<std::nullptr_t>()) {
            out[name] = std::nullopt;
            continue;
        }
        std::vector<std::string> list;
        for (auto& p : v.as<Array>()) list.push_back(p.as<std::string>());
        std::sort(list.begin(), list.end());
        out[name] = list;
    }
    return out;
}

// A client that collects what a server pushes to it with the one-way DataFrame command
// `command` (one string each).
struct Receiver {
    std::mutex mu;
    std::vector<std::string> got;
    std::unique_ptr<Client> client;  // last: it goes first, while its handler's data is there

    template <class Node>
    Receiver(const Node& node, const std::string& command) {
        client = node.client([this, command](Commands& c) {
            c.direct_dataframe(command, [this](const Request&, DataFrame& df) {
                std::lock_guard lock(mu);
                got.push_back(df.get<std::string>());
            });
        });
    }
    std::vector<std::string> seen() {
        std::lock_guard lock(mu);
        return got;
    }
};

// The join's reply: room -> its members as "name presence", sorted (nullopt: nil).
using Members = std::map<std::string, std::optional<std::vector<std::string>>>;
inline Result<Members> join(const Client& c, std::initializer_list<std::string> rooms) {
    auto r = call(c, Cloud::join_command, names(rooms));
    if (!r) return r.error();
    Members out;
    auto reply = r->get<Value>();
    for (auto& [room, v] : reply.as<Map>()) {
        if (v.is<std::nullptr_t>()) {
            out[room] = std::nullopt;
            continue;
        }
        std::vector<std::string> list;
        for (auto& m : v.as<Array>())
            list.push_back(m.as<Array>().at(0).as<std::string>() + " " +
                           m.as<Array>().at(1).as<std::string>());
        std::sort(list.begin(), list.end());
        out[room] = list;
    }
    return out;
}

}  // namespace hawser::test
