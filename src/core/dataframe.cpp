#include "hawser/dataframe.hpp"

#include <cstring>
#include <limits>
#include <vector>

#include "core/msgpack.hpp"
#include "core/msgpack_scan.hpp"

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
    auto scanned = detail::scan_msgpack(bytes, limits);
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

Result<void> DataFrame::append_encoded(std::string_view encoded, const DecodeLimits& limits) {
    auto scanned = detail::scan_msgpack(encoded, limits);
    if (!scanned) return scanned.error();
    if (scanned->top_level != 1)
        return Error{Errc::invalid_argument, "expected exactly one encoded value, got " +
                                                 std::to_string(scanned->top_level)};
    bytes_.append(encoded);
    ++count_;
    return {};
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
