// The message kinds every session speaks, registered in each Host's MessageKinds: calls and
// direct messages go to the command table, replies and errors to the call table, pings are
// answered, a goodbye closes with the peer's reason.
// Thread affinity: the connection's loop.
#include "rpc/conn.hpp"
#include "rpc/message_kinds.hpp"

namespace hawser::detail {

namespace {

void on_call(Conn& conn, const MessageView& m) {
    conn.on_call(m);
}
void on_direct(Conn& conn, const MessageView& m) {
    conn.on_direct(m);
}
void on_reply(Conn& conn, const MessageView& m) {
    conn.on_reply(m);
}
void on_ping(Conn& conn, const MessageView& m) {
    conn.send_message(Kind::pong, m.id, {}, {});
}
void on_pong(Conn&, const MessageView&) {}  // only life, which any message shows
void on_goodbye(Conn& conn, const MessageView& m) {
    auto coded = parse_coded(m.payload);
    auto reason = coded && coded->first < close_reason_count ? CloseReason(coded->first)
                                                             : CloseReason::peer_closed;
    // Where a full or draining cluster node sends its client (the client's connect follows).
    // (16 endpoints of 300 bytes, a key and a name fit; a longer text is refused whole, never
    // cut into a wrong address.)
    if (reason == CloseReason::redirect && conn.host().is_client && coded->second.size() <= 8192)
        conn.set_redirect_text(coded->second);
    conn.close(reason == CloseReason::none ? CloseReason::peer_closed : reason);
}

}  // namespace

void register_session_kinds(MessageKinds& kinds) {
    kinds.add(Kind::call_console, on_call);
    kinds.add(Kind::call_dataframe, on_call);
    kinds.add(Kind::direct_console, on_direct);
    kinds.add(Kind::direct_dataframe, on_direct);
    kinds.add(Kind::reply, on_reply);
    kinds.add(Kind::error, on_reply);
    kinds.add(Kind::ping, on_ping);
    kinds.add(Kind::pong, on_pong);
    kinds.add(Kind::goodbye, on_goodbye);
}

}  // namespace hawser::detail
