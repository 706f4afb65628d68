// RemoteStore: a ZDB Store served by another node (StoreService, store_service.hpp), used through
// the same Store and Database interfaces as a local one, so that code written for an embedded
// store (the cloud service's) runs on every node of a cluster against one store.
//
// Every call is a call to the serving node and blocks until its reply: never on an IO thread
// (would_deadlock). run_query on a remote database runs the query on the serving node and
// delivers its fragments here, on a thread of the query's own, pulling the next fragment only
// once the sink has taken the last one (a slow sink pauses the query there). What a remote store
// cannot do: C++ filters (a declarative filter travels as its map; invalid_argument), an
// output database of another store, and checkpoint (it would name a directory on the serving
// machine; not_allowed). A scan reads in pages, each a consistent read: a record written
// between two pages may be seen or not. count() and stats() answer 0 and empty figures when the
// serving node cannot be reached (their signatures have no error); the rest return the error.
//
// Ownership: the returned Store owns its connection; Database handles and queries taken from it
// must go before it. Thread safety: any thread (but IO threads, for the blocking calls).
#pragma once

#include <memory>

#include "hawser/options.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::zdb {

struct RemoteStoreOptions {
    // The serving node's endpoint(s) and public key, and this node's own key, which the service
    // admits (client_key_file or client_private_key). With client.reconnect on, the store
    // outlives the serving node's restarts; calls made while the link is down fail
    // not_connected.
    ClientOptions client;
    // Each call's deadline; a query's next fragment waits instead for the query's time limit.
    Milliseconds timeout{30000};
    // Records one scan call brings back at most (the service bounds the bytes).
    std::size_t scan_page_records = 1000;
};

// Connects to the serving node and checks that it admits this node. Blocks; not on an IO thread.
Result<std::unique_ptr<Store>> connect_store(RemoteStoreOptions options);

}  // namespace hawser::zdb
