#include "hawser/cloud/data_client.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace hawser::cloud {

namespace {

void send_cancel(const Connection& connection, std::uint64_t query) {
    DataFrame cancel;
    cancel << query << std::string("cancel");
    connection.call(Cloud::data_control_command, std::move(cancel), [](Result<DataFrame>) {});
}

}  // namespace

// Shared by the DataClient and its fragment handler, which may outlive it.
struct DataClient::State {
    struct Running {
        Connection connection;
        std::function<void(DataFragment)> on_records;
        std::uint64_t handled = 0;    // fragments, each in its turn
        std::optional<Error> failed;  // here: the query was cancelled, and this is the outcome
    };
    std::mutex mu;
    std::map<std::uint64_t, Running> running;
    std::atomic<std::uint64_t> next{1};

    // The handler of the query's fragment `seq`, if it is the next one. One out of turn means
    // one was lost on the way: the query fails.
    std::function<void(DataFragment)> handler_of(std::uint64_t query, std::uint64_t seq) {
        std::lock_guard lock(mu);
        auto it = running.find(query);
        if (it == running.end() || it->second.failed) return nullptr;
        if (seq != it->second.handled + 1) {
            fail_locked(it->second, query,
                        Error{Errc::bad_payload, "fragment " + std::to_string(seq) +
                                                     " came out of turn: one was lost"});
            return nullptr;
        }
        it->second.handled = seq;
        return it->second.on_records;
    }
    // Fails a query here and asks the server to stop it: its reply then comes at once.
    void fail(std::uint64_t query, Error why) {
        std::lock_guard lock(mu);
        if (auto it = running.find(query); it != running.end() && !it->second.failed)
            fail_locked(it->second, query, std::move(why));
    }
    // A fragment nobody can read names no query: every query on its connection fails.
    void fail_all_on(ConnectionId connection, const Error& why) {
        std::lock_guard lock(mu);
        for (auto& [query, r] : running)
            if (r.connection.id() == connection && !r.failed) fail_locked(r, query, why);
    }

  private:
    static void fail_locked(Running& r, std::uint64_t query, Error why) {
        r.failed = std::move(why);
        send_cancel(r.connection, query);
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
    // A text command: its handler runs on the IO thread in arrival order, so every fragment is
    // handled before the query's reply (docs/cloud.md, "Data").
    client_commands.direct_console(
        std::string(Cloud::data_fragment_push), [weak, limits = client_commands.decode_limits()](
                                                    const Request& req, std::string_view payload) {
            auto state = weak.lock();
            if (!state) return;
            auto df = DataFrame::decode(payload, limits);
            auto f = df ? read_fragment(*df) : Result<DataFragment>(df.error());
            if (!f)
                return state->fail_all_on(
                    req.connection().id(),
                    Error{Errc::bad_payload, "a fragment could not be read: " + f.error().message});
            auto handler = state->handler_of(f->query, f->seq);
            if (!handler) return;  // a query that ended or failed
            auto query = f->query, seq = f->seq;
            try {
                handler(std::move(*f));
            } catch (const std::exception& e) {
                return state->fail(query,
                                   Error{Errc::handler_error,
                                         std::string("the records' handler threw: ") + e.what()});
            } catch (...) {
                return state->fail(query, Error{Errc::handler_error, "the records' handler threw"});
            }
            DataFrame ack;
            ack << query << seq;
            (void)req.connection().send(Cloud::data_ack_command, ack, false);
        });
}

DataClient::~DataClient() = default;

void DataClient::start(const std::shared_ptr<State>& state, const Connection& connection,
                       std::string target, Map filter, std::function<void(DataFragment)> on_records,
                       DataQueryOptions options, std::function<void(Result<DataQueryEnd>)> done) {
    auto id = state->next.fetch_add(1);
    {
        std::lock_guard lock(state->mu);
        state->running.emplace(id, State::Running{connection, std::move(on_records), 0, {}});
    }
    Map given{{"window", Value(std::uint64_t(options.window))},
              {"reverse", Value(options.reverse)},
              {"ordered", Value(options.ordered)}};
    if (options.max_results) given.emplace("max_results", Value(options.max_results));
    DataFrame arg;
    arg << id << target << filter << given;
    std::weak_ptr<State> weak = state;
    connection.call(
        Cloud::data_query_command, std::move(arg),
        [weak, id, connection, done = std::move(done)](Result<DataFrame> r) {
            std::uint64_t handled = 0;
            std::optional<Error> failed;
            if (auto state = weak.lock()) {
                std::lock_guard lock(state->mu);
                if (auto it = state->running.find(id); it != state->running.end()) {
                    handled = it->second.handled;
                    failed = std::move(it->second.failed);
                    state->running.erase(it);
                }
            }
            if (failed) return done(std::move(*failed));
            if (!r) {
                // Given up here (a timeout, say): the server need not go on.
                if (r.error().code == Errc::timeout || r.error().code == Errc::cancelled)
                    send_cancel(connection, id);
                return done(r.error());
            }
            auto end = read_end(*r);
            // Fragments come before the reply, each handled in its turn.
            if (end && end->fragments != handled)
                return done(
                    Error{Errc::bad_payload, "the query sent " + std::to_string(end->fragments) +
                                                 " fragments and " + std::to_string(handled) +
                                                 " were handled"});
            done(std::move(end));
        },
        CallOptions{.timeout = options.timeout, .compress = false});
}

}  // namespace hawser::cloud
