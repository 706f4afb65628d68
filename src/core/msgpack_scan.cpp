#include "core/msgpack_scan.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "core/msgpack.hpp"

namespace hawser::detail {

namespace {

std::uint64_t read_be(const char* p, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
    return v;
}

}  // namespace

Result<Scanned> scan_msgpack(std::string_view bytes, const DecodeLimits& limits) {
    const char* p = bytes.data();
    const std::size_t n = bytes.size();
    std::size_t pos = 0, values = 0, decoded = 0;
    std::uint64_t owed = 0;           // elements announced by open containers, not yet seen
    std::vector<std::uint64_t> open;  // per open container: elements still to come
    Scanned out;
    auto truncated = [] { return Error{Errc::bad_payload, "DataFrame is truncated"}; };
    while (pos < n) {
        if (open.empty()) ++out.top_level;
        if (++values > limits.max_elements)
            return Error{Errc::limit_exceeded, "DataFrame holds more than " +
                                                   std::to_string(limits.max_elements) + " values"};
        decoded += sizeof(msgpack::object);
        const auto b = static_cast<std::uint8_t>(p[pos++]);
        std::uint64_t skip = 0, announced = 0;  // bytes to skip; array or map entries
        bool container = false, map = false, blob = false;
        int len_bytes = 0;
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3 && b != 0xc1)) {
            // fixint, nil, bool
        } else if (b <= 0x8f) {
            container = map = true, announced = b & 0x0fu;
        } else if (b <= 0x9f) {
            container = true, announced = b & 0x0fu;
        } else if (b <= 0xbf) {
            blob = true, skip = b & 0x1fu;
        } else {
            switch (b) {
                case 0xc4:
                case 0xd9:
                    blob = true, len_bytes = 1;
                    break;
                case 0xc5:
                case 0xda:
                    blob = true, len_bytes = 2;
                    break;
                case 0xc6:
                case 0xdb:
                    blob = true, len_bytes = 4;
                    break;
                case 0xca:
                    skip = 4;
                    break;
                case 0xcb:
                    skip = 8;
                    break;
                case 0xcc:
                case 0xd0:
                    skip = 1;
                    break;
                case 0xcd:
                case 0xd1:
                    skip = 2;
                    break;
                case 0xce:
                case 0xd2:
                    skip = 4;
                    break;
                case 0xcf:
                case 0xd3:
                    skip = 8;
                    break;
                case 0xdc:
                    container = true, len_bytes = 2;
                    break;
                case 0xdd:
                    container = true, len_bytes = 4;
                    break;
                case 0xde:
                    container = map = true, len_bytes = 2;
                    break;
                case 0xdf:
                    container = map = true, len_bytes = 4;
                    break;
                case 0xc1:
                    return Error{Errc::bad_payload, "DataFrame is malformed (byte 0xc1)"};
                default:  // 0xc7-0xc9, 0xd4-0xd8
                    return Error{Errc::bad_payload, "DataFrame holds an ext type"};
            }
        }
        if (len_bytes) {
            if (n - pos < static_cast<std::size_t>(len_bytes)) return truncated();
            auto len = read_be(p + pos, len_bytes);
            pos += static_cast<std::size_t>(len_bytes);
            (blob ? skip : announced) = len;
        }
        const std::uint64_t elements = map ? 2 * announced : announced;
        if (blob) decoded += skip;
        if (container) {
            if (announced > limits.max_container)
                return Error{Errc::limit_exceeded, "DataFrame array or map announces more than " +
                                                       std::to_string(limits.max_container) +
                                                       " elements"};
            // Each open container has one element in progress: the one being read now.
            if (owed - open.size() + elements > n - pos)
                return Error{Errc::bad_payload, "DataFrame announces " + std::to_string(elements) +
                                                    " more values than the bytes left can hold"};
        } else if (skip > n - pos) {
            return truncated();
        }
        if (decoded > limits.max_decoded_bytes)
            return Error{Errc::limit_exceeded, "DataFrame would take more than " +
                                                   std::to_string(limits.max_decoded_bytes) +
                                                   " bytes of memory"};
        pos += static_cast<std::size_t>(skip);
        if (container && elements > 0) {
            if (open.size() >= limits.max_depth)
                return Error{
                    Errc::limit_exceeded,
                    "DataFrame nests deeper than " + std::to_string(limits.max_depth) + " levels"};
            open.push_back(elements);
            owed += elements;
            continue;
        }
        // A whole value: it completes its container, which may complete its own, and so on.
        while (!open.empty()) {
            --owed;
            if (--open.back() != 0) break;
            open.pop_back();
        }
    }
    if (!open.empty()) return truncated();
    return out;
}
}  // namespace hawser::detail
