#include "hawser/dataframe.hpp"

#include <cstring>
#include <limits>
#include <vector>

#include "core/msgpack.hpp"

namespace hawser {

using detail::StringSink;
using Packer = msgpack::packer<StringSink>;

struct DataFrameAccess {
    static void set(DataFrame& df, std::string bytes, std::size_t count) {
        df.bytes_ = std::move(bytes);
        df.count_ = count;
    }
    static std::string& bytes(DataFrame& df) { return df.bytes_; }
    static void added(DataFrame& df) { ++df.count_; }
};

namespace {

// Always a float64. msgpack-cxx's pack_double writes integral values (5.0) as integers, which
// would read back as another type.
void pack_float64(Packer& pk, double d) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    char out[9];
    out[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
    pk.pack_bin_body(out, sizeof out);  // appends the bytes as they are
}

void pack_value(Packer& pk, const Value& value);

void pack_map(Packer& pk, const Map& map) {
    pk.pack_map(static_cast<std::uint32_t>(map.size()));
    for (const auto& [key, value] : map) {
        pk.pack_str(static_cast<std::uint32_t>(key.size()));
        pk.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
        pack_value(pk, value);
    }
}

void pack_value(Packer& pk, const Value& value) {
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::nullptr_t>)
                pk.pack_nil();
            else if constexpr (std::is_same_v<T, bool>)
                v ? pk.pack_true() : pk.pack_false();
            else if constexpr (std::is_same_v<T, std::int64_t>)
                pk.pack_int64(v);
            else if constexpr (std::is_same_v<T, std::uint64_t>)
                pk.pack_uint64(v);
            else if constexpr (std::is_same_v<T, double>)
                pack_float64(pk, v);
            else if constexpr (std::is_same_v<T, std::string>) {
                pk.pack_str(static_cast<std::uint32_t>(v.size()));
                pk.pack_str_body(v.data(), static_cast<std::uint32_t>(v.size()));
            } else if constexpr (std::is_same_v<T, Bytes>) {
                pk.pack_bin(static_cast<std::uint32_t>(v.size()));
                pk.pack_bin_body(reinterpret_cast<const char*>(v.data()),
                                 static_cast<std::uint32_t>(v.size()));
            } else if constexpr (std::is_same_v<T, Array>) {
                pk.pack_array(static_cast<std::uint32_t>(v.size()));
                for (const auto& e : v) pack_value(pk, e);
            } else if constexpr (std::is_same_v<T, Map>) {
                pack_map(pk, v);
            }
        },
        value.v);
}

}  // namespace

Result<Value> detail::to_value(const msgpack::object& o) {
    using msgpack::type::object_type;
    switch (o.type) {
        case object_type::NIL:
            return Value(nullptr);
        case object_type::BOOLEAN:
            return Value(o.via.boolean);
        case object_type::POSITIVE_INTEGER:
            // MessagePack does not keep signedness: integers read back signed when they fit.
            if (o.via.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return Value(static_cast<std::int64_t>(o.via.u64));
            return Value(o.via.u64);
        case object_type::NEGATIVE_INTEGER:
            return Value(o.via.i64);
        case object_type::FLOAT32:
        case object_type::FLOAT64:
            return Value(o.via.f64);
        case object_type::STR:
            return Value(std::string(o.via.str.ptr, o.via.str.size));
        case object_type::BIN: {
            auto p = reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr);
            return Value(Bytes(p, p + o.via.bin.size));
        }
        case object_type::ARRAY: {
            Array a;
            a.reserve(o.via.array.size);
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                auto v = to_value(o.via.array.ptr[i]);
                if (!v) return v.error();
                a.push_back(std::move(*v));
            }
            return Value(std::move(a));
        }
        case object_type::MAP: {
            Map m;
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                const auto& kv = o.via.map.ptr[i];
                if (kv.key.type != object_type::STR)
                    return Error{Errc::type_mismatch, "map keys must be strings"};
                auto v = to_value(kv.val);
                if (!v) return v.error();
                m.insert_or_assign(std::string(kv.key.via.str.ptr, kv.key.via.str.size),
                                   std::move(*v));
            }
            return Value(std::move(m));
        }
        default:
            return Error{Errc::type_mismatch, "unsupported MessagePack type (ext)"};
    }
}

