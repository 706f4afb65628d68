// The big-stream message kinds (10-15), registered in each Host's MessageKinds: each goes to
// the connection's StreamTable (created by the first one that needs it).
// Thread affinity: the connection's loop.
#include "rpc/conn.hpp"
#include "rpc/message_kinds.hpp"
#include "wire/stream_messages.hpp"

namespace hawser::detail {

void register_stream_kinds(MessageKinds& kinds) {
    kinds.add(kind_stream_open, [](Conn& c, const MessageView& m) { c.streams().on_open(m); });
    kinds.add(kind_stream_accept, [](Conn& c, const MessageView& m) { c.streams().on_accept(m); });
    kinds.add(kind_stream_data, [](Conn& c, const MessageView& m) { c.streams().on_data(m); });
    kinds.add(kind_stream_window, [](Conn& c, const MessageView& m) { c.streams().on_window(m); });
    kinds.add(kind_stream_end, [](Conn& c, const MessageView& m) { c.streams().on_end(m); });
    kinds.add(kind_stream_reset, [](Conn& c, const MessageView& m) { c.streams().on_reset(m); });
}

}  // namespace hawser::detail
