#include "zdb/record_view.hpp"

#include <bit>
#include <cstring>

#include "core/msgpack.hpp"

namespace hawser::zdb {

namespace {

using Byte = const std::uint8_t*;
using Kind = Field::Kind;
constexpr int max_depth = int(max_document_depth);  // the writer checks the same limit

std::uint64_t big_endian(Byte p, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | p[i];
    return v;
}

// Reads the header of the value at p into f; `after` is past the header and, for everything
// but arrays and maps, past the payload too. False when malformed or truncated.
bool read_head(Byte p, Byte end, Field& f, Byte& after) {
    if (p >= end) return false;
    const std::uint8_t c = *p++;
    auto left = static_cast<std::size_t>(end - p);
    auto fixed = [&](int n) { return left >= std::size_t(n); };
    auto payload = [&](std::size_t length_bytes, Kind kind) {
        if (!fixed(int(length_bytes))) return false;
        auto n = big_endian(p, int(length_bytes));
        p += length_bytes;
        if (n > std::size_t(end - p)) return false;
        f.kind = kind;
        f.text = std::string_view(reinterpret_cast<const char*>(p), n);
        after = p + n;
        return true;
    };
    auto container = [&](std::size_t length_bytes, Kind kind) {
        if (!fixed(int(length_bytes))) return false;
        f.kind = kind;
        f.count = static_cast<std::uint32_t>(big_endian(p, int(length_bytes)));
        after = p + length_bytes;
        return true;
    };
    auto unsigned_int = [&](int n) {
        if (!fixed(n)) return false;
        auto v = big_endian(p, n);
        f.kind = v <= std::uint64_t(INT64_MAX) ? Kind::integer : Kind::unsigned_integer;
        f.integer = static_cast<std::int64_t>(v);
        f.unsigned_integer = v;
        after = p + n;
        return true;
    };
    auto signed_int = [&](int n) {
        if (!fixed(n)) return false;
        auto v = big_endian(p, n);
        int shift = 64 - 8 * n;
        f.kind = Kind::integer;
        f.integer = static_cast<std::int64_t>(v << shift) >> shift;  // sign-extends
        after = p + n;
        return true;
    };
    if (c <= 0x7f || c >= 0xe0) {
        f.kind = Kind::integer;
        f.integer = static_cast<std::int8_t>(c);
        if (c <= 0x7f) f.integer = c;
        after = p;
        return true;
    }
    if ((c & 0xf0) == 0x80) {
        f.kind = Kind::map, f.count = c & 0x0f, after = p;
        return true;
    }
    if ((c & 0xf0) == 0x90) {
        f.kind = Kind::array, f.count = c & 0x0f, after = p;
        return true;
    }
    if ((c & 0xe0) == 0xa0) {
        std::size_t n = c & 0x1f;
        if (n > left) return false;
        f.kind = Kind::string;
        f.text = std::string_view(reinterpret_cast<const char*>(p), n);
        after = p + n;
        return true;
    }
    switch (c) {
        case 0xc0:
            f.kind = Kind::nil, after = p;
            return true;
        case 0xc2:
        case 0xc3:
            f.kind = Kind::boolean, f.boolean = c == 0xc3, after = p;
            return true;
        case 0xc4:
            return payload(1, Kind::binary);
        case 0xc5:
            return payload(2, Kind::binary);
        case 0xc6:
            return payload(4, Kind::binary);
        case 0xc7:
        case 0xc8:
        case 0xc9: {  // ext: length, type byte, data
            std::size_t lb = std::size_t(1) << (c - 0xc7);
            if (!fixed(int(lb) + 1)) return false;
            auto n = big_endian(p, int(lb));
            p += lb + 1;
            if (n > std::size_t(end - p)) return false;
            f.kind = Kind::ext, after = p + n;
            return true;
        }
        case 0xca: {
            if (!fixed(4)) return false;
            f.kind = Kind::real;
            f.real = std::bit_cast<float>(static_cast<std::uint32_t>(big_endian(p, 4)));
            after = p + 4;
            return true;
        }
        case 0xcb: {
            if (!fixed(8)) return false;
            f.kind = Kind::real, f.real = std::bit_cast<double>(big_endian(p, 8)), after = p + 8;
            return true;
        }
        case 0xcc:
            return unsigned_int(1);
        case 0xcd:
            return unsigned_int(2);
        case 0xce:
            return unsigned_int(4);
        case 0xcf:
            return unsigned_int(8);
        case 0xd0:
            return signed_int(1);
        case 0xd1:
            return signed_int(2);
        case 0xd2:
            return signed_int(4);
        case 0xd3:
            return signed_int(8);
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: {  // fixext: type byte, 1-16 bytes
            std::size_t n = std::size_t(1) << (c - 0xd4);
            if (!fixed(int(n) + 1)) return false;
            f.kind = Kind::ext, after = p + 1 + n;
            return true;
        }
        case 0xd9:
            return payload(1, Kind::string);
        case 0xda:
            return payload(2, Kind::string);
        case 0xdb:
            return payload(4, Kind::string);
        case 0xdc:
            return container(2, Kind::array);
        case 0xdd:
            return container(4, Kind::array);
        case 0xde:
            return container(2, Kind::map);
        case 0xdf:
            return container(4, Kind::map);
        default:
            return false;  // 0xc1 is never used
    }
}

// The position past the whole value at p, or nullptr when malformed or too deep (then
// *too_deep is set, if given).
Byte skip(Byte p, Byte end, int depth, bool* too_deep = nullptr) {
    Field f;
    Byte after = nullptr;
    if (!read_head(p, end, f, after)) return nullptr;
    if (f.kind != Kind::array && f.kind != Kind::map) return after;
    if (depth >= max_depth) {
        if (too_deep) *too_deep = true;
        return nullptr;
    }
    std::size_t n = f.kind == Kind::map ? 2 * std::size_t(f.count) : f.count;
    if (n > std::size_t(end - after)) return nullptr;  // every element takes a byte at least
    for (std::size_t i = 0; i < n && after; ++i) after = skip(after, end, depth + 1, too_deep);
    return after;
}

// skip() with the kinds records are mostly made of handled inline: this runs for every field
// a lookup passes over.
Byte skip_value(Byte p, Byte end) {
    if (p >= end) return nullptr;
    const std::uint8_t c = *p;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) return p + 1;
    if ((c & 0xe0) == 0xa0) {
        std::size_t n = 1 + (c & 0x1f);
        return n <= std::size_t(end - p) ? p + n : nullptr;
    }
    if (c == 0xcb) return end - p >= 9 ? p + 9 : nullptr;
    return skip(p, end, 0);
}

// Reads the whole value at p into f; the position past it, or nullptr.
Byte read_value(Byte p, Byte end, Field& f) {
    Byte after = nullptr;
    if (!read_head(p, end, f, after)) return nullptr;
    if (f.kind == Kind::array || f.kind == Kind::map) after = skip(p, end, 0);
    if (after) f.raw = std::string_view(reinterpret_cast<const char*>(p), std::size_t(after - p));
    return after;
}

}  // namespace