namespace {

using detail::to_value;

// What a pre-scan found: how many values sit at the top level.
struct Scanned {
    std::size_t top_level = 0;
};

std::uint64_t read_be(const char* p, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
    return v;
}

// Walks a MessagePack stream without building anything. Each header is checked against the
// limits and against the bytes left (every announced element takes at least one byte) before
// msgpack-cxx would allocate for it, so what a frame costs to decode is bounded by the bytes it
// really holds: values * sizeof(msgpack::object) plus string contents.
Result<Scanned> scan(std::string_view bytes, const DecodeLimits& limits) {
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

std::string_view type_name(msgpack::type::object_type t) {
    using msgpack::type::object_type;
    switch (t) {
        case object_type::NIL:
            return "nil";
        case object_type::BOOLEAN:
            return "bool";
        case object_type::POSITIVE_INTEGER:
        case object_type::NEGATIVE_INTEGER:
            return "integer";
        case object_type::FLOAT32:
        case object_type::FLOAT64:
            return "float";
        case object_type::STR:
            return "string";
        case object_type::BIN:
            return "bytes";
        case object_type::ARRAY:
            return "array";
        case object_type::MAP:
            return "map";
        default:
            return "ext";
    }
}

Error mismatch(std::string_view want, const msgpack::object& got) {
    return Error{Errc::type_mismatch,
                 "expected " + std::string(want) + ", found " + std::string(type_name(got.type))};
}

bool is_int(const msgpack::object& o) {
    return o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER;
}

Result<std::int64_t> as_int(const msgpack::object& o) {
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
        if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return Error{Errc::type_mismatch, "integer does not fit in int64"};
        return static_cast<std::int64_t>(o.via.u64);
    }
    return mismatch("integer", o);
}

Result<double> as_double(const msgpack::object& o) {
    if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) return o.via.f64;
    if (o.type == msgpack::type::POSITIVE_INTEGER) return static_cast<double>(o.via.u64);
    if (o.type == msgpack::type::NEGATIVE_INTEGER) return static_cast<double>(o.via.i64);
    return mismatch("number", o);
}

// Reads the next object of a validated frame and converts it; advances only on success.
template <class Convert>
auto read_next(const std::string& bytes, std::size_t& offset, Convert&& convert)
    -> decltype(convert(std::declval<const msgpack::object&>())) {
    if (offset >= bytes.size()) return Error{Errc::end_of_data, "no more values in the DataFrame"};
    std::size_t next = offset;
    msgpack::object_handle oh;
    try {
        oh = msgpack::unpack(bytes.data(), bytes.size(), next);
    } catch (const std::exception& e) {
        return Error{Errc::bad_payload, e.what()};
    }
    auto result = convert(oh.get());
    if (result) offset = next;
    return result;
}

}  // namespace

Result<DataFrame> DataFrame::decode(std::string_view bytes, const DecodeLimits& limits) {
    if (bytes.size() > limits.max_bytes)
        return Error{Errc::limit_exceeded,
                     "DataFrame of " + std::to_string(bytes.size()) + " bytes is over the limit"};
    // First the headers alone: after this, msgpack-cxx allocates at most max_decoded_bytes.
    auto scanned = scan(bytes, limits);
    if (!scanned) return scanned.error();
    // Then msgpack-cxx itself, as a second opinion on what the readers will parse later.
    const auto size_limit = static_cast<std::size_t>(
        std::min<std::size_t>(bytes.size(), std::numeric_limits<std::uint32_t>::max()));
    const std::size_t container = std::min<std::size_t>(limits.max_container, bytes.size());
    msgpack::unpack_limit limit(container, container, size_limit, size_limit, 0, limits.max_depth);
    std::size_t offset = 0, count = 0;
    try {
        while (offset < bytes.size()) {
            msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
            ++count;
        }
    } catch (const msgpack::insufficient_bytes&) {
        return Error{Errc::bad_payload, "DataFrame is truncated"};
    } catch (const msgpack::size_overflow& e) {
        return Error{Errc::limit_exceeded, std::string("DataFrame over a limit: ") + e.what()};
    } catch (const std::exception& e) {
        return Error{Errc::bad_payload, std::string("DataFrame is malformed: ") + e.what()};
    }
    if (count != scanned->top_level)
        return Error{Errc::bad_payload, "DataFrame is malformed (values do not line up)"};
    DataFrame df;
    DataFrameAccess::set(df, std::string(bytes), count);
    return df;
}

DataFrame& DataFrame::operator<<(bool b) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    b ? pk.pack_true() : pk.pack_false();
    ++count_;
    return *this;
}

DataFrame& DataFrame::write_int(std::int64_t i) {
    StringSink sink{&bytes_};
    Packer(sink).pack_int64(i);
    ++count_;
    return *this;
}

