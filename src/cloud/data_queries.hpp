// DataQueries: the data queries running for clients (docs/cloud.md, "Queries"). A query runs on
// ZDB's workers over a snapshot; each fragment goes to the client as a one-way
// cloud.data.fragment, sent on the connection's IO thread, and at most `window` fragments wait
// unacknowledged (cloud.data.ack): past that the query pauses until the client catches up, so
// what a query holds is bounded by its window whatever the client's pace. The call's reply
// says how the query ended and follows its last fragment.
//
// Where work runs: admission, acknowledgements, control and the end on the connection's IO
// thread; the start on the worker pool (planning reads the index); fragments are built on
// ZDB's workers. Ownership: shared by the data service and the queries' callbacks, which hold
// it weakly; each query counts as a job of Jobs until its last handle goes, so the cloud's
// Jobs::stop() waits for it. A query ends when it completes, on cancel, when its connection
// closes or signs out, or at stop(). When another query is admitted, those past time_limit
// (paused time included) or left paused without an acknowledgement or resume for idle_timeout
// are cancelled.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>

#include "cloud/jobs.hpp"
#include "hawser/commands.hpp"
#include "hawser/zdb/query.hpp"
#include "rpc/parked_handles.hpp"

namespace hawser::cloud::detail {

class DataQueries : public std::enable_shared_from_this<DataQueries> {
  public:
    struct Limits {
        std::size_t per_connection = 4;
        std::size_t total = 64;
        std::chrono::milliseconds idle_timeout{30000};
        std::chrono::milliseconds time_limit{60000};
    };
    using Reply = Responder<DataFrame>;

    DataQueries(std::shared_ptr<Jobs> jobs, Limits limits)
        : jobs_(std::move(jobs)),
          limits_(limits),
          parked_(std::make_shared<hawser::detail::ParkedHandles>(jobs_->host_ptr())) {}

    // Takes a place for query `id` of connection `conn`; false, with `reply` failed, when the
    // connection is gone, the id in use or a limit reached. The connection's IO thread.
    bool admit(ConnectionId conn, std::uint64_t id, Reply reply);
    // Starts an admitted query, at most `window` fragments unacknowledged. Worker pool.
    void start(ConnectionId conn, std::uint64_t id, std::shared_ptr<zdb::Database> db,
               zdb::Filter filter, zdb::QueryOptions options, std::size_t window);
    // Ends an admitted query that will not start, failing its reply.
    void abandon(ConnectionId conn, std::uint64_t id, Errc code, std::string message);
    // The client has consumed fragments up to `seq`. IO thread.
    void ack(ConnectionId conn, std::uint64_t id, std::uint64_t seq);
    // pause, resume, cancel or progress; replies with the progress. IO thread.
    Result<Map> control(ConnectionId conn, std::uint64_t id, std::string_view action);
    // Cancels the connection's queries. Its IO thread.
    void connection_closed(ConnectionId conn);
    // Cancels every query and waits for them; admits none after.
    void stop();

    std::size_t running() const;
    std::size_t parked() const { return parked_->size(); }  // ended, to let go on a worker

  private:
    struct Flow;
    struct Running;
    using Key = std::pair<ConnectionId, std::uint64_t>;
    std::shared_ptr<Running> find(ConnectionId conn, std::uint64_t id) const;
    std::shared_ptr<Running> take(ConnectionId conn, std::uint64_t id);
    void forward(Flow& flow, zdb::Fragment fragment);
    // Cancels the queries past their time or left idle. Under mu_.
    void sweep();
    void finish(ConnectionId conn, std::uint64_t id, Result<zdb::QueryEnd> end,
                zdb::QueryProgress progress);
    // Lets go of a started query on the worker pool (ParkedHandles), never on the IO thread:
    // its destructor waits for its workers.
    void release(std::shared_ptr<Running> r);

    const std::shared_ptr<Jobs> jobs_;
    const Limits limits_;
    mutable std::mutex mu_;
    std::map<Key, std::shared_ptr<Running>> running_;
    bool stopped_ = false;
    const std::shared_ptr<hawser::detail::ParkedHandles> parked_;  // queries that ended
};

}  // namespace hawser::cloud::detail