std::size_t read_field(std::string_view bytes, Field& field) {
    auto begin = reinterpret_cast<Byte>(bytes.data());
    auto after = read_value(begin, begin + bytes.size(), field);
    return after ? std::size_t(after - begin) : 0;
}

RecordCheck check_record(std::string_view bytes) {
    auto begin = reinterpret_cast<Byte>(bytes.data()), end = begin + bytes.size();
    if (begin == end || ((*begin & 0xf0) != 0x80 && *begin != 0xde && *begin != 0xdf))
        return RecordCheck::malformed;  // not a map
    bool too_deep = false;
    if (skip(begin, end, 0, &too_deep) == end) return RecordCheck::ok;
    return too_deep ? RecordCheck::too_deep : RecordCheck::malformed;
}

Result<Value> Field::decode() const {
    try {
        msgpack::unpack_limit limit(raw.size(), raw.size(), raw.size(), raw.size(), 0, max_depth);
        std::size_t offset = 0;
        auto handle = msgpack::unpack(raw.data(), raw.size(), offset, nullptr, nullptr, limit);
        return detail::to_value(handle.get());
    } catch (const std::exception& e) {
        return Error{Errc::bad_payload, std::string("malformed record field: ") + e.what()};
    }
}

FieldPath split_path(std::string_view dotted) {
    FieldPath path;
    for (;;) {
        auto dot = dotted.find('.');
        path.emplace_back(dotted.substr(0, dot));
        if (dot == std::string_view::npos) return path;
        dotted.remove_prefix(dot + 1);
    }
}

std::optional<Field> RecordView::find(const FieldPath& path) {
    auto p = reinterpret_cast<Byte>(bytes_.data()), end = p + bytes_.size();
    for (const auto& wanted : path) {
        Field map;
        Byte at = nullptr;
        if (!read_head(p, end, map, at)) return corrupt_ = true, std::nullopt;
        if (map.kind != Kind::map) return std::nullopt;
        bool found = false;
        for (std::uint32_t i = 0; i < map.count; ++i) {
            if (at >= end) return corrupt_ = true, std::nullopt;
            Byte value = nullptr;
            if ((*at & 0xe0) == 0xa0) {  // a short string key, the usual case
                std::size_t n = *at & 0x1f;
                if (n >= std::size_t(end - at)) return corrupt_ = true, std::nullopt;
                value = at + 1 + n;
                found = std::string_view(reinterpret_cast<const char*>(at + 1), n) == wanted;
            } else {
                Field key;
                if (!read_head(at, end, key, value)) return corrupt_ = true, std::nullopt;
                found = key.kind == Kind::string && key.text == wanted;
                if (!found) value = skip(at, end, 0);
            }
            if (found) {
                p = value;
                break;
            }
            at = value ? skip_value(value, end) : nullptr;
            if (!at) return corrupt_ = true, std::nullopt;
        }
        if (!found) return std::nullopt;
    }
    Field f;
    if (!read_value(p, end, f)) return corrupt_ = true, std::nullopt;
    return f;
}

}  // namespace hawser::zdb
