// StoreService (include/hawser/zdb/store_service.hpp): admits nodes by key and runs their
// operations on the store. The key is checked on the connection's IO thread, so a stranger
// costs a lookup and never a place in the worker pool; operations then run on the worker pool
// (storage calls block). A next call or a cancel only touches a query's buffer: IO thread.
#include "hawser/zdb/store_service.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "hawser/server.hpp"
#include "hawser/zdb/declarative_filter.hpp"
#include "hawser/zdb/store.hpp"
#include "rpc/host.hpp"
#include "wire/noise.hpp"
#include "zdb_net/protocol.hpp"
#include "zdb_net/served_queries.hpp"

namespace hawser::zdb {

using Reply = Responder<DataFrame>;

namespace {

// What a client decodes, whatever it asked for: a scan page's ids and records are one array, of
// at most DecodeLimits::max_container (65,536) values; a fragment's are two top-level values
// each, and its ids and length headers (up to 14 bytes a record) are not in fragment_bytes.
constexpr std::uint64_t max_scan_page_records = 32767;
constexpr std::size_t max_fragment_records = 16384;

}  // namespace

struct StoreService::Impl {
    Impl(Store& s, StoreServiceOptions o, std::shared_ptr<hawser::detail::Host> h)
        : store(s),
          options(std::move(o)),
          host(std::move(h)),
          queries(std::make_shared<net::ServedQueries>(
              host, net::ServedQueries::Limits{options.max_queries_per_connection,
                                               options.max_queries, options.max_buffered_fragments,
                                               options.query_idle_timeout})) {
        for (const auto& k : options.allowed_keys)
            allowed.insert(hawser::detail::noise::to_hex(*hawser::detail::noise::key_from_hex(k)));
    }

    Store& store;
    const StoreServiceOptions options;
    const std::shared_ptr<hawser::detail::Host> host;
    std::unordered_set<std::string> allowed;  // lower-case hex
    std::shared_ptr<net::ServedQueries> queries;
    std::atomic<bool> stopped{false};

    bool admitted(const Connection& c, const Reply& reply) const {
        if (stopped.load()) {
            reply.fail(Errc::shutting_down, "the store service stopped");
            return false;
        }
        auto key = c.peer_static_key();
        if (key && allowed.contains(*key)) return true;
        reply.fail(Errc::not_allowed, "this connection's key may not use the store");
        return false;
    }

    // Replies with `r`'s error, or runs `f` on its value.
    template <class T, class F>
    static void then(Result<T> r, const Reply& reply, F f) {
        if (!r) return reply.fail(r.error().code, r.error().message);
        f(std::move(*r));
    }
    static void done(Result<void> r, const Reply& reply) {
        if (!r) return reply.fail(r.error().code, r.error().message);
        reply.reply(DataFrame{});
    }
    template <class T>
    static void value(Result<T> r, const Reply& reply) {
        then(std::move(r), reply, [&](T v) {
            DataFrame out;
            out << v;
            reply.reply(std::move(out));
        });
    }

    Result<std::shared_ptr<Database>> database(DataFrame& arg) {
        auto name = arg.read_string();
        if (!name) return Error{Errc::invalid_argument, "expected a database name"};
        return store.database(*name);
    }

    // IO thread: the key, then the operation on the worker pool (a cancel at once).
    static void handle(std::shared_ptr<Impl> self, const Request& req, DataFrame arg, Reply reply) {
        if (!self->admitted(req.connection(), reply)) return;
        auto op = arg.read_string();
        if (!op) return reply.fail(Errc::invalid_argument, "expected an operation name");
        if (*op == net::op::cancel) return self->cancel(req, arg, reply);
        auto bytes = arg.bytes().size();
        auto job = [self, req, op = std::move(*op), arg = std::move(arg), reply]() mutable {
            try {  // the worker pool ends the process on an exception
                self->run(req, op, arg, reply);
            } catch (const std::exception& e) {
                spdlog::error("hawser zdb service: '{}' failed: {}", op, e.what());
                reply.fail(Errc::handler_error, "the store's node failed; see its log");
            }
        };
        if (!self->host->try_post_work(std::move(job), bytes))
            reply.fail(Errc::overloaded, "the store's node is busy; try again shortly");
    }

