// The one place MessagePack (msgpack-cxx, without Boost) is included from.
#pragma once

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
// Its zone frees with free() what its own operator new took with malloc(); inlined at -Og, GCC
// pairs the free with the new-expression and warns.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#include <msgpack.hpp>
#pragma GCC diagnostic pop

#include <string>

#include "hawser/dataframe.hpp"

namespace hawser::detail {

// msgpack::packer writes into any type with write(const char*, size_t).
struct StringSink {
    std::string* out;
    void write(const char* data, std::size_t size) { out->append(data, size); }
};

// Converts a decoded MessagePack object (string map keys only, no ext) into a Value.
Result<Value> to_value(const msgpack::object& o);

}  // namespace hawser::detail
