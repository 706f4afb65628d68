// What one node reads from others over NATS, and what a client reads from a cluster node when
// it is sent elsewhere: load reports, broadcast and publication envelopes, requests to remote
// connections and their answers, route replies and redirect texts. Any bytes must decode or
// fail with an error, never read out of bounds or allocate past the limits.
#include <cstdint>
#include <string_view>

#include "cluster/messages.hpp"
#include "cluster/remote_messages.hpp"
#include "rpc/cluster_hop.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hawser::detail;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    (void)decode_report(bytes);
    (void)decode_broadcast(bytes);
    if (auto m = decode_marker(bytes)) (void)decode_marker(encode_marker(*m));
    if (auto r = decode_request(bytes)) (void)decode_request(encode_request(*r));
    if (auto a = decode_answer(bytes)) (void)decode_answer(encode_answer(*a));
    (void)parse_route_reply(bytes, hawser::DecodeLimits{}, false);
    (void)parse_redirect(bytes, false);
    (void)parse_redirect(bytes, true);
    return 0;
}
