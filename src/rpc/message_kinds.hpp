// MessageKinds: which code handles each message kind arriving on a connection. Calls, replies,
// pings and goodbyes register theirs (session_kinds.cpp); big streams and cluster links register
// their own kinds the same way, without editing a switch. A kind nobody registered closes the
// connection as malformed.
// Ownership: a part of the Host, filled before the first connection and read-only after.
// Thread safety: read from every IO thread once frozen.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>

#include "wire/message.hpp"

namespace hawser::detail {

class Conn;

class MessageKinds {
  public:
    // Runs on the connection's loop with the parsed (and decompressed) message.
    using Handler = void (*)(Conn& conn, const MessageView& message);

    void add(Kind kind, Handler handler) {
        auto& slot = handlers_.at(static_cast<std::size_t>(kind));
        if (slot) throw std::logic_error("message kind registered twice");
        slot = handler;
    }
    Handler find(Kind kind) const noexcept {
        auto i = static_cast<std::size_t>(kind);
        return i < handlers_.size() ? handlers_[i] : nullptr;
    }

  private:
    std::array<Handler, max_kind + 1> handlers_{};
};

// The kinds every connection speaks: calls, direct messages, replies, ping/pong and goodbye.
void register_session_kinds(MessageKinds& kinds);
// Big streams: kinds 10-15 (stream_kinds.cpp).
void register_stream_kinds(MessageKinds& kinds);

}  // namespace hawser::detail
