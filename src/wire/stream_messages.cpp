// Big-stream payloads (see stream_messages.hpp). Pure code, any thread.
#include "wire/stream_messages.hpp"

#include <algorithm>

namespace hawser::detail {

namespace {

void put_be(std::vector<std::uint8_t>& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(std::uint8_t(v >> (8 * i)));
}

std::uint64_t get_be(const std::uint8_t* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
    return v;
}

}  // namespace

void encode_stream_open(std::vector<std::uint8_t>& out, const StreamOpen& open) {
    out.clear();
    put_be(out, open.size, 8);
    out.push_back(open.resumable ? stream_flag_resumable : 0);
    out.insert(out.end(), open.metadata.begin(), open.metadata.end());
}

void encode_stream_accept(std::vector<std::uint8_t>& out, const StreamAccept& accept) {
    out.clear();
    put_be(out, accept.offset, 8);
    put_be(out, accept.window, 4);
}

void encode_stream_credit(std::vector<std::uint8_t>& out, std::uint32_t credit) {
    out.clear();
    put_be(out, credit, 4);
}

std::optional<StreamOpen> parse_stream_open(std::span<const std::uint8_t> payload) {
    if (payload.size() < 9) return std::nullopt;
    std::uint8_t flags = payload[8];
    if (flags & ~stream_flag_resumable) return std::nullopt;
    return StreamOpen{get_be(payload.data(), 8), (flags & stream_flag_resumable) != 0,
                      payload.subspan(9)};
}

std::optional<StreamAccept> parse_stream_accept(std::span<const std::uint8_t> payload) {
    if (payload.size() != 12) return std::nullopt;
    auto window = get_be(payload.data() + 8, 4);
    if (window > max_stream_credit) return std::nullopt;
    return StreamAccept{get_be(payload.data(), 8), std::uint32_t(window)};
}

std::optional<std::uint32_t> parse_stream_credit(std::span<const std::uint8_t> payload) {
    if (payload.size() != 4) return std::nullopt;
    auto credit = get_be(payload.data(), 4);
    if (credit == 0 || credit > max_stream_credit) return std::nullopt;
    return std::uint32_t(credit);
}

std::optional<StreamHash> parse_stream_end(std::span<const std::uint8_t> payload) {
    if (payload.size() != stream_hash_bytes) return std::nullopt;
    StreamHash hash;
    std::copy(payload.begin(), payload.end(), hash.begin());
    return hash;
}

}  // namespace hawser::detail