    // Worker pool.
    void run(const Request& req, const std::string& op, DataFrame& arg, const Reply& reply) {
        if (auto store_op = store_ops().find(op); store_op != store_ops().end())
            return (this->*store_op->second)(req, arg, reply);
        auto db_op = database_ops().find(op);
        if (db_op == database_ops().end())
            return reply.fail(Errc::invalid_argument, "no operation '" + op.substr(0, 64) + "'");
        then(database(arg), reply,
             [&](std::shared_ptr<Database> db) { (this->*db_op->second)(req, db, arg, reply); });
    }

    // --- the store ---
    using StoreOp = void (Impl::*)(const Request&, DataFrame&, const Reply&);
    static const std::unordered_map<std::string_view, StoreOp>& store_ops() {
        static const std::unordered_map<std::string_view, StoreOp> ops{
            {net::op::hello, &Impl::hello},
            {net::op::list, &Impl::list},
            {net::op::open, &Impl::open},
            {net::op::create, &Impl::create},
            {net::op::drop, &Impl::drop},
            {net::op::compact, &Impl::compact},
            {net::op::copy, &Impl::copy},
            {net::op::replace_database, &Impl::replace_db},
            {net::op::store_stats, &Impl::stats_of_store}};
        return ops;
    }
    void hello(const Request&, DataFrame&, const Reply& reply) { reply.reply(DataFrame{}); }
    void list(const Request&, DataFrame&, const Reply& reply) {
        auto names = store.list();
        DataFrame out;
        out << std::uint64_t(names.size());
        for (auto& n : names) out << n;
        reply.reply(std::move(out));
    }
    void open(const Request&, DataFrame& arg, const Reply& reply) {
        then(database(arg), reply, [&](std::shared_ptr<Database> db) {
            DataFrame out;
            out << std::uint64_t(db->durability());
            reply.reply(std::move(out));
        });
    }
    void create(const Request&, DataFrame& arg, const Reply& reply) {
        auto name = arg.read_string();
        auto durability = arg.read_uint();
        if (!name || !durability || *durability > std::uint64_t(Durability::fast))
            return reply.fail(Errc::invalid_argument, "expected a name and a durability (0-2)");
        then(store.create(*name, {Durability(*durability)}), reply,
             [&](std::shared_ptr<Database> db) {
                 DataFrame out;
                 out << std::uint64_t(db->durability());
                 reply.reply(std::move(out));
             });
    }
    void drop(const Request&, DataFrame& arg, const Reply& reply) {
        auto name = arg.read_string();
        if (!name) return reply.fail(Errc::invalid_argument, "expected a database name");
        done(store.drop(*name), reply);
    }
    void compact(const Request&, DataFrame& arg, const Reply& reply) {
        auto name = arg.read_string();
        if (!name) return reply.fail(Errc::invalid_argument, "expected a database name");
        done(store.compact(*name), reply);
    }
    void copy(const Request&, DataFrame& arg, const Reply& reply) {
        auto from = arg.read_string();
        auto to = arg.read_string();
        if (!from || !to) return reply.fail(Errc::invalid_argument, "expected two names");
        done(store.copy(*from, *to), reply);
    }
    void replace_db(const Request&, DataFrame& arg, const Reply& reply) {
        auto target = arg.read_string();
        auto source = arg.read_string();
        if (!target || !source) return reply.fail(Errc::invalid_argument, "expected two names");
        done(store.replace(*target, *source), reply);
    }
    void stats_of_store(const Request&, DataFrame&, const Reply& reply) {
        auto s = store.stats();
        DataFrame out;
        out << s.cache_capacity_bytes << s.cache_usage_bytes << s.cache_hits << s.cache_misses;
        reply.reply(std::move(out));
    }
    void cancel(const Request& req, DataFrame& arg, const Reply& reply) {
        auto id = arg.read_uint();
        if (!id) return reply.fail(Errc::invalid_argument, "expected a query id");
        queries->cancel(req.connection().id(), *id);
        reply.reply(DataFrame{});
    }

