#include "cloud/data_queries.hpp"

#include <spdlog/spdlog.h>

#include "hawser/cloud/cloud.hpp"

namespace hawser::cloud::detail {

using Clock = std::chrono::steady_clock;

// What a query's workers and the connection's thread share. The workers hold it, never the
// query's handle: a query must not be destroyed on one of its own workers.
struct DataQueries::Flow : std::enable_shared_from_this<Flow> {
    const ConnectionId conn;
    const std::uint64_t id;

    std::mutex mu;  // the rest
    // Set once started. The Running that holds the handle outlives every use off the query's
    // workers; on them, the query outlives the call.
    zdb::Query* query = nullptr;
    std::uint64_t sent = 0, acked = 0;  // fragments
    std::size_t window = 1;
    bool held = false;       // paused: `window` fragments unacknowledged
    bool paused = false;     // paused by the client
    bool cancelled = false;  // cancel asked (maybe before the query started)
    Clock::time_point last_heard = Clock::now();
    std::optional<Error> failed;  // a fragment that could not go out

    Flow(ConnectionId c, std::uint64_t i) : conn(c), id(i) {}

    // Under mu.
    void apply_pause() {
        if (!query) return;
        if (cancelled)
            query->cancel();
        else if (held || paused)
            query->pause();
        else
            query->resume();
    }
    void cancel(Error why) {
        if (!failed) failed = std::move(why);
        cancelled = true;
        apply_pause();
    }
    Map progress() const {
        auto p = query ? query->progress() : zdb::QueryProgress{};
        return Map{{"scanned", Value(p.scanned)},    {"matched", Value(p.matched)},
                   {"seconds", Value(p.seconds)},    {"index", Value(p.index)},
                   {"fragments", Value(sent)},       {"acknowledged", Value(acked)},
                   {"paused", Value(held || paused)}};
    }
};

struct DataQueries::Running {
    Reply reply;
    std::shared_ptr<Flow> flow;
    std::shared_ptr<zdb::Query> query;  // once started, set under flow->mu
    const Clock::time_point started = Clock::now();
    // Counted as a job until the last handle goes: ~Cloud waits for it (the store outlives it).
    const std::shared_ptr<Jobs> jobs;

