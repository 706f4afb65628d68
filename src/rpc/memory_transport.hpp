// MemoryTransport: two connected in-memory Transports, for tests of the layers above without
// sockets (with a manual clock, without sleeping). Each direction holds at most `capacity`
// bytes, so a reader that stops makes the writer wait, as a socket buffer does.
// Ownership: each end is owned by its connection; the pipes between them are shared.
// Thread safety: each end is used on its loop; the two loops may differ.
#pragma once

#include <utility>

#include "rpc/transport.hpp"

namespace hawser::detail {

class Loop;

std::pair<std::unique_ptr<Transport>, std::unique_ptr<Transport>> make_memory_pair(
    Loop& first, Loop& second, std::size_t capacity = 256 * 1024);

}  // namespace hawser::detail
