// Requests from one node to a connection held by another (send, call, find) and their answers,
// on the cluster's `conn.<node>` and `answer.<node>` subjects (docs/cluster.md). The answer
// goes to the requesting node's answer subject, named by the request's origin.
// Decoders trust nothing: a message that fails is dropped and counted.
// Thread affinity: none (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hawser/connection.hpp"
#include "hawser/error.hpp"

namespace hawser::detail {

struct RemoteRequest {
    enum class Op : std::uint8_t { send = 1, call = 2, find = 3 };
    Op op = Op::send;
    bool dataframe = false;  // the argument (and a call's reply) is a DataFrame
    bool compress = true;
    std::uint64_t request = 0;  // the origin's id for the answer; 0 for a send
    ConnectionId connection = 0;
    std::uint32_t timeout_ms = 0;  // a call's deadline at the connection's node
    std::string origin;            // the requesting node
    std::string command;           // send and call
    std::string argument;
};
std::string encode_request(const RemoteRequest& r);
Result<RemoteRequest> decode_request(std::string_view bytes);

// The outcome: Errc::ok and the reply (a call's; a find's presence as a DataFrame map), or an
// error code and its message.
struct RemoteAnswer {
    std::uint64_t request = 0;
    Errc code = Errc::ok;
    std::string body;
};
std::string encode_answer(const RemoteAnswer& a);
Result<RemoteAnswer> decode_answer(std::string_view bytes);

}  // namespace hawser::detail
