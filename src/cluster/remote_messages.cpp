// Codecs of requests to remote connections and their answers (see remote_messages.hpp).
#include "cluster/remote_messages.hpp"

#include <optional>

#include "cluster/envelope_bytes.hpp"
#include "cluster/messages.hpp"

namespace hawser::detail {

// u8 version (1) | u8 op | u8 flags (1 dataframe, 2 compress) | u64 request | u64 connection |
// u32 timeout ms | u8 n | origin | u8 m | command | argument (the rest)
std::string encode_request(const RemoteRequest& r) {
    std::string out;
    out.reserve(24 + r.origin.size() + r.command.size() + r.argument.size());
    out += char(1);
    out += char(r.op);
    out += char((r.dataframe ? 1 : 0) | (r.compress ? 2 : 0));
    put_number(out, r.request, 8);
    put_number(out, r.connection, 8);
    put_number(out, r.timeout_ms, 4);
    put_short_text(out, r.origin);
    put_short_text(out, r.command);
    out += r.argument;
    return out;
}

Result<RemoteRequest> decode_request(std::string_view bytes) {
    EnvelopeReader in{bytes};
    auto version = in.number(1), op = in.number(1), flags = in.number(1);
    auto request = in.number(8), connection = in.number(8), timeout = in.number(4);
    if (!timeout) return bad_message("request too short");
    if (*version != 1) return bad_message("request of an unknown version");
    if (*op < 1 || *op > 3) return bad_message("request of an unknown kind");
    if (*flags & ~3u) return bad_message("request with unknown flags");
    RemoteRequest r;
    r.op = RemoteRequest::Op(*op);
    r.dataframe = *flags & 1;
    r.compress = *flags & 2;
    r.request = *request;
    r.connection = *connection;
    r.timeout_ms = std::uint32_t(*timeout);
    auto origin = in.short_text();
    if (!origin || !valid_node_name(*origin)) return bad_message("request without a valid origin");
    r.origin = *origin;
    auto command = in.short_text();
    if (!command) return bad_message("request command cut short");
    r.command = *command;
    if (r.op != RemoteRequest::Op::find && r.command.empty())
        return bad_message("request without a command");
    if (r.op != RemoteRequest::Op::send && r.request == 0)
        return bad_message("request without an id");
    r.argument = in.bytes;
    return r;
}

// u8 version (1) | u64 request | u16 code | body (the rest)
std::string encode_answer(const RemoteAnswer& a) {
    std::string out;
    out.reserve(11 + a.body.size());
    out += char(1);
    put_number(out, a.request, 8);
    put_number(out, std::uint16_t(a.code), 2);
    out += a.body;
    return out;
}

Result<RemoteAnswer> decode_answer(std::string_view bytes) {
    EnvelopeReader in{bytes};
    auto version = in.number(1), request = in.number(8), code = in.number(2);
    if (!code) return bad_message("answer too short");
    if (*version != 1) return bad_message("answer of an unknown version");
    if (*code >= errc_count) return bad_message("answer with an unknown code");
    return RemoteAnswer{*request, Errc(*code), std::string(in.bytes)};
}

}  // namespace hawser::detail
