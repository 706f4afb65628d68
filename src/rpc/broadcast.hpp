// Encodes a one-way command once, to be appended as is to many connections' send queues.
#pragma once

#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "wire/frame.hpp"
#include "wire/message.hpp"

namespace hawser::detail {

inline std::shared_ptr<const std::vector<std::uint8_t>> encode_direct(const ProtocolMark& mark,
                                                                      Kind kind,
                                                                      std::string_view command,
                                                                      std::string_view payload) {
    auto frame = std::make_shared<std::vector<std::uint8_t>>();
    append_frame(*frame, mark, header_size(0, command) + payload.size(), [&](std::uint8_t* p) {
        p = write_header(p, kind, 0, 0, command);
        if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
    });
    return frame;
}

}  // namespace hawser::detail
