// The Prometheus text writer and a server's metrics (hawser/metrics.hpp).
#include "hawser/metrics.hpp"

#include <fmt/format.h>

#include <cmath>

namespace hawser {

namespace {

void append_escaped(std::string& out, std::string_view value) {
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

void append_number(std::string& out, double value) {
    if (std::isnan(value))
        out += "NaN";
    else if (std::isinf(value))
        out += value > 0 ? "+Inf" : "-Inf";
    else if (value == std::floor(value) && std::fabs(value) < 1e15)
        fmt::format_to(std::back_inserter(out), "{:.0f}", value);
    else
        fmt::format_to(std::back_inserter(out), "{}", value);
}

}  // namespace

void MetricsText::counter(std::string_view name, std::string_view help, double value,
                          Labels labels) {
    begin(name, help, "counter");
    sample(name, "", value, labels);
}

void MetricsText::gauge(std::string_view name, std::string_view help, double value, Labels labels) {
    begin(name, help, "gauge");
    sample(name, "", value, labels);
}

void MetricsText::begin(std::string_view name, std::string_view help, std::string_view type) {
    if (family_ == name) return;
    family_ = name;
    fmt::format_to(std::back_inserter(text_), "# HELP {} ", name);
    for (char c : help) {  // the format escapes backslashes and newlines in help text
        if (c == '\\')
            text_ += "\\\\";
        else if (c == '\n')
            text_ += "\\n";
        else
            text_ += c;
    }
    fmt::format_to(std::back_inserter(text_), "\n# TYPE {} {}\n", name, type);
}

void MetricsText::sample(std::string_view name, std::string_view suffix, double value,
                         Labels labels, std::string_view extra_label,
                         std::string_view extra_value) {
    text_ += name;
    text_ += suffix;
    if (labels.size() || !extra_label.empty()) {
        text_ += '{';
        bool first = true;
        auto label = [&](std::string_view key, std::string_view v) {
            if (!first) text_ += ',';
            first = false;
            text_ += key;
            text_ += "=\"";
            append_escaped(text_, v);
            text_ += '"';
        };
        for (const auto& [key, v] : labels) label(key, v);
        if (!extra_label.empty()) label(extra_label, extra_value);
        text_ += '}';
    }
    text_ += ' ';
    append_number(text_, value);
    text_ += '\n';
}

void MetricsText::bucket(std::string_view name, double bound, std::uint64_t count, Labels labels) {
    std::string le;
    if (bound < 0)
        le = "+Inf";
    else
        append_number(le, bound);
    sample(name, "_bucket", double(count), labels, "le", le);
}

void write_metrics(MetricsText& out, const Stats& s) {
    out.gauge("hawser_connections", "Connections open now", double(s.connections));
    out.counter("hawser_connections_opened_total", "Connections opened since start",
                double(s.opened));
    out.counter("hawser_connections_refused_total",
                "Connections closed at accept (limits, admission)", double(s.refused));
    for (std::size_t r = 1; r < s.closed_by_reason.size(); ++r) {
        auto reason = to_string(static_cast<CloseReason>(r));
        out.counter("hawser_connections_closed_total", "Connections closed, by close reason",
                    double(s.closed_by_reason[r]), {{"reason", reason}});
    }
    out.counter("hawser_handshakes_total", "Handshakes completed", double(s.handshakes));
    out.counter("hawser_rekeys_total", "Key rotations, sending and receiving", double(s.rekeys));
    out.counter("hawser_frames_total", "Frames", double(s.frames_in), {{"direction", "in"}});
    out.counter("hawser_frames_total", "Frames", double(s.frames_out), {{"direction", "out"}});
    out.counter("hawser_bytes_total", "Bytes on the wire", double(s.bytes_in),
                {{"direction", "in"}});
    out.counter("hawser_bytes_total", "Bytes on the wire", double(s.bytes_out),
                {{"direction", "out"}});
    out.counter("hawser_calls_out_total", "Calls this side made", double(s.calls_out));
    out.counter("hawser_late_replies_total",
                "Replies to calls that had timed out or been cancelled", double(s.late_replies));
    out.counter("hawser_callback_errors_total", "User callbacks and hooks that threw",
                double(s.callback_errors));
    out.counter("hawser_overloaded_total",
                "Calls refused and one-way messages dropped: the worker queue was full",
                double(s.overloaded));
    out.counter("hawser_broadcast_skipped_total",
                "Broadcast deliveries skipped: the connection was congested",
                double(s.broadcast_skipped));
    out.gauge("hawser_handshakes_waiting",
              "Handshakes waiting for their turn at the server's pace (max_handshakes_per_second)",
              double(s.handshakes_waiting));
    out.gauge("hawser_send_queue_bytes", "Unsent bytes queued on every connection",
              double(s.send_queue_bytes));
    out.gauge("hawser_send_buffer_bytes", "Memory the send queues hold",
              double(s.send_buffer_bytes));
    out.gauge("hawser_worker_queue_jobs", "Jobs waiting for the worker pool",
              double(s.worker_jobs));
    out.gauge("hawser_worker_queue_bytes", "Bytes of the jobs waiting for the worker pool",
              double(s.worker_bytes));
    std::array<double, CommandStats::latency_bounds_us.size()> bounds_s;
    for (std::size_t i = 0; i < bounds_s.size(); ++i)
        bounds_s[i] = double(CommandStats::latency_bounds_us[i]) / 1e6;
    // One family at a time: Prometheus wants a family's samples together.
    for (const auto& c : s.commands)
        out.counter("hawser_command_calls_total", "Handler runs, by command", double(c.calls),
                    {{"command", c.name}});
    for (const auto& c : s.commands)
        out.counter("hawser_command_errors_total", "Handler runs that failed, by command",
                    double(c.errors), {{"command", c.name}});
    for (const auto& c : s.commands)
        out.counter("hawser_command_bytes_total", "Payload bytes, by command and direction",
                    double(c.bytes_in), {{"command", c.name}, {"direction", "in"}});
    for (const auto& c : s.commands)
        out.counter("hawser_command_bytes_total", "Payload bytes, by command and direction",
                    double(c.bytes_out), {{"command", c.name}, {"direction", "out"}});
    for (const auto& c : s.commands)
        out.histogram("hawser_command_duration_seconds",
                      "Handler time from receipt to reply, by command", bounds_s, c.latency_at_most,
                      c.latency_count, c.latency_sum_us / 1e6, {{"command", c.name}});
}

}  // namespace hawser
