#include "wire/encode.hpp"

#include <cassert>
#include <cstring>
#include <optional>
#include <string>

#include "wire/compression.hpp"
#include "wire/stream_messages.hpp"

namespace hawser::detail {

namespace {

void join(std::vector<std::uint8_t>& out, const MessageParts& parts) {
    out.clear();
    out.reserve(parts.size());
    out.insert(out.end(), parts.head().begin(), parts.head().end());
    out.insert(out.end(), parts.body().begin(), parts.body().end());
}

}  // namespace

void encode_message(MessageParts& out, Kind kind, std::uint64_t id, std::string_view name,
                    std::span<const std::uint8_t> payload, const TransportOptions& policy,
                    bool may_compress) {
    assert(name.size() <= max_command_name);  // the header's array has room for no more
    std::uint8_t flags = 0;
    bool compressible =
        is_call(kind) || is_direct(kind) || kind == Kind::reply || kind == kind_stream_data;
    out.packed_.reset();  // `payload` is never the packed copy of an earlier message
    if (may_compress && compressible && policy.compression != Compression::none &&
        payload.size() >= policy.compress_threshold) {
        out.packed_ = compress(policy.compression, payload);
        if (out.packed_) {
            flags = static_cast<std::uint8_t>(policy.compression);
            payload = {reinterpret_cast<const std::uint8_t*>(out.packed_->data()),
                       out.packed_->size()};
        }
    }
    out.head_size_ = std::size_t(write_header(out.head_, kind, flags, id, name) - out.head_);
    out.body_ = payload;
}

void encode_message(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id,
                    std::string_view name, std::span<const std::uint8_t> payload,
                    const TransportOptions& policy, bool may_compress) {
    MessageParts parts;
    encode_message(parts, kind, id, name, payload, policy, may_compress);
    join(out, parts);
}

void encode_coded(MessageParts& out, Kind kind, std::uint64_t id, std::uint16_t code,
                  std::string_view text) {
    if (text.size() > 1024) text = text.substr(0, 1024);
    out.packed_.reset();
    auto p = write_header(out.head_, kind, 0, id, {});
    p[0] = static_cast<std::uint8_t>(code >> 8);
    p[1] = static_cast<std::uint8_t>(code & 0xff);
    out.head_size_ = std::size_t(p + 2 - out.head_);
    out.body_ = {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

void encode_coded(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id, std::uint16_t code,
                  std::string_view text) {
    MessageParts parts;
    encode_coded(parts, kind, id, code, text);
    join(out, parts);
}

}  // namespace hawser::detail
