// ServedQueries: the queries a StoreService runs for its clients, by id, each belonging to the
// connection that started it. A query's fragments wait here (encoded, as they will be sent) for
// the client's next call; past max_buffered the query pauses until the client takes one, so a
// client that stops asking holds only that much. A query leaves the table when its client has
// its end, when the client cancels it, when its connection closes, or when nobody asked for
// it for `idle` (looked at whenever another query starts, and every half of `idle` on the
// server's first loop while any runs), so a client that gave up on it cannot hold its place and
// its snapshot.
//
// Thread affinity: start, next, cancel and connection_closed run on the server's IO threads
// and worker pool; fragments and ends arrive on query workers, which never release a query's
// last handle (that waits for them). Handles are let go on the worker pool (ParkedHandles), never
// on an IO thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "hawser/commands.hpp"
#include "hawser/zdb/query.hpp"
#include "rpc/host.hpp"
#include "rpc/parked_handles.hpp"

namespace hawser::zdb::net {

class ServedQueries : public std::enable_shared_from_this<ServedQueries> {
  public:
    struct Limits {
        std::size_t per_connection, total, buffered;
        std::chrono::milliseconds idle;
    };
    ServedQueries(std::shared_ptr<hawser::detail::Host> host, Limits limits)
        : host_(host),
          limits_(limits),
          parked_(std::make_shared<hawser::detail::ParkedHandles>(std::move(host))) {}

    // Starts a query for `conn`; its id. limit_exceeded past the limits.
    Result<std::uint64_t> start(ConnectionId conn, std::shared_ptr<Database> db, Filter filter,
                                QueryOptions options);
    // Replies with the query's next fragment or its end, now or once there is one.
    void next(ConnectionId conn, std::uint64_t id, Responder<DataFrame> reply);
    // The query stops and leaves; a next call waiting gets its end (cancelled), a later one
    // not_found.
    void cancel(ConnectionId conn, std::uint64_t id);
    void connection_closed(ConnectionId conn);
    // Cancels every query and releases them (blocks until their workers are done).
    void stop();
    std::size_t size() const;
    std::size_t buffered() const;                           // fragments waiting for next calls
    std::size_t parked() const { return parked_->size(); }  // left, waiting for a free worker

  private:
    struct Served;
    struct Entry {
        ConnectionId conn;
        std::shared_ptr<Served> served;
        std::shared_ptr<Query> query;
    };

    std::shared_ptr<Served> find(ConnectionId conn, std::uint64_t id) const;
    void remove(ConnectionId conn, std::uint64_t id);
    void sweep();      // the ended ones whose end went out, and those nobody asked for
    void arm_sweep();  // a sweep on the first loop in half of `idle`, unless one is due
    std::shared_ptr<Query> detach(Entry& entry);
    void release(Entry& entry);  // its handle, cancelled, is let go on the worker pool

    const std::shared_ptr<hawser::detail::Host> host_;
    const Limits limits_;
    mutable std::mutex mu_;
    std::map<std::uint64_t, Entry> queries_;
    const std::shared_ptr<hawser::detail::ParkedHandles> parked_;  // queries that left
    std::uint64_t next_id_ = 1;
    bool stopped_ = false;
    bool sweep_armed_ = false;
};

}  // namespace hawser::zdb::net
