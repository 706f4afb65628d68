// hawser-zdb: create, import, query, export and administer ZDB databases from the shell.
//   hawser-zdb --store DIR <command> ...   (hawser-zdb --help lists the commands)
// Errors go to stderr with what and where (file:line for imports); the exit code is non-zero.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/store.hpp"
#include "json_value.hpp"

using namespace hawser;
using namespace hawser::zdb;

namespace {

int fail(const std::string& message) {
    std::fprintf(stderr, "hawser-zdb: %s\n", message.c_str());
    return 1;
}

void progress(std::uint64_t done, std::uint64_t total_bytes, std::uint64_t read_bytes) {
    if (!::isatty(2)) return;  // a bar only for people
    const int width = 30;
    int filled = total_bytes ? int(width * std::min(read_bytes, total_bytes) / total_bytes) : 0;
    std::fprintf(stderr, "\r[%s%s] %llu records", std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), static_cast<unsigned long long>(done));
}

// Imports JSON Lines in batches. A bad line (not JSON, not an object, nested deeper than a
// document may be) stops the import with its line number; every batch before it is committed.
int import_lines(Database& db, const std::string& path, std::size_t batch_size) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot open " + path);
    // The bar needs the size; a pipe (/dev/stdin, <(...)) has none, and is read all the same.
    std::uint64_t total = 0;
    if (in.seekg(0, std::ios::end)) {
        auto end = in.tellg();
        if (end > 0) total = static_cast<std::uint64_t>(end);
        in.seekg(0);
    }
    in.clear();
    std::vector<Map> batch;
    std::uint64_t imported = 0, line_no = 0;
    auto flush = [&]() -> Result<void> {
        if (batch.empty()) return {};
        auto r = db.insert_batch(batch);
        if (!r) return r.error();
        imported += batch.size();
        batch.clear();
        auto at = in.tellg();  // -1 once the last line is read
        progress(imported, total, at < 0 ? total : static_cast<std::uint64_t>(at));
        return {};
    };
    auto stop = [&](const std::string& where, const std::string& why) {
        if (::isatty(2)) std::fprintf(stderr, "\n");
        return fail(where + ": " + why + "; " + std::to_string(imported) +
                    " records before it were imported");
    };
    std::string line;
    while (std::getline(in, line)) {
        ++line_no;
        auto where = path + ":" + std::to_string(line_no);
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto v = app::parse_json(line, max_document_depth);
        if (!v || !v->is<Map>()) {
            if (auto r = flush(); !r)
                return stop("write failed before " + where, r.error().message);
            return stop(where, v ? "not a JSON object" : v.error().message);
        }
        batch.push_back(std::get<Map>(std::move(v->v)));
        if (batch.size() >= batch_size)
            if (auto r = flush(); !r) return stop("write failed at " + where, r.error().message);
    }
    if (in.bad()) {
        if (auto r = flush(); !r)
            return stop("write failed at the end of " + path, r.error().message);
        return stop(path + ":" + std::to_string(line_no + 1), "cannot read further");
    }
    if (auto r = flush(); !r) return stop("write failed at the end of " + path, r.error().message);
    if (::isatty(2)) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "imported %llu records into '%s'\n",
                 static_cast<unsigned long long>(imported), db.name().c_str());
    return 0;
}

