// The big-stream message kinds (10-15), registered in each Host's MessageKinds: each goes to
// the connection's StreamTable (created by the first one that needs it).
// Thread affinity: the connection's loop.
#include "rpc/conn.hpp"
#include "rpc/message_kinds.hpp"
#include "wire/stream_messages.hpp"

namespace hawser::detail {

namespace {

// Only data may be compressed (when its stream asked for it); the rest are a few bytes.
template <void (StreamTable::*Handle)(const MessageView&)>
void plain(Conn& c, const MessageView& m) {
    if (m.flags != 0)
        return c.protocol_close(CloseReason::malformed, "a compressed stream control");
    (c.streams().*Handle)(m);
}

}  // namespace

void register_stream_kinds(MessageKinds& kinds) {
    kinds.add(kind_stream_open, plain<&StreamTable::on_open>);
    kinds.add(kind_stream_accept, plain<&StreamTable::on_accept>);
    kinds.add(kind_stream_data, [](Conn& c, const MessageView& m) { c.streams().on_data(m); });
    kinds.add(kind_stream_window, plain<&StreamTable::on_window>);
    kinds.add(kind_stream_end, plain<&StreamTable::on_end>);
    kinds.add(kind_stream_reset, plain<&StreamTable::on_reset>);
}

}  // namespace hawser::detail