DataFrame& DataFrame::write_uint(std::uint64_t u) {
    StringSink sink{&bytes_};
    Packer(sink).pack_uint64(u);
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(double d) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    pack_float64(pk, d);
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(std::string_view s) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(std::span<const std::uint8_t> b) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    pk.pack_bin(static_cast<std::uint32_t>(b.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(const DataFrame& nested) {
    StringSink sink{&bytes_};
    Packer(sink).pack_array(static_cast<std::uint32_t>(nested.count_));
    bytes_ += nested.bytes_;
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(std::span<const std::int64_t> numbers) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    pk.pack_array(static_cast<std::uint32_t>(numbers.size()));
    for (auto n : numbers) pk.pack_int64(n);
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(std::span<const double> numbers) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    pk.pack_array(static_cast<std::uint32_t>(numbers.size()));
    for (auto n : numbers) pack_float64(pk, n);
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(const Map& map) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    pack_map(pk, map);
    ++count_;
    return *this;
}

DataFrame& DataFrame::operator<<(const Value& value) {
    StringSink sink{&bytes_};
    Packer pk(sink);
    pack_value(pk, value);
    ++count_;
    return *this;
}

Result<bool> DataFrame::read_bool() {
    return read_next(bytes_, read_offset_, [](const msgpack::object& o) -> Result<bool> {
        if (o.type != msgpack::type::BOOLEAN) return mismatch("bool", o);
        return o.via.boolean;
    });
}

Result<std::int64_t> DataFrame::read_int() {
    return read_next(bytes_, read_offset_, as_int);
}

Result<std::uint64_t> DataFrame::read_uint() {
    return read_next(bytes_, read_offset_, [](const msgpack::object& o) -> Result<std::uint64_t> {
        if (o.type == msgpack::type::POSITIVE_INTEGER) return o.via.u64;
        if (o.type == msgpack::type::NEGATIVE_INTEGER)
            return Error{Errc::type_mismatch, "negative integer read as unsigned"};
        return mismatch("unsigned integer", o);
    });
}

Result<double> DataFrame::read_double() {
    return read_next(bytes_, read_offset_, as_double);
}

Result<std::string> DataFrame::read_string() {
    return read_next(bytes_, read_offset_, [](const msgpack::object& o) -> Result<std::string> {
        if (o.type != msgpack::type::STR) return mismatch("string", o);
        return std::string(o.via.str.ptr, o.via.str.size);
    });
}

Result<Bytes> DataFrame::read_bytes() {
    return read_next(bytes_, read_offset_, [](const msgpack::object& o) -> Result<Bytes> {
        if (o.type != msgpack::type::BIN) return mismatch("bytes", o);
        auto p = reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr);
        return Bytes(p, p + o.via.bin.size);
    });
}

Result<DataFrame> DataFrame::read_frame() {
    return read_next(bytes_, read_offset_, [](const msgpack::object& o) -> Result<DataFrame> {
        if (o.type != msgpack::type::ARRAY) return mismatch("DataFrame (array)", o);
        std::string nested;
        StringSink sink{&nested};
        Packer pk(sink);
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) pk.pack(o.via.array.ptr[i]);
        DataFrame df;
        DataFrameAccess::set(df, std::move(nested), o.via.array.size);
        return df;
    });
}

Result<std::vector<std::int64_t>> DataFrame::read_ints() {
    return read_next(bytes_, read_offset_,
                     [](const msgpack::object& o) -> Result<std::vector<std::int64_t>> {
                         if (o.type != msgpack::type::ARRAY) return mismatch("integer array", o);
                         std::vector<std::int64_t> out;
                         out.reserve(o.via.array.size);
                         for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                             if (!is_int(o.via.array.ptr[i]))
                                 return mismatch("integer array element", o.via.array.ptr[i]);
                             auto v = as_int(o.via.array.ptr[i]);
                             if (!v) return v.error();
                             out.push_back(*v);
                         }
                         return out;
                     });
}

Result<std::vector<double>> DataFrame::read_doubles() {
    return read_next(bytes_, read_offset_,
                     [](const msgpack::object& o) -> Result<std::vector<double>> {
                         if (o.type != msgpack::type::ARRAY) return mismatch("number array", o);
                         std::vector<double> out;
                         out.reserve(o.via.array.size);
                         for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                             auto v = as_double(o.via.array.ptr[i]);
                             if (!v) return v.error();
                             out.push_back(*v);
                         }
                         return out;
                     });
}

Result<Map> DataFrame::read_map() {
    return read_next(bytes_, read_offset_, [](const msgpack::object& o) -> Result<Map> {
        if (o.type != msgpack::type::MAP) return mismatch("map", o);
        auto v = to_value(o);
        if (!v) return v.error();
        return std::get<Map>(std::move(v->v));
    });
}

Result<Value> DataFrame::read_value() {
    return read_next(bytes_, read_offset_, to_value);
}

}  // namespace hawser
