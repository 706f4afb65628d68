// hawser-cli's user data commands (docs/cloud.md, "Data"): query (records as JSON lines,
// streamed under flow control), and data insert/get/patch/rm. Blocking, on the main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "hawser/hawser.hpp"

namespace hawser::app {

struct DataCommand {
    std::string verb;    // query, insert, get, patch, rm
    std::string target;  // COLLECTION, COLLECTION@USER, COLLECTION@*, /DATABASE
    std::string json;    // query: the filter; insert: the document; patch: the fields
    std::uint64_t id = 0;
    std::uint64_t max_results = 0;
    bool reverse = false, ordered = false;
};

// The JSON argument, checked before anything goes on the network: a map, or an error message.
Result<Map> data_json(const DataCommand& command);
// Registers, before connect, the handler that receives query fragments.
void prepare_data(Commands& commands);
int run_data_command(const Connection& conn, const DataCommand& command, const Map& json,
                     std::chrono::milliseconds timeout);

}  // namespace hawser::app
