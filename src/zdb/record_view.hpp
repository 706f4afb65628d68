// Reads fields of a stored record (a MessagePack map) in place, without decoding the rest: the
// declarative filter and the indexes look at a few fields of every record they pass, and a
// full decode into a Map would cost more than reading the record from RocksDB.
// msgpack-cxx only decodes whole values, hence this small reader; it trusts nothing (every
// length is checked against the end, nesting is bounded) and has its own fuzz target.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "hawser/dataframe.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::zdb {

// One MessagePack value, read in place: scalars decoded, strings and binaries as views into the
// record, arrays and maps as their element count. `raw` is the whole encoded value.
struct Field {
    enum class Kind : std::uint8_t {
        nil,
        boolean,
        integer,
        unsigned_integer,
        real,
        string,
        binary,
        array,
        map,
        ext
    };
    Kind kind = Kind::nil;
    bool boolean = false;
    std::int64_t integer = 0;
    std::uint64_t unsigned_integer = 0;
    double real = 0;
    std::string_view text;    // string and binary payloads
    std::uint32_t count = 0;  // array and map elements
    std::string_view raw;

    bool is_number() const {
        return kind == Kind::integer || kind == Kind::unsigned_integer || kind == Kind::real;
    }
    double number() const {
        return kind == Kind::integer            ? double(integer)
               : kind == Kind::unsigned_integer ? double(unsigned_integer)
                                                : real;
    }
    // The full value (for arrays, maps and the rare comparisons that need one).
    Result<Value> decode() const;
};

// Reads the value starting at `bytes`: fills `field` and returns its encoded size, or 0 when the
// bytes are malformed, truncated or nested deeper than max_document_depth levels.
std::size_t read_field(std::string_view bytes, Field& field);

// Whether `bytes` are exactly one record the reader accepts: a map, well-formed, nested no
// deeper than max_document_depth.
enum class RecordCheck : std::uint8_t { ok, malformed, too_deep };
RecordCheck check_record(std::string_view bytes);

// A dotted field path split once into its keys.
using FieldPath = std::vector<std::string>;
FieldPath split_path(std::string_view dotted);

class RecordView {
  public:
    explicit RecordView(std::string_view bytes) : bytes_(bytes) {}
    // The value at the path, or nothing when a key is missing or a step is not a map.
    std::optional<Field> find(const FieldPath& path);
    // Set once a lookup met malformed bytes: the record is corrupt.
    bool corrupt() const { return corrupt_; }
    std::string_view bytes() const { return bytes_; }

  private:
    std::string_view bytes_;
    bool corrupt_ = false;
};

}  // namespace hawser::zdb