    // --- a database ---
    using DbOp = void (Impl::*)(const Request&, const std::shared_ptr<Database>&, DataFrame&,
                                const Reply&);
    static const std::unordered_map<std::string_view, DbOp>& database_ops() {
        static const std::unordered_map<std::string_view, DbOp> ops{
            {net::op::insert, &Impl::insert},
            {net::op::insert_batch, &Impl::insert_batch},
            {net::op::insert_unique, &Impl::insert_unique},
            {net::op::get, &Impl::get},
            {net::op::replace, &Impl::replace},
            {net::op::patch, &Impl::patch},
            {net::op::remove, &Impl::remove},
            {net::op::exists, &Impl::exists},
            {net::op::count, &Impl::count},
            {net::op::scan, &Impl::scan},
            {net::op::put_attachment, &Impl::put_attachment},
            {net::op::get_attachment, &Impl::get_attachment},
            {net::op::remove_attachment, &Impl::remove_attachment},
            {net::op::attachments, &Impl::attachments},
            {net::op::create_index, &Impl::create_index},
            {net::op::drop_index, &Impl::drop_index},
            {net::op::stats, &Impl::stats},
            {net::op::query, &Impl::query}};
        return ops;
    }
    void insert(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                const Reply& reply) {
        then(arg.read_map(), reply, [&](Map doc) { value(db->insert(doc), reply); });
    }
    void insert_batch(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                      const Reply& reply) {
        auto n = arg.read_uint();
        if (!n || *n > arg.size()) return reply.fail(Errc::invalid_argument, "expected a count");
        std::vector<Map> docs;
        for (std::uint64_t i = 0; i < *n; ++i) {
            auto doc = arg.read_map();
            if (!doc) return reply.fail(Errc::invalid_argument, "expected a document");
            docs.push_back(std::move(*doc));
        }
        then(db->insert_batch(docs), reply, [&](std::vector<RecordId> ids) {
            DataFrame out;
            for (auto id : ids) out << id;
            reply.reply(std::move(out));
        });
    }
    void insert_unique(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                       const Reply& reply) {
        auto doc = arg.read_map();
        auto field = arg.read_string();
        if (!doc || !field) return reply.fail(Errc::invalid_argument, "expected a map and a field");
        value(db->insert_unique(*doc, *field), reply);
    }
    void get(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
             const Reply& reply) {
        then(arg.read_uint(), reply, [&](RecordId id) { value(db->get(id), reply); });
    }
    void replace(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                 const Reply& reply) {
        auto id = arg.read_uint();
        auto doc = arg.read_map();
        if (!id || !doc) return reply.fail(Errc::invalid_argument, "expected an id and a map");
        done(db->replace(*id, *doc), reply);
    }
    void patch(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
               const Reply& reply) {
        auto id = arg.read_uint();
        auto fields = arg.read_map();
        if (!id || !fields) return reply.fail(Errc::invalid_argument, "expected an id and a map");
        done(db->patch(*id, *fields), reply);
    }
    void remove(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                const Reply& reply) {
        then(arg.read_uint(), reply, [&](RecordId id) { done(db->remove(id), reply); });
    }
    void exists(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                const Reply& reply) {
        then(arg.read_uint(), reply, [&](RecordId id) { value(db->exists(id), reply); });
    }
    void count(const Request&, const std::shared_ptr<Database>& db, DataFrame&,
               const Reply& reply) {
        DataFrame out;
        out << db->count();
        reply.reply(std::move(out));
    }
    // A page: up to `limit` records from `from` (to `to`, reversed or not), at most
    // max_scan_bytes; then whether more may follow and the id to go on from.
    void scan(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
              const Reply& reply) {
        auto from = arg.read_uint();
        auto to = arg.read_uint();
        auto reverse = arg.read_bool();
        auto limit = arg.read_uint();
        if (!from || !to || !reverse || !limit || *limit == 0)
            return reply.fail(Errc::invalid_argument, "expected from, to, reverse and a limit");
        *limit = std::min(*limit, max_scan_page_records);  // the client reads on from `last`
        DataFrame records;
        std::uint64_t n = 0;
        RecordId last = 0;
        bool more = false;
        auto scanned = db->scan(
            [&](RecordId id, const Map& record) {
                if (n == *limit || records.bytes().size() >= options.max_scan_bytes) {
                    more = true;
                    return false;
                }
                records << id << record;
                ++n;
                last = id;
                return true;
            },
            ScanOptions{*from, *to, *reverse});
        if (!scanned) return reply.fail(scanned.error().code, scanned.error().message);
        DataFrame out;
        out << n << records << more << last;
        reply.reply(std::move(out));
    }
    void put_attachment(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                        const Reply& reply) {
        auto id = arg.read_uint();
        auto name = arg.read_string();
        auto bytes = arg.read_bytes();
        if (!id || !name || !bytes)
            return reply.fail(Errc::invalid_argument, "expected an id, a name and bytes");
        done(db->put_attachment(*id, *name, *bytes), reply);
    }
    void get_attachment(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                        const Reply& reply) {
        auto id = arg.read_uint();
        auto name = arg.read_string();
        if (!id || !name) return reply.fail(Errc::invalid_argument, "expected an id and a name");
        value(db->get_attachment(*id, *name), reply);
    }
    void remove_attachment(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                           const Reply& reply) {
        auto id = arg.read_uint();
        auto name = arg.read_string();
        if (!id || !name) return reply.fail(Errc::invalid_argument, "expected an id and a name");
        done(db->remove_attachment(*id, *name), reply);
    }
    void attachments(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                     const Reply& reply) {
        then(arg.read_uint(), reply, [&](RecordId id) {
            then(db->attachments(id), reply, [&](std::vector<std::string> names) {
                DataFrame out;
                out << std::uint64_t(names.size());
                for (auto& n : names) out << n;
                reply.reply(std::move(out));
            });
        });
    }
    void create_index(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                      const Reply& reply) {
        then(arg.read_string(), reply,
             [&](std::string field) { done(db->create_index(field), reply); });
    }
    void drop_index(const Request&, const std::shared_ptr<Database>& db, DataFrame& arg,
                    const Reply& reply) {
        then(arg.read_string(), reply,
             [&](std::string field) { done(db->drop_index(field), reply); });
    }
    void stats(const Request&, const std::shared_ptr<Database>& db, DataFrame&,
               const Reply& reply) {
        auto s = db->stats();
        DataFrame out;
        out << s.records << s.next_id << s.document_bytes << s.blob_bytes << s.index_bytes
            << std::uint64_t(s.indexes.size());
        for (auto& i : s.indexes) out << i;
        reply.reply(std::move(out));
    }
    // A declarative filter, its params, the options and an output database's name ("" for
    // none); the query's id. Fragments come with next calls.
    void query(const Request& req, const std::shared_ptr<Database>& db, DataFrame& arg,
               const Reply& reply) {
        auto filter_map = arg.read_map();
        auto params = arg.read_map();
        if (!filter_map || !params)
            return reply.fail(Errc::invalid_argument, "expected a filter and its params");
        QueryOptions o;
        if (auto ok = net::read_query_options(arg, o); !ok)
            return reply.fail(ok.error().code, ok.error().message);
        auto output = arg.read_string();
        if (!output) return reply.fail(Errc::invalid_argument, "expected an output name");
        o.params = std::move(*params);
        // What a query may hold here is bounded by what it is allowed to run with: its workers
        // each finish the fragment they are making when it pauses.
        o.fragment_bytes = std::min(o.fragment_bytes, options.max_fragment_bytes);
        o.fragment_records = std::min(o.fragment_records, max_fragment_records);
        o.parallelism = o.parallelism == 0 ? options.max_query_parallelism
                                           : std::min(o.parallelism, options.max_query_parallelism);
        o.ordered_lookahead = std::min<std::size_t>(o.ordered_lookahead, 4);
        if (!output->empty()) {
            auto out = store.database(*output);
            if (!out) return reply.fail(out.error().code, out.error().message);
            o.output = std::move(*out);
        }
        auto filter = compile_filter(*filter_map);
        if (!filter) return reply.fail(filter.error().code, filter.error().message);
        value(queries->start(req.connection().id(), db, std::move(*filter), std::move(o)), reply);
    }

