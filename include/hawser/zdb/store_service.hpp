// StoreService: serves a node's ZDB Store to other nodes over Hawser connections, so that several
// nodes of a cluster work on one store (RemoteStore, remote_store.hpp, is the other end). Every
// Store and Database operation but checkpoint is a call; queries run here, on this node's query
// workers, and their fragments go back one per call of the client, so a client that stops
// asking holds the query paused at max_buffered_fragments (docs/zdb.md, "Over the network").
//
// Nodes are admitted by their static key: a connection whose proven key (a client with
// client_key_file or client_private_key) is not in allowed_keys gets not_allowed for every
// call. The commands are public_access, so a login gate (the cloud's) does not stop nodes; the
// key is their gate.
//
// Ownership: refers to its Server and its Store; the Store must outlive the Server (handlers
// still running use it). Thread safety: construct before server.start(); destroy after the
// server has stopped or before it starts.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/error.hpp"
#include "hawser/options.hpp"

namespace hawser {
class Server;
}

namespace hawser::zdb {

class Store;

struct StoreServiceOptions {
    // Public keys (64 hex digits) of the nodes that may use the store; at least one.
    std::vector<std::string> allowed_keys;
    // Queries running at once, per connection and in all. A node using the store runs all its
    // queries over one connection: its cloud's data queries and its look-ups by index.
    std::size_t max_queries_per_connection = 16;
    std::size_t max_queries = 256;
    // Fragments of a query waiting for its client's next call before the query pauses (each
    // of its workers then finishes the fragment it is making).
    std::size_t max_buffered_fragments = 2;
    // Workers per query, whatever the client asks for.
    std::size_t max_query_parallelism = 4;
    // A query nobody asked a fragment of for this long is cancelled (looked at when another
    // starts, and every half of it while queries run).
    Milliseconds query_idle_timeout{60000};
    // A fragment's size, whatever the client asks for (one more record at most): it must fit
    // in a reply (Limits::max_frame_bytes on both sides).
    std::size_t max_fragment_bytes = 1u << 20;
    // A scan call returns at most this many bytes of records (one more record at most).
    std::size_t max_scan_bytes = 1u << 20;
};

class StoreService {
  public:
    // Registers the commands on `server`, which must not have started. Throws hawser::Exception
    // on bad options (no key, a malformed key, a zero limit).
    StoreService(Server& server, Store& store, StoreServiceOptions options);
    ~StoreService();  // cancels the queries; later calls answer shutting_down
    StoreService(const StoreService&) = delete;
    StoreService& operator=(const StoreService&) = delete;

    static Result<void> validate(const StoreServiceOptions& options);

    struct Stats {
        std::size_t queries = 0;             // running now, or ended and not yet fetched
        std::size_t buffered_fragments = 0;  // waiting for their client's next call
        // Queries that left while the worker pool was full: their handles (and snapshots) are
        // let go on a worker once one takes the job, never on an IO thread.
        std::size_t queries_to_release = 0;
    };
    Stats stats() const;

    // The commands: every operation, and a query's next fragment.
    static constexpr std::string_view command = "hawser.zdb";
    static constexpr std::string_view next_command = "hawser.zdb.next";

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hawser::zdb
