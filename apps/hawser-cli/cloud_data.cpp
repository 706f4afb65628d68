#include "cloud_data.hpp"

#include <cstdio>
#include <memory>

#include "cli_reply.hpp"
#include "frame_json.hpp"
#include "hawser/cloud/data_client.hpp"
#include "json_value.hpp"

namespace hawser::app {

namespace {

using cloud::Cloud;

constexpr std::size_t max_json_depth = 32;  // ZDB's document depth

std::unique_ptr<cloud::DataClient>& data_client() {
    static std::unique_ptr<cloud::DataClient> client;
    return client;
}

std::string json_of(const Value& v) {
    return json_text(to_json(v));
}

}  // namespace

Result<Map> data_json(const DataCommand& command) {
    if (command.json.empty()) return Map{};
    auto v = parse_json(command.json, max_json_depth);
    if (!v) return v.error();
    if (!v->is<Map>()) return Error{Errc::invalid_argument, "expected a JSON object"};
    return v->as<Map>();
}

void prepare_data(Commands& commands) {
    data_client() = std::make_unique<cloud::DataClient>(commands);
}

int run_data_command(const Connection& conn, const DataCommand& command, const Map& json,
                     std::chrono::milliseconds timeout) {
    if (command.verb == "query") {
        cloud::DataQueryOptions o;
        o.max_results = command.max_results;
        o.reverse = command.reverse;
        o.ordered = command.ordered;
        o.timeout = timeout;
        auto end = data_client()->query(
            conn, command.target, json,
            [](cloud::DataFragment f) {
                for (auto& [id, record] : f.records)
                    std::printf("{\"id\":%llu,\"record\":%s}\n",
                                static_cast<unsigned long long>(id), json_of(record).c_str());
                std::fflush(stdout);
            },
            use_wait, o);
        if (!end) return call_error(end.error());
        std::fprintf(stderr, "%llu records, %llu scanned in %.3f s (%s)%s\n",
                     static_cast<unsigned long long>(end->matched),
                     static_cast<unsigned long long>(end->scanned), end->seconds,
                     end->index.empty() ? "a scan" : ("index on " + end->index).c_str(),
                     end->end == "completed" ? "" : ("; ended: " + end->end).c_str());
        return exit_ok;
    }
    DataFrame arg;
    arg << command.target;
    std::string_view name;
    if (command.verb == "insert") {
        name = Cloud::data_insert_command;
        arg << json;
    } else if (command.verb == "get") {
        name = Cloud::data_get_command;
        arg << command.id;
    } else if (command.verb == "patch") {
        name = Cloud::data_patch_command;
        arg << command.id << json;
    } else {
        name = Cloud::data_remove_command;
        arg << command.id;
    }
    auto reply = conn.call(name, std::move(arg), use_wait,
                           CallOptions{.timeout = timeout, .compress = false});
    if (!reply) return call_error(reply.error());
    if (command.verb == "insert")
        std::printf("%llu\n", static_cast<unsigned long long>(reply->get<std::uint64_t>()));
    else if (command.verb == "get")
        std::printf("%s\n", json_of(reply->get<Value>()).c_str());
    return exit_ok;
}

}  // namespace hawser::app
