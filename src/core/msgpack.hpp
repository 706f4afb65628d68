// The one place MessagePack (msgpack-cxx, without Boost) is included from.
#pragma once

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include <msgpack.hpp>

#include <string>

namespace hawser::detail {

// msgpack::packer writes into any type with write(const char*, size_t).
struct StringSink {
    std::string* out;
    void write(const char* data, std::size_t size) { out->append(data, size); }
};

}  // namespace hawser::detail
