#include "wire/encode.hpp"

#include <cstring>
#include <optional>
#include <string>

#include "wire/compression.hpp"
#include "wire/stream_messages.hpp"

namespace hawser::detail {

void encode_message(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id,
                    std::string_view name, std::span<const std::uint8_t> payload,
                    const TransportOptions& policy, bool may_compress) {
    std::uint8_t flags = 0;
    std::optional<std::string> packed;
    bool compressible =
        is_call(kind) || is_direct(kind) || kind == Kind::reply || kind == kind_stream_data;
    if (may_compress && compressible && policy.compression != Compression::none &&
        payload.size() >= policy.compress_threshold) {
        packed = compress(policy.compression, payload);
        if (packed) {
            flags = static_cast<std::uint8_t>(policy.compression);
            payload = {reinterpret_cast<const std::uint8_t*>(packed->data()), packed->size()};
        }
    }
    out.resize(header_size(id, name) + payload.size());
    auto p = write_header(out.data(), kind, flags, id, name);
    if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
}

void encode_coded(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id, std::uint16_t code,
                  std::string_view text) {
    if (text.size() > 1024) text = text.substr(0, 1024);
    out.resize(header_size(id, {}) + 2 + text.size());
    auto p = write_header(out.data(), kind, 0, id, {});
    p[0] = static_cast<std::uint8_t>(code >> 8);
    p[1] = static_cast<std::uint8_t>(code & 0xff);
    if (!text.empty()) std::memcpy(p + 2, text.data(), text.size());
}

}  // namespace hawser::detail