    Running(ConnectionId c, std::uint64_t i, Reply r, std::shared_ptr<Jobs> j)
        : reply(std::move(r)), flow(std::make_shared<Flow>(c, i)), jobs(std::move(j)) {}
    // Stops the query (its end, if it comes, finds the Running gone from the table).
    void cancel() {
        std::lock_guard lock(flow->mu);
        flow->cancelled = true;
        flow->apply_pause();
    }
    ~Running() {
        {
            std::lock_guard lock(flow->mu);  // a fragment's sender may still hold the flow
            flow->query = nullptr;
        }
        query.reset();  // waits for its workers
        jobs->end();
    }
};

bool DataQueries::admit(ConnectionId conn, std::uint64_t id, Reply reply) {
    std::lock_guard lock(mu_);
    // On the connection's thread: gone now means its closed hook has run, and will not again.
    if (!jobs_->host().find(conn)) return false;
    if (stopped_ || !jobs_->start()) {
        reply.fail(Errc::shutting_down, "the cloud service stopped");
        return false;
    }
    auto refuse = [&](Errc code, std::string why) {
        jobs_->end();
        reply.fail(code, std::move(why));
        return false;
    };
    sweep();
    if (running_.count({conn, id}))
        return refuse(Errc::already_exists, "query " + std::to_string(id) + " is running");
    auto first = running_.lower_bound({conn, 0});
    std::size_t mine = 0;
    for (auto it = first; it != running_.end() && it->first.first == conn; ++it) ++mine;
    if (mine >= limits_.per_connection)
        return refuse(Errc::limit_exceeded, "a connection runs at most " +
                                                std::to_string(limits_.per_connection) +
                                                " queries at once");
    if (running_.size() + parked_->size() >= limits_.total)  // parked ones hold snapshots too
        return refuse(Errc::overloaded,
                      "this node runs as many queries as it may; try again shortly");
    running_.emplace(Key{conn, id}, std::make_shared<Running>(conn, id, std::move(reply), jobs_));
    return true;
}

void DataQueries::sweep() {
    auto now = Clock::now();
    for (auto& [key, r] : running_) {
        auto& flow = *r->flow;
        std::lock_guard l(flow.mu);
        bool idle = (flow.held || flow.paused) && now - flow.last_heard > limits_.idle_timeout;
        if (idle || now - r->started > limits_.time_limit)
            flow.cancel(Error{Errc::timeout, idle ? "the query was left paused too long"
                                                  : "the query ran past its time limit"});
    }
}

std::shared_ptr<DataQueries::Running> DataQueries::find(ConnectionId conn, std::uint64_t id) const {
    std::lock_guard lock(mu_);
    auto it = running_.find({conn, id});
    return it == running_.end() ? nullptr : it->second;
}

std::shared_ptr<DataQueries::Running> DataQueries::take(ConnectionId conn, std::uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = running_.find({conn, id});
    if (it == running_.end()) return nullptr;
    auto r = std::move(it->second);
    running_.erase(it);
    return r;
}

void DataQueries::abandon(ConnectionId conn, std::uint64_t id, Errc code, std::string message) {
    auto r = take(conn, id);
    if (!r) return;
    r->reply.fail(code, std::move(message));
    // Never started: nothing to wait for, so it goes here.
}

void DataQueries::start(ConnectionId conn, std::uint64_t id, std::shared_ptr<zdb::Database> db,
                        zdb::Filter filter, zdb::QueryOptions options, std::size_t window) {
    auto r = find(conn, id);
    if (!r) return;  // its connection closed meanwhile
    auto& flow = *r->flow;
    {
        std::lock_guard lock(flow.mu);
        flow.window = std::max<std::size_t>(1, window);
    }
    std::weak_ptr<DataQueries> weak = weak_from_this();
    std::weak_ptr<Flow> weak_flow = r->flow;
    options.decode = false;         // records go out as stored
    options.start_paused = true;    // until the handle is kept: apply_pause() then resumes it
    options.ordered_lookahead = 1;  // ordered: a worker ahead holds one fragment, not a window
    options.on_end = [weak, conn, id](Result<zdb::QueryEnd> end, const zdb::QueryProgress& p) {
        auto self = weak.lock();
        if (!self) return;
        // On the connection's thread, after the fragments posted there before; whether or not
        // the connection is still open, so the query's place is given back.
        self->jobs_->host().post_user(conn & 0xff, "cloud data", [weak, conn, id, end, p] {
            if (auto self = weak.lock()) self->finish(conn, id, end, p);
        });
    };
    auto query = zdb::run_query(std::move(db), std::move(filter), std::move(options),
                                [weak, weak_flow](zdb::Fragment f) {
                                    auto self = weak.lock();
                                    auto flow = weak_flow.lock();
                                    if (self && flow) self->forward(*flow, std::move(f));
                                });
    if (!query) return abandon(conn, id, query.error().code, query.error().message);
    std::lock_guard lock(flow.mu);
    r->query = std::move(*query);
    flow.query = r->query.get();
    flow.apply_pause();  // what was asked, or the window filled, before it was known
}

// A query worker (one call at a time): the fragment, numbered, goes to the connection's
// thread to be sent. Built outside the flow's lock, which the connection's thread takes.
void DataQueries::forward(Flow& flow, zdb::Fragment fragment) {
    std::uint64_t seq;
    {
        std::lock_guard lock(flow.mu);
        if (flow.cancelled) return;
        seq = ++flow.sent;
        if (flow.sent - flow.acked >= flow.window) {
            flow.held = true;
            flow.apply_pause();
        }
    }
    DataFrame frame;
    frame << flow.id << seq;
    for (std::size_t i = 0; i < fragment.encoded.size(); ++i) {
        frame << fragment.encoded.id(i);
        if (auto ok = frame.append_encoded(fragment.encoded.bytes(i)); !ok) {
            std::lock_guard lock(flow.mu);
            return flow.cancel(
                Error{Errc::storage_error, "record " + std::to_string(fragment.encoded.id(i)) +
                                               " cannot be sent: " + ok.error().message});
        }
    }
    // Sent as text (the DataFrame's bytes): a client runs text handlers on its IO thread in
    // arrival order, before the query's reply, where a large DataFrame would be decoded on its
    // worker pool and could come after it.
    auto bytes = std::make_shared<std::string>(std::move(frame).take_bytes());
    std::weak_ptr<Flow> weak_flow = flow.weak_from_this();
    auto host = jobs_->host_ptr();
    host->post_user(flow.conn & 0xff, "cloud data", [host, weak_flow, bytes] {
        auto flow = weak_flow.lock();
        if (!flow) return;
        auto conn = host->find(flow->conn);
        auto sent = conn
                        ? Connection(conn).send(Cloud::data_fragment_push, std::move(*bytes), false)
                        : Result<void>(Error{Errc::disconnected, "the connection closed"});
        if (sent) return;
        std::lock_guard lock(flow->mu);
        flow->cancel(
            Error{sent.error().code, "a fragment could not be sent: " + sent.error().message});
    });
}

void DataQueries::finish(ConnectionId conn, std::uint64_t id, Result<zdb::QueryEnd> end,
                         zdb::QueryProgress p) {
    auto r = take(conn, id);
    if (!r) return;
    std::uint64_t sent;
    std::optional<Error> failed;
    {
        std::lock_guard lock(r->flow->mu);
        sent = r->flow->sent;
        failed = r->flow->failed;
    }
    if (failed) {
        r->reply.fail(failed->code, failed->message);
    } else if (!end) {
        r->reply.fail(end.error().code, end.error().message);
    } else {
        DataFrame out;
        out << std::string(zdb::name_of(*end)) << p.scanned << p.matched << p.seconds << p.index
            << sent;
        r->reply.reply(std::move(out));
    }
    release(std::move(r));
}

void DataQueries::release(std::shared_ptr<Running> r) {
    parked_->park(std::move(r));
}

void DataQueries::ack(ConnectionId conn, std::uint64_t id, std::uint64_t seq) {
    {
        std::lock_guard lock(mu_);
        sweep();
    }
    auto r = find(conn, id);
    if (!r) return;  // ended meanwhile
    auto& flow = *r->flow;
    std::lock_guard lock(flow.mu);
    if (seq <= flow.acked || seq > flow.sent) return;  // stale, or for fragments never sent
    flow.acked = seq;
    flow.last_heard = Clock::now();
    if (flow.held && flow.sent - flow.acked < flow.window) {
        flow.held = false;
        flow.apply_pause();
    }
}

Result<Map> DataQueries::control(ConnectionId conn, std::uint64_t id, std::string_view action) {
    auto r = find(conn, id);
    if (!r) return Error{Errc::not_found, "no query " + std::to_string(id) + " is running"};
    auto& flow = *r->flow;
    std::lock_guard lock(flow.mu);
    if (action == "pause") {
        flow.paused = true;
    } else if (action == "resume") {
        flow.paused = false;
        flow.last_heard = Clock::now();  // only moving on counts: not asking for progress
    } else if (action == "cancel")
        flow.cancelled = true;
    else if (action != "progress")
        return Error{Errc::invalid_argument, "the actions are pause, resume, cancel and progress"};
    flow.apply_pause();
    return flow.progress();
}

void DataQueries::connection_closed(ConnectionId conn) {
    std::vector<std::shared_ptr<Running>> closed;
    {
        std::lock_guard lock(mu_);
        auto it = running_.lower_bound({conn, 0});
        while (it != running_.end() && it->first.first == conn) {
            closed.push_back(std::move(it->second));
            it = running_.erase(it);
        }
    }
    for (auto& r : closed) {
        r->cancel();
        r->reply.fail(Errc::cancelled, "the connection closed or signed out");
        release(std::move(r));
    }
}

void DataQueries::stop() {
    std::map<Key, std::shared_ptr<Running>> all;
    {
        std::lock_guard lock(mu_);
        stopped_ = true;
        all.swap(running_);
    }
    parked_->close();  // and a release racing this one lets go where it is
    for (auto& [key, r] : all) r->cancel();
    all.clear();  // each query's destructor waits for its workers
}

std::size_t DataQueries::running() const {
    std::lock_guard lock(mu_);
    return running_.size();
}

}  // namespace hawser::cloud::detail
