#include "wire/compression.hpp"

#include <lz4.h>
#include <zstd.h>

#include "wire/frame.hpp"

namespace hawser::detail {

std::optional<std::string> compress(Compression algorithm, std::span<const std::uint8_t> payload) {
    if (algorithm == Compression::none || payload.size() > 0x7fffffffu) return std::nullopt;
    std::string out;
    std::size_t n = 0;
    if (algorithm == Compression::zstd) {
        out.resize(4 + ZSTD_compressBound(payload.size()));
        n = ZSTD_compress(out.data() + 4, out.size() - 4, payload.data(), payload.size(), 1);
        if (ZSTD_isError(n)) return std::nullopt;
    } else {
        out.resize(4 +
                   static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(payload.size()))));
        int k = LZ4_compress_default(reinterpret_cast<const char*>(payload.data()), out.data() + 4,
                                     static_cast<int>(payload.size()),
                                     static_cast<int>(out.size() - 4));
        if (k <= 0) return std::nullopt;
        n = static_cast<std::size_t>(k);
    }
    if (4 + n >= payload.size()) return std::nullopt;  // not worth it
    put_u32(reinterpret_cast<std::uint8_t*>(out.data()),
            static_cast<std::uint32_t>(payload.size()));
    out.resize(4 + n);
    return out;
}

Result<std::string> decompress(Compression algorithm, std::span<const std::uint8_t> in,
                               std::size_t max_size) {
    if (in.size() < 4) return Error{Errc::bad_payload, "compressed payload without a size"};
    std::size_t size = get_u32(in.data());
    if (size > max_size)
        return Error{Errc::limit_exceeded,
                     "decompressed size " + std::to_string(size) + " over the limit"};
    std::string out(size, '\0');
    auto body = in.subspan(4);
    if (algorithm == Compression::zstd) {
        std::size_t n = ZSTD_decompress(out.data(), out.size(), body.data(), body.size());
        if (ZSTD_isError(n) || n != size) return Error{Errc::bad_payload, "bad zstd payload"};
    } else if (algorithm == Compression::lz4) {
        int n = LZ4_decompress_safe(reinterpret_cast<const char*>(body.data()), out.data(),
                                    static_cast<int>(body.size()), static_cast<int>(out.size()));
        if (n < 0 || static_cast<std::size_t>(n) != size)
            return Error{Errc::bad_payload, "bad lz4 payload"};
    } else {
        return Error{Errc::bad_payload, "unknown compression"};
    }
    return out;
}

}  // namespace hawser::detail
