// DataService: user data and ZDB over the wire (docs/cloud.md, "Data"). Users keep records in
// collections of their own (owner-only, or public to read), and admins reach every
// collection and every database of the store but the cloud's own: get, insert, patch,
// remove, and declarative-filter queries whose fragments stream back under flow control.
//
// Where work runs: handlers read arguments and check rights on the connection's IO thread;
// storage and query planning on the worker pool (Jobs); queries on ZDB's workers
// (DataQueries). Ownership: shared by the Cloud and its jobs; the command handlers hold it
// weakly. close() stops the queries and drops the storage once the Cloud's jobs have stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "cloud/data_queries.hpp"
#include "cloud/data_scope.hpp"
#include "cloud/jobs.hpp"
#include "cloud/user_data.hpp"
#include "hawser/cloud/cloud.hpp"
#include "hawser/commands.hpp"

namespace hawser::cloud::detail {

class DataService : public std::enable_shared_from_this<DataService> {
  public:
    // What the service asks the rest of the cloud. Worker pool.
    struct Directory {
        std::function<Result<bool>(std::uint64_t user)> account_exists;
        std::function<Result<bool>(std::string_view name)> name_exists;
    };

    static Result<std::shared_ptr<DataService>> open(zdb::Store& store, std::shared_ptr<Jobs> jobs,
                                                     const CloudOptions& options,
                                                     Directory directory);
    DataService(std::shared_ptr<Jobs> jobs, const CloudOptions& options,
                std::unique_ptr<UserData> data, Directory directory);

    void add_commands(Commands& commands);
    // The records of an account that is gone. Worker pool.
    Result<void> remove_all(const std::string& owner_key);
    void connection_closed(ConnectionId id) { queries_->connection_closed(id); }
    // Cancels the queries and waits for them.
    void stop_queries() { queries_->stop(); }
    void close() { data_.reset(); }

    std::size_t queries_running() const { return queries_->running(); }
    std::size_t queries_to_release() const { return queries_->parked(); }

  private:
    using Reply = Responder<DataFrame>;
    // The caller's scope for the target argument read from `arg`; the reply failed when none.
    std::optional<DataScope> scope_of(const Request& req, DataFrame& arg, const Reply& reply,
                                      bool write) const;
    // Fields from the client: within max_document_bytes, and in a collection with no reserved
    // field but _public.
    // unauthenticated when the account a scope acts for is gone (DataScope::acting_account).
    // Worker pool.
    Result<void> check_acting_account(const DataScope& scope) const;
    // The same, failing `reply` when the account is gone (or could not be read): true then.
    bool acting_account_gone(const DataScope& scope, const Reply& reply) const;
    Result<void> check_document(const DataScope& scope, const Map& fields) const;
    void do_insert(const Request& req, DataFrame arg, Reply reply);
    void do_get(const Request& req, DataFrame arg, Reply reply);
    void do_patch(const Request& req, DataFrame arg, Reply reply);
    void do_remove(const Request& req, DataFrame arg, Reply reply);
    void do_query(const Request& req, DataFrame arg, Reply reply);
    void do_control(const Request& req, DataFrame arg, Reply reply);

    const std::shared_ptr<Jobs> jobs_;
    const CloudOptions options_;
    const std::set<std::string> admins_;  // their names in lower case
    std::unique_ptr<UserData> data_;
    const Directory directory_;
    const std::shared_ptr<DataQueries> queries_;
};

}  // namespace hawser::cloud::detail
