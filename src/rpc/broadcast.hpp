// Encodes a one-way command once (compressed once too), for many connections' send queues.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "wire/encode.hpp"

namespace hawser::detail {

inline std::shared_ptr<const std::vector<std::uint8_t>> encode_direct(
    const TransportOptions& policy, Kind kind, std::string_view command, std::string_view payload,
    bool compress) {
    auto message = std::make_shared<std::vector<std::uint8_t>>();
    encode_message(*message, kind, 0, command,
                   {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()}, policy,
                   compress);
    return message;
}

}  // namespace hawser::detail