    void next(const Request& req, DataFrame arg, Reply reply) {
        if (!admitted(req.connection(), reply)) return;
        auto id = arg.read_uint();
        if (!id) return reply.fail(Errc::invalid_argument, "expected a query id");
        queries->next(req.connection().id(), *id, std::move(reply));
    }
};

Result<void> StoreService::validate(const StoreServiceOptions& o) {
    auto bad = [](std::string why) { return Error{Errc::invalid_argument, "zdb service: " + why}; };
    if (o.allowed_keys.empty()) return bad("allowed_keys names no node");
    for (const auto& k : o.allowed_keys)
        if (!hawser::detail::noise::key_from_hex(k))
            return bad("'" + k.substr(0, 80) + "' is not a public key (64 hex digits)");
    if (o.max_queries_per_connection == 0 || o.max_queries == 0 || o.max_buffered_fragments == 0)
        return bad("query limits must be at least 1");
    if (o.max_fragment_bytes < 1024 || o.max_scan_bytes < 1024)
        return bad("max_fragment_bytes and max_scan_bytes are at least 1024");
    if (o.max_query_parallelism == 0 || o.max_query_parallelism > 64)
        return bad("max_query_parallelism is 1 to 64");
    if (o.query_idle_timeout < std::chrono::milliseconds(1))
        return bad("query_idle_timeout must be positive");
    return {};
}

StoreService::StoreService(Server& server, Store& store, StoreServiceOptions options) {
    if (auto ok = validate(options); !ok) throw Exception(ok.error());
    auto& host = hawser::detail::host_of(server);
    impl_ = std::make_shared<Impl>(store, std::move(options), host.shared_from_this());
    std::weak_ptr<Impl> weak = impl_;
    CommandOptions command_options{.public_access = true};  // the key is the gate
    server.commands().dataframe(
        std::string(command),
        [weak](const Request& req, DataFrame arg, Reply reply) {
            auto impl = weak.lock();
            if (!impl) return reply.fail(Errc::shutting_down, "the store service stopped");
            Impl::handle(std::move(impl), req, std::move(arg), std::move(reply));
        },
        command_options);
    server.commands().dataframe(
        std::string(next_command),
        [weak](const Request& req, DataFrame arg, Reply reply) {
            auto impl = weak.lock();
            if (!impl) return reply.fail(Errc::shutting_down, "the store service stopped");
            impl->next(req, std::move(arg), std::move(reply));
        },
        command_options);
    hawser::detail::Host::ServiceHooks hooks;
    hooks.closed = [weak](ConnectionId id) {
        if (auto impl = weak.lock()) impl->queries->connection_closed(id);
    };
    host.services.push_back(std::move(hooks));
}

StoreService::~StoreService() {
    impl_->stopped.store(true);
    impl_->queries->stop();
}

StoreService::Stats StoreService::stats() const {
    return {impl_->queries->size(), impl_->queries->buffered(), impl_->queries->parked()};
}

}  // namespace hawser::zdb
