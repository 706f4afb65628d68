// Link: a RemoteStore's connection to the serving node, shared by the store, its database
// handles and its queries, and the count of query threads the store waits for when it goes.
// Thread safety: any thread; call() and next() block (not on an IO thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "hawser/client.hpp"
#include "hawser/zdb/query.hpp"
#include "hawser/zdb/remote_store.hpp"

namespace hawser::zdb::net {

class Link {
  public:
    explicit Link(RemoteStoreOptions options);

    Result<void> connect();
    void close();

    // An operation (`op`, then what `fill` writes), and its reply.
    Result<DataFrame> call(DataFrame request) const;
    // A query's next fragment or its end, waiting up to `timeout`.
    Result<DataFrame> next(std::uint64_t query, Milliseconds timeout) const;
    // Asks the serving node to cancel a query, without waiting (any thread).
    void cancel(std::uint64_t query) const;

    const RemoteStoreOptions& options() const { return options_; }

    // Query threads: each enters before it starts and leaves when done; the store waits.
    void enter();
    void leave();
    void wait_idle();

  private:
    const RemoteStoreOptions options_;
    Client client_;
    std::mutex mu_;
    std::condition_variable idle_;
    std::size_t running_ = 0;
};

// A request for operation `op` on database `database` (empty: a store operation).
DataFrame request(std::string_view op, std::string_view database = {});

// Runs a query on the serving node (remote_query.cpp).
Result<std::shared_ptr<Query>> start_remote_query(std::shared_ptr<Link> link,
                                                  std::shared_ptr<Database> database, Filter filter,
                                                  QueryOptions options,
                                                  std::function<void(Fragment)> sink);

}  // namespace hawser::zdb::net
