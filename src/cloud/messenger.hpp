// Messenger: user-to-user messages (docs/cloud.md, "Messages"). cloud.send keeps a message in
// its recipient's mailbox (Mailbox) and pushes it at once to the recipient's connections on
// this node (and, on a cluster, on every node); cloud.inbox reads the mailbox (after a login, what
// came meanwhile), cloud.ack empties it up to a message; cloud.who says who is online.
//
// Where work runs: handlers check arguments and the sender's rate on the connection's IO
// thread; storage runs on the worker pool (Jobs); pushes go out on each recipient connection's
// own IO thread.
// Ownership: shared by the Cloud and its jobs; the command handlers hold it weakly. close()
// drops the database handle once the Cloud's jobs have stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "cloud/attempt_limiter.hpp"
#include "cloud/cloud_cluster.hpp"
#include "cloud/jobs.hpp"
#include "cloud/mailbox.hpp"
#include "hawser/cloud/cloud.hpp"
#include "hawser/commands.hpp"

namespace hawser::cloud::detail {

class Messenger : public std::enable_shared_from_this<Messenger> {
  public:
    // What the messenger asks the rest of the cloud.
    struct Directory {
        // A user's id and name as registered, by name; nullopt for no such user. Worker pool.
        std::function<Result<std::optional<std::pair<std::uint64_t, std::string>>>(
            std::string_view name)>
            find_user;
        // This node's connections signed in as the user. Any thread.
        std::function<std::vector<ConnectionId>(std::uint64_t user)> connections_of;
        // Whether the user's account still exists. Worker pool.
        std::function<Result<bool>(std::uint64_t user)> account_exists;
    };

    static Result<std::shared_ptr<Messenger>> open(zdb::Store& store, std::shared_ptr<Jobs> jobs,
                                                   const CloudOptions& options,
                                                   Directory directory);
    Messenger(std::shared_ptr<Jobs> jobs, const CloudOptions& options,
              std::unique_ptr<Mailbox> mailbox, Directory directory);

    void add_commands(Commands& commands);
    // On a cluster sharing the store: pushes reach the recipient's connections on every node,
    // and cloud.who asks every node. Before the server starts.
    void join(std::shared_ptr<CloudCluster> cluster) { cluster_ = std::move(cluster); }
    // A message another node stored, to this node's connections of its recipient. Any thread.
    void push_here(std::uint64_t to, const DataFrame& message);
    // The mailbox of an account that is gone. Worker pool.
    Result<void> remove_all(std::uint64_t user);
    void close();

    std::uint64_t sent() const noexcept { return sent_.load(); }
    std::uint64_t pushed() const noexcept { return pushed_.load(); }

  private:
    using Reply = Responder<DataFrame>;
    void do_send(const Request& req, DataFrame arg, Reply reply);
    void do_inbox(const Request& req, DataFrame arg, Reply reply);
    void do_ack(const Request& req, DataFrame arg, Reply reply);
    void do_who(const Request& req, DataFrame arg, Reply reply);
    void push(const Message& m);

    const std::shared_ptr<Jobs> jobs_;
    const CloudOptions options_;
    std::unique_ptr<Mailbox> mailbox_;
    Directory directory_;
    std::shared_ptr<CloudCluster> cluster_;  // set before start, read-only after
    AttemptLimiter sends_per_user_;
    std::atomic<std::uint64_t> sent_{0}, pushed_{0};
};

}  // namespace hawser::cloud::detail
