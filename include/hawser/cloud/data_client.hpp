// DataClient: the client side of the cloud's data queries (docs/cloud.md, "Data"). A query's
// records arrive in fragments, one-way messages that DataClient hands to that query's handler
// in order and acknowledges once the handler has returned: a slow handler holds the server at
// the query's window instead of piling fragments up. The other data commands are plain calls
// (Cloud::data_insert_command and the rest).
//
//   hawser::Client client(options);
//   hawser::cloud::DataClient data(client.commands());  // before connect
//   client.connect();  ... log in ...
//   auto end = data.query(client.connection(), "scores", filter,
//                         [](hawser::cloud::DataFragment f) { ... }, hawser::use_wait);
//
// Ownership: registers its handler on `commands` (before the client connects) and shares its
// state with it; it may be destroyed before the client. Thread safety: any thread; handlers
// run on the connection's IO thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hawser/cloud/cloud.hpp"
#include "hawser/commands.hpp"
#include "hawser/connection.hpp"

namespace hawser::cloud {

// One fragment of a query's results.
struct DataFragment {
    std::uint64_t query = 0;                             // the query's id, for control()
    std::uint64_t seq = 0;                               // 1, 2, ... in the order sent
    std::vector<std::pair<std::uint64_t, Map>> records;  // record id, record
};

struct DataQueryOptions {
    std::size_t window = 4;  // fragments the server may send ahead (1 to its max_query_window)
    std::uint64_t max_results = 0;  // 0: all
    bool reverse = false;           // highest ids first
    bool ordered = false;           // in id order (reverse: descending) across the server's workers
    std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // the whole query
};

// How a query ended (a query that failed completes with the error instead).
struct DataQueryEnd {
    std::string end;  // completed, cancelled, max_results, max_scanned, time_limit
    std::uint64_t scanned = 0, matched = 0;
    double seconds = 0;
    std::string index;  // the index the server read candidates from; empty: a scan
    std::uint64_t fragments = 0;
};

class DataClient {
  public:
    explicit DataClient(Commands& client_commands);
    ~DataClient();
    DataClient(const DataClient&) = delete;
    DataClient& operator=(const DataClient&) = delete;

    // Runs a query on `target` (a collection, COLLECTION@USER, COLLECTION@* or /DATABASE);
    // `on_records` gets each fragment, in order, on the connection's IO thread, and the query
    // completes (the token: a callback, use_task or use_wait) after the last one. Queries are
    // numbered per DataClient from 1. A handler that throws, or a fragment that cannot be
    // read, cancels the query on the server, which then completes with that error.
    template <class Token = UseTask>
    auto query(const Connection& connection, std::string target, Map filter,
               std::function<void(DataFragment)> on_records, Token&& token = {},
               DataQueryOptions options = {}) {
        return ::hawser::detail::complete<DataQueryEnd>(
            [state = state_, connection, target = std::move(target), filter = std::move(filter),
             on_records = std::move(on_records), options](auto done) mutable {
                start(state, connection, std::move(target), std::move(filter),
                      std::move(on_records), options, std::move(done));
            },
            std::forward<Token>(token), "cloud.data.query");
    }
    // pause, resume, cancel or progress of a running query; replies with its progress
    // (scanned, matched, seconds, index, fragments, acknowledged, paused).
    template <class Token = UseTask>
    auto control(const Connection& connection, std::uint64_t query, std::string action,
                 Token&& token = {}) const {
        DataFrame arg;
        arg << query << action;
        return connection.call(Cloud::data_control_command, std::move(arg),
                               std::forward<Token>(token));
    }

    struct State;

  private:
    // Holds the state, not the DataClient: a task may start after the DataClient has gone.
    static void start(const std::shared_ptr<State>& state, const Connection& connection,
                      std::string target, Map filter, std::function<void(DataFragment)> on_records,
                      DataQueryOptions options, std::function<void(Result<DataQueryEnd>)> done);

    std::shared_ptr<State> state_;
};

}  // namespace hawser::cloud