void print_record(RecordId id, const Map& record) {
    auto j = app::to_json(Value(record));
    j["_id"] = id;
    std::cout << app::json_text(j) << '\n';
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"ZDB command-line tool"};
    std::string store_path, name, other, field, file, filter_text = "{}", directory, into,
                                                      durability = "normal";
    std::size_t batch = 1000, limit = 0, threads = 0, cache_mib = 256;
    bool reverse = false;
    cli.add_option("-s,--store", store_path, "store directory")->required();
    cli.add_option("--cache-mib", cache_mib, "block cache size")->check(CLI::Range(1, 1 << 20));
    cli.require_subcommand(1);
    auto create = cli.add_subcommand("create", "create a database");
    create->add_option("name", name)->required();
    create->add_option("--durability", durability, "sync, normal or fast")
        ->check(CLI::IsMember({"sync", "normal", "fast"}));
    auto import = cli.add_subcommand("import", "import JSON Lines (one object per line)");
    import->add_option("name", name)->required();
    import->add_option("file", file)->required();
    import->add_option("--batch", batch, "records per write")->check(CLI::Range(1, 1000000));
    auto query = cli.add_subcommand("query", "print matching records as JSON Lines");
    query->add_option("name", name)->required();
    query->add_option("--filter", filter_text,
                      "declarative filter as JSON, e.g. '{\"level\":{\"$gte\":10}}'");
    query->add_option("--limit", limit, "at most this many records");
    query->add_option("--threads", threads, "parallel workers (0 = one per core)");
    query->add_flag("--reverse", reverse, "highest ids first");
    query->add_option("--into", into, "also write the matches, same ids, into this new database");
    auto exp = cli.add_subcommand("export", "print every record as JSON Lines, in id order");
    exp->add_option("name", name)->required();
    auto compact = cli.add_subcommand("compact", "compact a database");
    compact->add_option("name", name)->required();
    auto checkpoint = cli.add_subcommand(
        "checkpoint",
        "consistent copy of the whole store (with its server stopped, which locks it)");
    checkpoint->add_option("directory", directory)->required();
    auto stats = cli.add_subcommand("stats", "records and sizes of every database");
    auto list = cli.add_subcommand("list", "database names");
    auto drop = cli.add_subcommand("drop", "delete a database and everything in it");
    drop->add_option("name", name)->required();
    auto copy = cli.add_subcommand("copy", "copy a database, consistently, under a new name");
    copy->add_option("source", name)->required();
    copy->add_option("destination", other)->required();
    auto replace = cli.add_subcommand(
        "replace", "atomically give <target> the contents of <source>, which goes away");
    replace->add_option("target", name)->required();
    replace->add_option("source", other)->required();
    auto index = cli.add_subcommand("index", "index a field (dotted path) of a database");
    index->add_option("name", name)->required();
    index->add_option("field", field)->required();
    auto drop_index = cli.add_subcommand("drop-index", "remove the index on a field");
    drop_index->add_option("name", name)->required();
    drop_index->add_option("field", field)->required();
    CLI11_PARSE(cli, argc, argv);

    // Only `create` may make a store: a mistyped path elsewhere is an error, not an empty store.
    auto store = Store::open({.path = store_path,
                              .block_cache_bytes = cache_mib << 20,
                              .create_if_missing = create->parsed()});
    if (!store) return fail("cannot open store " + store_path + ": " + store.error().message);
    auto& s = **store;

    if (create->parsed()) {
        auto d = durability == "sync"   ? Durability::sync
                 : durability == "fast" ? Durability::fast
                                        : Durability::normal;
        auto db = s.create(name, {.durability = d});
        return db ? 0 : fail(db.error().message);
    }
    if (list->parsed()) {
        for (const auto& n : s.list()) std::cout << n << '\n';
        return 0;
    }
    if (checkpoint->parsed()) {
        auto r = s.checkpoint(directory);
        return r ? 0 : fail(r.error().message);
    }
    if (stats->parsed()) {
        for (const auto& n : s.list()) {
            auto st = s.database(n).value()->stats();
            std::cout << app::json_text(nlohmann::json{{"database", n},
                                                       {"records", st.records},
                                                       {"next_id", st.next_id},
                                                       {"document_bytes", st.document_bytes},
                                                       {"blob_bytes", st.blob_bytes},
                                                       {"index_bytes", st.index_bytes},
                                                       {"indexes", st.indexes}})
                      << '\n';
        }
        auto st = s.stats();
        std::cout << nlohmann::json{{"cache_capacity_bytes", st.cache_capacity_bytes},
                                    {"cache_usage_bytes", st.cache_usage_bytes},
                                    {"cache_hits", st.cache_hits},
                                    {"cache_misses", st.cache_misses},
                                    {"cache_hit_rate", st.cache_hit_rate()}}
                         .dump()
                  << '\n';
        return 0;
    }
    if (drop->parsed()) {
        auto r = s.drop(name);
        return r ? 0 : fail(r.error().message);
    }
    if (compact->parsed()) {
        auto r = s.compact(name);
        return r ? 0 : fail(r.error().message);
    }
    if (copy->parsed()) {
        auto r = s.copy(name, other);
        return r ? 0 : fail(r.error().message);
    }
    if (replace->parsed()) {
        auto r = s.replace(name, other);
        return r ? 0 : fail(r.error().message);
    }
    auto db = s.database(name);
    if (!db) return fail(db.error().message);
    if (import->parsed()) return import_lines(**db, file, batch);
    if (index->parsed() || drop_index->parsed()) {
        auto r = index->parsed() ? (*db)->create_index(field) : (*db)->drop_index(field);
        return r ? 0 : fail(r.error().message);
    }
    // What was printed is checked: a full disk under `export > backup.jsonl` is a failure.
    auto written = [] {
        std::cout.flush();
        return bool(std::cout);
    };
    if (exp->parsed()) {
        auto r = (*db)->scan([](RecordId id, const Map& m) {
            print_record(id, m);
            return bool(std::cout);
        });
        if (!written()) return fail("cannot write the records to stdout");
        return r ? 0 : fail(r.error().message);
    }
    // query
    auto f = app::parse_json(filter_text, max_document_depth);
    if (!f && f.error().code == Errc::limit_exceeded) return fail("--filter: " + f.error().message);
    if (!f || !f->is<Map>()) return fail("--filter: not a JSON object");
    auto filter = compile_filter(f->as<Map>());
    if (!filter) return fail("--filter: " + filter.error().message);
    QueryOptions o;
    o.reverse = reverse;
    o.ordered = true;
    o.max_results = limit;
    o.parallelism = threads;
    if (!into.empty()) {
        auto out = s.create(into, {.durability = (*db)->durability()});
        if (!out) return fail("--into: " + out.error().message);
        o.output = *out;
    }
    auto q = run_query(*db, *filter, o, [](Fragment f) {
        for (auto& [id, m] : f.records) print_record(id, m);
    });
    if (!q) return fail(q.error().message);
    auto end = (*q)->wait();
    if (!written()) return fail("cannot write the records to stdout");
    if (!end) return fail(end.error().message);
    auto p = (*q)->progress();
    std::fprintf(stderr, "%llu matched of %llu scanned in %.3fs (%s)\n",
                 static_cast<unsigned long long>(p.matched),
                 static_cast<unsigned long long>(p.scanned), p.seconds,
                 p.index.empty() ? "full scan" : ("index on " + p.index).c_str());
    return 0;
}
