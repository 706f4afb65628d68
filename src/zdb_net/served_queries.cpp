#include "zdb_net/served_queries.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <optional>
#include <vector>

#include "rpc/loop.hpp"
#include "zdb_net/protocol.hpp"

namespace hawser::zdb::net {

// What a query's workers and the service's threads share. The workers hold it, never the
// query's handle.
struct ServedQueries::Served {
    const std::size_t max_buffered;

    std::mutex mu;                                // the rest
    Query* query = nullptr;                       // while the table holds the handle
    std::deque<DataFrame> ready;                  // fragments the client has not asked for yet
    std::optional<Responder<DataFrame>> waiting;  // a next call with nothing to answer yet
    bool paused = false;                          // by us, for the client
    std::optional<DataFrame> end;                 // once the query ended
    bool end_sent = false;                        // to a next call
    std::chrono::steady_clock::time_point asked = std::chrono::steady_clock::now();

    explicit Served(std::size_t m) : max_buffered(m) {}

    // Under mu: what a next call gets now, if anything; `ended` when it is the end.
    std::optional<DataFrame> take(bool& ended) {
        ended = false;
        asked = std::chrono::steady_clock::now();
        if (!ready.empty()) {
            auto out = std::move(ready.front());
            ready.pop_front();
            if (paused && query && ready.size() < max_buffered) {
                query->resume();
                paused = false;
            }
            return out;
        }
        if (end) {
            ended = end_sent = true;
            return *end;
        }
        return std::nullopt;
    }
};

namespace {

DataFrame encode_fragment(const Fragment& f, const QueryProgress& p) {
    DataFrame out;
    out << fragment_reply;
    write_progress(out, p);
    out << std::uint64_t(f.encoded.size());
    for (std::size_t i = 0; i < f.encoded.size(); ++i) {
        auto bytes = f.encoded.bytes(i);
        out << f.encoded.id(i)
            << std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    return out;
}

DataFrame encode_end(const Result<QueryEnd>& end, const QueryProgress& p) {
    DataFrame out;
    out << end_reply;
    write_progress(out, p);
    out << bool(end);
    if (end)
        out << name_of(end.value());
    else
        out << std::uint64_t(end.error().code) << end.error().message;
    return out;
}

}  // namespace

Result<std::uint64_t> ServedQueries::start(ConnectionId conn, std::shared_ptr<Database> db,
                                           Filter filter, QueryOptions options) {
    sweep();
    std::uint64_t id;
    {
        std::lock_guard lock(mu_);
        if (stopped_) return Error{Errc::shutting_down, "the store service stopped"};
        if (queries_.size() + parked_->size() >= limits_.total)  // parked ones hold snapshots
            return Error{Errc::limit_exceeded, "the store service runs its most queries"};
        std::size_t mine = 0;
        for (auto& [_, e] : queries_) mine += e.conn == conn;
        if (mine >= limits_.per_connection)
            return Error{Errc::limit_exceeded, "this connection runs its most queries"};
        id = next_id_++;
        queries_[id] = Entry{conn, nullptr, nullptr};  // holds the place
    }
    // A connection that closed while this start waited for a worker has had its closed hook
    // already (a closing connection leaves the registry first): the query would have no client.
    if (!host_->find(conn)) {
        std::lock_guard lock(mu_);
        queries_.erase(id);
        return Error{Errc::disconnected, "the connection closed"};
    }
    auto served = std::make_shared<Served>(limits_.buffered);
    std::weak_ptr<ServedQueries> weak = weak_from_this();
    options.decode = false;
    options.start_paused = true;
    options.on_end = [served, weak, conn, id](Result<QueryEnd> end, const QueryProgress& p) {
        auto frame = encode_end(end, p);
        std::optional<Responder<DataFrame>> reply;
        {
            std::lock_guard lock(served->mu);
            served->end = frame;
            served->asked = std::chrono::steady_clock::now();  // its end waits to be fetched
            if (served->waiting && served->ready.empty()) {
                reply = std::move(served->waiting);
                served->waiting.reset();
                served->end_sent = true;
            }
        }
        if (!reply) return;
        reply->reply(std::move(frame));
        // The client has the end: the query leaves, on the worker pool (not here, a worker).
        if (auto self = weak.lock())
            if (!self->host_->try_post_work([weak, conn, id] {
                    if (auto self = weak.lock()) self->remove(conn, id);
                }))
                spdlog::warn(
                    "hawser zdb service: a finished query leaves when the next one starts "
                    "(the worker pool is full)");
    };
    auto sink = [served](Fragment f) {
        std::optional<Responder<DataFrame>> reply;
        Query* query;
        {
            std::lock_guard lock(served->mu);
            query = served->query;
        }
        // Encoded outside the lock. The query is alive while one of its workers is here, even
        // if the table let go of it meanwhile (its release waits for its workers).
        auto frame = encode_fragment(f, query ? query->progress() : QueryProgress{});
        {
            std::lock_guard lock(served->mu);
            if (served->waiting) {
                reply = std::move(served->waiting);
                served->waiting.reset();
                served->asked = std::chrono::steady_clock::now();  // idle from the answer
            } else {
                served->ready.push_back(std::move(frame));
                if (served->ready.size() >= served->max_buffered && served->query &&
                    !served->paused) {
                    served->query->pause();
                    served->paused = true;
                }
            }
        }
        if (reply) reply->reply(std::move(frame));
    };
    Result<std::shared_ptr<Query>> query = Error{Errc::overloaded, "cannot start the query"};
    try {
        query = run_query(std::move(db), std::move(filter), std::move(options), std::move(sink));
    } catch (const std::exception& e) {  // its threads could not start
        query = Error{Errc::overloaded, std::string("cannot start the query: ") + e.what()};
    }
    std::unique_lock lock(mu_);
    auto it = queries_.find(id);
    if (!query || it == queries_.end()) {  // failed, or the connection closed meanwhile
        if (it != queries_.end()) queries_.erase(it);
        lock.unlock();
        if (!query) return query.error();
        (*query)->cancel();
        return Error{Errc::disconnected, "the connection closed"};
    }
    it->second.served = served;
    it->second.query = *query;
    {
        std::lock_guard s(served->mu);
        served->query = query->get();
    }
    (*query)->resume();
    lock.unlock();
    arm_sweep();
    return id;
}

std::shared_ptr<ServedQueries::Served> ServedQueries::find(ConnectionId conn,
                                                           std::uint64_t id) const {
    std::lock_guard lock(mu_);
    auto it = queries_.find(id);
    if (it == queries_.end() || it->second.conn != conn) return nullptr;
    return it->second.served;
}

void ServedQueries::next(ConnectionId conn, std::uint64_t id, Responder<DataFrame> reply) {
    auto served = find(conn, id);
    if (!served) return reply.fail(Errc::not_found, "no such query");
    bool ended = false;
    std::optional<DataFrame> out;
    {
        std::lock_guard lock(served->mu);
        out = served->take(ended);
        if (!out) {
            if (served->waiting)
                return reply.fail(Errc::too_many_pending, "a next call already waits");
            served->waiting = std::move(reply);
            return;
        }
    }
    if (ended) remove(conn, id);
    reply.reply(std::move(*out));
}

void ServedQueries::cancel(ConnectionId conn, std::uint64_t id) {
    auto served = find(conn, id);
    if (!served) return;
    std::optional<Responder<DataFrame>> waiting;
    DataFrame end;
    {
        std::lock_guard lock(served->mu);
        if (served->query) served->query->cancel();
        if (served->waiting) {
            waiting = std::move(served->waiting);
            served->waiting.reset();
            auto p = served->query ? served->query->progress() : QueryProgress{};
            end = served->end ? *served->end : encode_end(QueryEnd::cancelled, p);
        }
    }
    remove(conn, id);
    if (waiting) waiting->reply(std::move(end));
}

// Decided and taken out of the table under both locks, so that a next call either came
// before (and the query is not idle) or finds it gone.
void ServedQueries::sweep() {
    auto now = std::chrono::steady_clock::now();
    std::vector<Entry> gone;
    {
        std::lock_guard lock(mu_);
        for (auto it = queries_.begin(); it != queries_.end();) {
            bool leave = false;
            if (auto& served = it->second.served) {
                std::lock_guard s(served->mu);
                leave =
                    served->end_sent || (!served->waiting && now - served->asked > limits_.idle);
            }
            if (leave) {
                gone.push_back(std::move(it->second));
                it = queries_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto& e : gone) release(e);
}

// While queries run, a sweep every half of `idle`: a query its client left finds no other start
// to sweep it. On the first loop, whose thread takes the table's locks; releases go on the
// worker pool.
void ServedQueries::arm_sweep() {
    {
        std::lock_guard lock(mu_);
        if (sweep_armed_ || stopped_ || queries_.empty()) return;
        sweep_armed_ = true;
    }
    auto every =
        std::max<hawser::detail::Clock::duration>(limits_.idle / 2, std::chrono::milliseconds(10));
    host_->runtime.loop(0).post_after(every, [weak = weak_from_this()] {
        auto self = weak.lock();
        if (!self) return;
        {
            std::lock_guard lock(self->mu_);
            self->sweep_armed_ = false;
        }
        self->sweep();
        self->arm_sweep();
    });
}

void ServedQueries::connection_closed(ConnectionId conn) {
    std::vector<Entry> gone;
    {
        std::lock_guard lock(mu_);
        for (auto it = queries_.begin(); it != queries_.end();)
            if (it->second.conn == conn) {
                gone.push_back(std::move(it->second));
                it = queries_.erase(it);
            } else {
                ++it;
            }
    }
    for (auto& e : gone) release(e);
}

void ServedQueries::remove(ConnectionId conn, std::uint64_t id) {
    std::optional<Entry> gone;
    {
        std::lock_guard lock(mu_);
        auto it = queries_.find(id);
        if (it == queries_.end() || it->second.conn != conn) return;
        gone = std::move(it->second);
        queries_.erase(it);
    }
    release(*gone);
}

// The query's handle, cancelled and unhooked from what its workers share; null for an entry
// still starting (start() sees it gone).
std::shared_ptr<Query> ServedQueries::detach(Entry& entry) {
    if (!entry.served) return nullptr;
    {
        std::lock_guard lock(entry.served->mu);
        entry.served->query = nullptr;
        entry.served->waiting.reset();
    }
    entry.query->cancel();
    return std::move(entry.query);
}

void ServedQueries::release(Entry& entry) {
    if (auto query = detach(entry)) parked_->park(std::move(query));
}

void ServedQueries::stop() {
    std::map<std::uint64_t, Entry> all;
    {
        std::lock_guard lock(mu_);
        stopped_ = true;
        all.swap(queries_);
    }
    parked_->close();  // and a release racing this one lets go where it is
    for (auto& [_, e] : all) detach(e).reset();  // waits for its workers
}

std::size_t ServedQueries::buffered() const {
    std::vector<std::shared_ptr<Served>> all;
    {
        std::lock_guard lock(mu_);
        for (auto& [_, e] : queries_)
            if (e.served) all.push_back(e.served);
    }
    std::size_t n = 0;
    for (auto& s : all) {
        std::lock_guard lock(s->mu);
        n += s->ready.size();
    }
    return n;
}

std::size_t ServedQueries::size() const {
    std::lock_guard lock(mu_);
    return queries_.size();
}

}  // namespace hawser::zdb::net
