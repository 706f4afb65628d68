#include "hawser/cloud/data_client.hpp"

#include <atomic>
#include <map>
#include <mutex>

namespace hawser::cloud {

// Shared by the DataClient and its fragment handler, which may outlive it.
struct DataClient::State {
    std::mutex mu;
    std::map<std::uint64_t, std::function<void(DataFragment)>> running;
    std::atomic<std::uint64_t> next{1};

    std::function<void(DataFragment)> handler_of(std::uint64_t query) {
        std::lock_guard lock(mu);
        auto it = running.find(query);
        return it == running.end() ? nullptr : it->second;
    }
};

namespace {

Result<DataFragment> read_fragment(DataFrame& df) {
    DataFragment f;
    auto query = df.read_uint();
    auto seq = query ? df.read_uint() : query;
    if (!query || !seq) return Error{Errc::bad_payload, "a fragment without its query"};
    f.query = *query;
    f.seq = *seq;
    while (!df.at_end()) {
        auto id = df.read_uint();
        auto record = id ? df.read_map() : Result<Map>(id.error());
        if (!id || !record) return Error{Errc::bad_payload, "a malformed fragment"};
        f.records.emplace_back(*id, std::move(*record));
    }
    return f;
}

Result<DataQueryEnd> read_end(DataFrame& df) {
    DataQueryEnd e;
    auto end = df.read_string();
    auto scanned = df.read_uint();
    auto matched = df.read_uint();
    auto seconds = df.read_double();
    auto index = df.read_string();
    auto fragments = df.read_uint();
    if (!end || !scanned || !matched || !seconds || !index || !fragments)
        return Error{Errc::bad_payload, "a malformed query end"};
    return DataQueryEnd{*end, *scanned, *matched, *seconds, *index, *fragments};
}

}  // namespace

DataClient::DataClient(Commands& client_commands) : state_(std::make_shared<State>()) {
    std::weak_ptr<State> weak = state_;
    client_commands.direct_dataframe(
        std::string(Cloud::data_fragment_push), [weak](const Request& req, DataFrame& df) {
            auto state = weak.lock();
            if (!state) return;
            auto f = read_fragment(df);
            if (!f) throw Exception(f.error());  // counted and logged as a handler error
            auto handler = state->handler_of(f->query);
            if (!handler) return;  // a query that ended: nobody waits for it
            auto query = f->query, seq = f->seq;
            handler(std::move(*f));
            DataFrame ack;
            ack << query << seq;
            (void)req.connection().send(Cloud::data_ack_command, ack, false);
        });
}

DataClient::~DataClient() = default;

void DataClient::start(const Connection& connection, std::string target, Map filter,
                       std::function<void(DataFragment)> on_records, DataQueryOptions options,
                       std::function<void(Result<DataQueryEnd>)> done) {
    auto id = state_->next.fetch_add(1);
    {
        std::lock_guard lock(state_->mu);
        state_->running.emplace(id, std::move(on_records));
    }
    Map given{{"window", Value(std::uint64_t(options.window))},
              {"reverse", Value(options.reverse)},
              {"ordered", Value(options.ordered)}};
    if (options.max_results) given.emplace("max_results", Value(options.max_results));
    DataFrame arg;
    arg << id << target << filter << given;
    std::weak_ptr<State> weak = state_;
    connection.call(
        Cloud::data_query_command, std::move(arg),
        [weak, id, connection, done = std::move(done)](Result<DataFrame> r) {
            if (auto state = weak.lock()) {
                std::lock_guard lock(state->mu);
                state->running.erase(id);
            }
            if (!r) {
                // Given up here (a timeout, say): the server need not go on.
                if (r.error().code == Errc::timeout || r.error().code == Errc::cancelled) {
                    DataFrame cancel;
                    cancel << id << std::string("cancel");
                    connection.call(Cloud::data_control_command, std::move(cancel),
                                    [](Result<DataFrame>) {});
                }
                return done(r.error());
            }
            done(read_end(*r));
        },
        CallOptions{.timeout = options.timeout, .compress = false});
}

}  // namespace hawser::cloud
