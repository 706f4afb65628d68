// DataFrame: an ordered list of typed values, encoded as a MessagePack stream.
// The successor of ZServer4D's DataFrameEngine, language-neutral on the wire.
// Thread safety: a value type; one thread at a time per object.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hawser/error.hpp"

namespace hawser {

using Bytes = std::vector<std::uint8_t>;

struct Value;
using Array = std::vector<Value>;
using Map = std::map<std::string, Value, std::less<>>;

// A dynamically typed MessagePack value: what DataFrame maps and read_value() hold.
struct Value {
    using Variant = std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double,
                                 std::string, Bytes, Array, Map>;
    Variant v = nullptr;

    Value() = default;
    Value(std::nullptr_t) {}
    Value(bool b) : v(b) {}
    template <std::signed_integral I>
    Value(I i) : v(static_cast<std::int64_t>(i)) {}
    template <std::unsigned_integral U>
    requires(!std::same_as<U, bool>) Value(U u) : v(static_cast<std::uint64_t>(u)) {}
    Value(double d) : v(d) {}
    Value(const char* s) : v(std::string(s)) {}
    Value(std::string_view s) : v(std::string(s)) {}
    Value(std::string s) : v(std::move(s)) {}
    Value(Bytes b) : v(std::move(b)) {}
    Value(Array a) : v(std::move(a)) {}
    Value(Map m) : v(std::move(m)) {}

    template <class T>
    bool is() const {
        return std::holds_alternative<T>(v);
    }
    template <class T>
    const T& as() const {
        return std::get<T>(v);
    }
    bool operator==(const Value&) const = default;
};

// Bounds applied when decoding bytes from the network or from disk: nothing is trusted.
// Every header is checked against these and against the bytes actually present before anything
// is allocated for it (docs/security.md, "Decoding").
struct DecodeLimits {
    std::uint32_t max_depth = 32;            // nesting of arrays and maps
    std::uint32_t max_container = 1u << 16;  // elements in one array or map
    std::uint32_t max_elements = 1u << 20;   // values in the whole frame, nested ones included
    std::size_t max_bytes = 16u << 20;       // encoded size
    // Memory the decoded values may take while read: 24 bytes per value plus string and byte
    // contents. The default is what max_bytes and max_elements allow together (16 + 24 MiB).
    std::size_t max_decoded_bytes = 40u << 20;
};

class DataFrame {
  public:
    DataFrame() = default;

    // Decodes and validates a whole frame against the limits; the bytes are copied.
    static Result<DataFrame> decode(std::string_view bytes, const DecodeLimits& limits = {});

    // --- writing: appends one value each ---
    DataFrame& operator<<(bool b);
    template <std::signed_integral I>
    DataFrame& operator<<(I i) {
        return write_int(i);
    }
    template <std::unsigned_integral U>
    requires(!std::same_as<U, bool>) DataFrame& operator<<(U u) { return write_uint(u); }
    DataFrame& operator<<(double d);
    DataFrame& operator<<(std::string_view s);
    DataFrame& operator<<(const char* s) { return *this << std::string_view(s); }
    DataFrame& operator<<(const std::string& s) { return *this << std::string_view(s); }
    DataFrame& operator<<(std::span<const std::uint8_t> bytes);
    DataFrame& operator<<(const Bytes& bytes) {
        return *this << std::span<const std::uint8_t>(bytes);
    }
    DataFrame& operator<<(const DataFrame& nested);
    DataFrame& operator<<(std::span<const std::int64_t> numbers);
    DataFrame& operator<<(const std::vector<std::int64_t>& n) {
        return *this << std::span<const std::int64_t>(n);
    }
    DataFrame& operator<<(std::span<const double> numbers);
    DataFrame& operator<<(const std::vector<double>& n) {
        return *this << std::span<const double>(n);
    }
    DataFrame& operator<<(const Map& map);
    DataFrame& operator<<(const Value& value);
    DataFrame& write_int(std::int64_t i);
    DataFrame& write_uint(std::uint64_t u);
    // Appends one value already encoded as MessagePack (a ZDB record as stored, say) without
    // decoding it, once checked to be exactly one well-formed value within `limits`.
    Result<void> append_encoded(std::string_view encoded, const DecodeLimits& limits = {});

    // --- reading: positional, each returns the next value or a typed error ---
    // A failed read does not advance the position.
    Result<bool> read_bool();
    Result<std::int64_t> read_int();    // any integer that fits in int64
    Result<std::uint64_t> read_uint();  // any non-negative integer
    Result<double> read_double();       // a float, or an integer converted
    Result<std::string> read_string();
    Result<Bytes> read_bytes();
    Result<DataFrame> read_frame();  // a nested DataFrame (a MessagePack array)
    Result<std::vector<std::int64_t>> read_ints();
    Result<std::vector<double>> read_doubles();
    Result<Map> read_map();
    Result<Value> read_value();

    // Convenience for handlers: like read_*, but throws hawser::Exception on a mismatch.
    template <class T>
    T get();

    bool at_end() const noexcept { return read_offset_ >= bytes_.size(); }
    std::size_t size() const noexcept { return count_; }  // values in the frame
    bool empty() const noexcept { return count_ == 0; }
    void rewind() noexcept { read_offset_ = 0; }

    // The encoded MessagePack stream: `size()` values back to back.
    const std::string& bytes() const noexcept { return bytes_; }
    std::string take_bytes() && { return std::move(bytes_); }

    bool operator==(const DataFrame& o) const { return bytes_ == o.bytes_; }

  private:
    friend struct DataFrameAccess;
    std::string bytes_;
    std::size_t count_ = 0;
    std::size_t read_offset_ = 0;
};

template <class T>
T DataFrame::get() {
    if constexpr (std::same_as<T, bool>)
        return read_bool().value();
    else if constexpr (std::signed_integral<T>)
        return static_cast<T>(read_int().value());
    else if constexpr (std::unsigned_integral<T>)
        return static_cast<T>(read_uint().value());
    else if constexpr (std::floating_point<T>)
        return static_cast<T>(read_double().value());
    else if constexpr (std::same_as<T, std::string>)
        return read_string().value();
    else if constexpr (std::same_as<T, Bytes>)
        return read_bytes().value();
    else if constexpr (std::same_as<T, DataFrame>)
        return read_frame().value();
    else if constexpr (std::same_as<T, std::vector<std::int64_t>>)
        return read_ints().value();
    else if constexpr (std::same_as<T, std::vector<double>>)
        return read_doubles().value();
    else if constexpr (std::same_as<T, Map>)
        return read_map().value();
    else if constexpr (std::same_as<T, Value>)
        return read_value().value();
    else
        static_assert(sizeof(T) == 0, "DataFrame::get: unsupported type");
}

}  // namespace hawser
