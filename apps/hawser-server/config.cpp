// hawser-server's own options (see config.hpp): the file's top level and [limits], [timeouts]
// and the other tables of ServerOptions, and what the server would refuse.
#include "config.hpp"

#include <toml.hpp>

#include "config_reading.hpp"
#include "hawser/server.hpp"
#include "rpc/admission.hpp"

namespace hawser::app {

Result<void> validate(const ServerOptions& o) {
    auto bad = [](std::string what) { return Error{Errc::invalid_argument, std::move(what)}; };
    // What Server::start would refuse (limits, WebSocket, addresses, client keys), before
    // anything touches the disk; then what only this program's file can get wrong.
    if (auto valid = Server::validate(o); !valid) return valid.error();
    if (o.io_threads > 1024) return bad("io_threads must be 0 (one per core) to 1024");
    if (o.worker_threads > 1024) return bad("worker_threads must be at most 1024");
    // A zero here would refuse every job, call or connection: almost surely a mistake.
    if (o.max_worker_jobs < 1) return bad("max_worker_jobs must be at least 1");
    if (o.max_worker_bytes < 1) return bad("max_worker_bytes must be at least 1");
    if (o.limits.dataframe.max_depth < 1) return bad("max_dataframe_depth must be at least 1");
    if (o.limits.dataframe.max_container < 1)
        return bad("max_dataframe_container must be at least 1");
    if (o.limits.dataframe.max_elements < 1)
        return bad("max_dataframe_elements must be at least 1");
    const auto& a = o.admission;
    if (a.max_handshakes < 1) return bad("max_handshakes must be at least 1");
    if (a.max_handshakes_per_ip < 1) return bad("max_handshakes_per_ip must be at least 1");
    if (a.max_tracked_addresses < 1) return bad("max_tracked_addresses must be at least 1");
    if (!(a.max_handshakes_per_second == 0 ||
          (a.max_handshakes_per_second >= 1 && a.max_handshakes_per_second <= 1e9)))
        return bad("max_handshakes_per_second must be 0 (no pace) or 1 to 1e9");
    if (!(a.connections_per_second_per_ip >= 0))
        return bad("connections_per_second_per_ip must not be negative");
    // Admission::configure wants a whole connection in the bucket even without a rate.
    if (!(a.connection_burst_per_ip >= 1)) return bad("connection_burst_per_ip must be at least 1");
    for (const auto* list : {&a.allow, &a.deny})
        for (const auto& range : *list)
            if (auto c = detail::Cidr::parse(range); !c) return c.error();
    return {};
}

Result<ProtocolMark> parse_mark(const std::string& head, const std::string& tail) {
    if (head.size() != 4 || tail.size() != 4)
        return Error{Errc::invalid_argument, "protocol marks are exactly 4 bytes each"};
    ProtocolMark m;
    std::copy(head.begin(), head.end(), m.head.begin());
    std::copy(tail.begin(), tail.end(), m.tail.begin());
    return m;
}

Result<ServerOptions> load_config(const std::string& path, ServerOptions o) {
    try {
        auto root = toml::parse(path);
        check_keys(root,
                   {"listen",
                    "io_threads",
                    "worker_threads",
                    "reuse_port",
                    "backlog",
                    "max_connections",
                    "max_worker_jobs",
                    "max_worker_bytes",
                    "data_dir",
                    "send_error_details",
                    "allowed_client_keys",
                    "require_client_key",
                    "mark",
                    "limits",
                    "timeouts",
                    "transport",
                    "admission",
                    "websocket",
                    "cluster",
                    "cloud",
                    "admin"},
                   "");
        read(root, "data_dir", o.data_dir);
        read(root, "listen", o.listen);
        read(root, "io_threads", o.io_threads);
        read(root, "worker_threads", o.worker_threads);
        read(root, "reuse_port", o.reuse_port);
        read(root, "backlog", o.backlog);
        read(root, "max_connections", o.max_connections);
        read(root, "max_worker_jobs", o.max_worker_jobs);
        read(root, "max_worker_bytes", o.max_worker_bytes);
        read(root, "send_error_details", o.send_error_details);
        read(root, "allowed_client_keys", o.allowed_client_keys);
        read(root, "require_client_key", o.require_client_key);
        if (root.contains("mark")) {
            const auto& m = toml::find(root, "mark");
            check_keys(m, {"head", "tail"}, "mark");
            // Either may be left out: it keeps its default (one of another type is an error).
            auto half = [&](const char* key, const std::array<std::uint8_t, 4>& d) {
                return m.contains(key) ? toml::find<std::string>(m, key)
                                       : std::string(d.begin(), d.end());
            };
            auto mark = parse_mark(half("head", o.mark.head), half("tail", o.mark.tail));
            if (!mark) return Error{Errc::invalid_argument, path + ": " + mark.error().message};
            o.mark = *mark;
        }
        if (root.contains("limits")) {
            const auto& l = toml::find(root, "limits");
            check_keys(
                l,
                {"max_frame_bytes", "max_pending_calls", "max_send_queue_bytes",
                 "send_queue_soft_bytes", "send_queue_soft_grace_ms", "max_decompressed_bytes",
                 "worker_decode_bytes", "max_worker_decode_bytes", "max_decoded_bytes",
                 "max_dataframe_depth", "max_dataframe_container", "max_dataframe_elements",
                 "stream_window_bytes", "stream_connection_window_bytes", "stream_chunk_bytes",
                 "stream_hash_turn_bytes", "max_incoming_streams", "max_outgoing_streams"},
                "limits");
            read(l, "max_frame_bytes", o.limits.max_frame_bytes);
            read(l, "max_pending_calls", o.limits.max_pending_calls);
            read(l, "max_send_queue_bytes", o.limits.max_send_queue_bytes);
            read(l, "send_queue_soft_bytes", o.limits.send_queue_soft_bytes);
            read_ms(l, "send_queue_soft_grace_ms", o.limits.send_queue_soft_grace);
            o.limits.dataframe.max_bytes = o.limits.max_frame_bytes;
            o.limits.max_decompressed_bytes = o.limits.max_frame_bytes;  // unless set below
            read(l, "max_decompressed_bytes", o.limits.max_decompressed_bytes);
            read(l, "worker_decode_bytes", o.limits.worker_decode_bytes);
            read(l, "max_worker_decode_bytes", o.limits.max_worker_decode_bytes);
            read(l, "max_decoded_bytes", o.limits.dataframe.max_decoded_bytes);
            read(l, "max_dataframe_depth", o.limits.dataframe.max_depth);
            read(l, "max_dataframe_container", o.limits.dataframe.max_container);
            read(l, "max_dataframe_elements", o.limits.dataframe.max_elements);
            read(l, "stream_window_bytes", o.limits.stream_window_bytes);
            read(l, "stream_connection_window_bytes", o.limits.stream_connection_window_bytes);
            read(l, "stream_chunk_bytes", o.limits.stream_chunk_bytes);
            read(l, "stream_hash_turn_bytes", o.limits.stream_hash_turn_bytes);
            read(l, "max_incoming_streams", o.limits.max_incoming_streams);
            read(l, "max_outgoing_streams", o.limits.max_outgoing_streams);
        }
        if (root.contains("timeouts")) {
            const auto& t = toml::find(root, "timeouts");
            check_keys(t, {"call_ms", "idle_ms", "heartbeat_ms", "shutdown_ms"}, "timeouts");
            read_ms(t, "call_ms", o.timeouts.call);
            read_ms(t, "idle_ms", o.timeouts.idle);
            read_ms(t, "heartbeat_ms", o.timeouts.heartbeat);
            read_ms(t, "shutdown_ms", o.timeouts.shutdown);
        }
        if (root.contains("transport")) {
            const auto& t = toml::find(root, "transport");
            check_keys(t,
                       {"insecure_plaintext", "rekey_messages", "rekey_interval_ms", "compression",
                        "compress_threshold"},
                       "transport");
            read(t, "insecure_plaintext", o.transport.insecure_plaintext);
            read(t, "rekey_messages", o.transport.rekey_messages);
            read_ms(t, "rekey_interval_ms", o.transport.rekey_interval);
            read(t, "compress_threshold", o.transport.compress_threshold);
            if (t.contains("compression")) {
                auto c = toml::find<std::string>(t, "compression");
                if (c == "zstd")
                    o.transport.compression = Compression::zstd;
                else if (c == "lz4")
                    o.transport.compression = Compression::lz4;
                else if (c == "none")
                    o.transport.compression = Compression::none;
                else
                    throw std::runtime_error("compression must be \"zstd\", \"lz4\" or \"none\"");
            }
        }
        if (root.contains("admission")) {
            const auto& a = toml::find(root, "admission");
            check_keys(a,
                       {"handshake_timeout_ms", "max_handshakes", "max_handshakes_per_ip",
                        "max_connections_per_address", "connections_per_second_per_ip",
                        "connection_burst_per_ip", "max_tracked_addresses",
                        "max_handshakes_per_second", "allow", "deny"},
                       "admission");
            read_ms(a, "handshake_timeout_ms", o.admission.handshake_timeout);
            read(a, "max_handshakes", o.admission.max_handshakes);
            read(a, "max_handshakes_per_ip", o.admission.max_handshakes_per_ip);
            read(a, "max_connections_per_address", o.admission.max_connections_per_address);
            read(a, "max_tracked_addresses", o.admission.max_tracked_addresses);
            read(a, "connections_per_second_per_ip", o.admission.connections_per_second_per_ip);
            read(a, "connection_burst_per_ip", o.admission.connection_burst_per_ip);
            read(a, "max_handshakes_per_second", o.admission.max_handshakes_per_second);
            read(a, "allow", o.admission.allow);
            read(a, "deny", o.admission.deny);
        }
        if (root.contains("websocket")) {
            const auto& w = toml::find(root, "websocket");
            check_keys(w,
                       {"listen", "on_native_ports", "path", "allowed_origins", "max_request_bytes",
                        "max_headers"},
                       "websocket");
            read(w, "listen", o.websocket.listen);
            read(w, "on_native_ports", o.websocket.on_native_ports);
            read(w, "path", o.websocket.path);
            read(w, "allowed_origins", o.websocket.allowed_origins);
            read(w, "max_request_bytes", o.websocket.max_request_bytes);
            read(w, "max_headers", o.websocket.max_headers);
        }
    } catch (const std::exception& e) {
        return Error{Errc::invalid_argument, path + ": " + e.what()};
    }
    if (auto valid = validate(o); !valid)
        return Error{Errc::invalid_argument, path + ": " + valid.error().message};
    return o;
}

}  // namespace hawser::app
