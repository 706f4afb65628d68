// ZDB in one file: a database of players with an attachment and an index, a query streamed in
// fragments, then the same data filtered into a new database that replaces the old one.
//   example_zdb_players [store directory]   (default: a fresh directory under /tmp; one given
//   must not exist or be empty, and is removed at the end)
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <hawser/zdb/declarative_filter.hpp>
#include <hawser/zdb/query.hpp>
#include <hawser/zdb/store.hpp>

using namespace hawser;

int main(int argc, char** argv) {
    std::string path;
    if (argc > 1) {
        path = argv[1];
        std::error_code ec;
        if (std::filesystem::exists(path, ec) && !std::filesystem::is_empty(path, ec)) {
            std::fprintf(stderr, "%s is not empty: give a new directory\n", path.c_str());
            return 2;
        }
    } else {
        std::string dir = std::filesystem::temp_directory_path() / "hawser_zdb_XXXXXX";
        if (!::mkdtemp(dir.data())) return std::perror("mkdtemp"), 2;
        path = dir;
    }
    auto store = zdb::Store::open({.path = path}).value();
    auto players = store->create("players", {.durability = zdb::Durability::sync}).value();
    std::vector<Map> batch;
    for (int i = 0; i < 1000; ++i)
        batch.push_back(Map{{"name", Value("player" + std::to_string(i))},
                            {"level", Value(i % 50)},
                            {"guild", Value(Map{{"name", Value(i % 3 ? "owls" : "hawks")}})}});
    players->insert_batch(batch).value();
    auto ada = players->insert(Map{{"name", Value("ada")}, {"level", Value(12)}}).value();
    Bytes avatar(64 * 1024, 0x7f);
    players->put_attachment(ada, "avatar", avatar).value();
    players->create_index("level").value();

    // Level 12 hawks: the index on level gives the candidates, the filter checks the rest.
    auto filter =
        zdb::compile_filter(Map{{"level", Value(12)}, {"guild.name", Value("hawks")}}).value();
    std::size_t found = 0;
    auto query = zdb::run_query(players, filter, {}, [&](zdb::Fragment f) {
                     for (auto& [id, record] : f.records)
                         std::printf("  %llu %s\n", static_cast<unsigned long long>(id),
                                     record.at("name").as<std::string>().c_str());
                     found += f.records.size();
                 }).value();
    query->wait().value();
    std::printf("%zu level-12 hawks (%s)\n", found,
                query->progress().index.empty() ? "full scan" : "index on level");

    // Keep only players above level 40: filter into a new database, then swap it in.
    auto high = store->create("players_high").value();
    zdb::QueryOptions into;
    into.output = high;
    auto pipeline =
        zdb::run_query(players,
                       zdb::compile_filter(Map{{"level", Value(Map{{"$gt", Value(40)}})}}).value(),
                       into, nullptr)
            .value();
    pipeline->wait().value();
    store->replace("players", "players_high").value();
    std::printf("players now holds %llu records; the next id is %llu\n",
                static_cast<unsigned long long>(players->count()),
                static_cast<unsigned long long>(players->stats().next_id));
    const bool ok = found == 7 && players->count() == 180;
    query.reset();
    pipeline.reset();
    high.reset();
    players.reset();
    store.reset();  // closed before its directory goes
    std::filesystem::remove_all(path);
    return ok ? 0 : 1;
}
