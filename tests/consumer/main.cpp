// Built against an installed Hawser: a server and a client that exchange one call, and a ZDB
// store that keeps a record.
#include <hawser/hawser.hpp>
#include <hawser/zdb/store.hpp>

#include <filesystem>

int main() {
    hawser::ServerOptions so;
    so.listen = {"127.0.0.1:0"};
    so.data_dir = "";  // this demo keeps its server key in memory
    hawser::Server server(so);
    server.commands().console(
        "ping", [](const hawser::Request&, std::string_view) { return std::string("pong"); });
    if (!server.start()) return 1;
    hawser::ClientOptions co;
    co.endpoints = {"127.0.0.1:" + std::to_string(server.ports()[0])};
    co.server_public_key = server.public_key();  // pin the server's key
    hawser::Client client(co);
    if (!client.connect()) return 2;
    auto r = client.connection().call("ping", "", hawser::use_wait);
    if (!r || *r != "pong") return 3;

    auto dir = std::filesystem::temp_directory_path() / "hawser_consumer_zdb";
    std::filesystem::remove_all(dir);
    auto store = hawser::zdb::Store::open({.path = dir.string()});
    if (!store) return 4;
    auto db = (*store)->create("kept");
    if (!db) return 5;
    auto id = (*db)->insert(hawser::Map{{"pong", hawser::Value(true)}});
    bool ok = id && (*db)->get(*id) && (*db)->get(*id)->at("pong") == hawser::Value(true);
    db->reset();  // handles go before the store
    store->reset();
    std::filesystem::remove_all(dir);
    return ok ? 0 : 6;
}
