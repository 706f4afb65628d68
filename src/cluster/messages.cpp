// The cluster's message codecs (see messages.hpp).
#include "cluster/messages.hpp"

#include "cluster/envelope_bytes.hpp"

#include <cctype>
#include <charconv>
#include <optional>

namespace hawser::detail {

Error bad_message(std::string what) {
    return Error{Errc::bad_payload, "cluster message: " + std::move(what)};
}

namespace {

// Reports are small; these bounds make a forged one cheap to refuse.
DecodeLimits report_limits() {
    DecodeLimits l;
    l.max_depth = 4;
    l.max_container = 64;
    l.max_elements = 256;
    l.max_bytes = 16u << 10;
    l.max_decoded_bytes = 64u << 10;
    return l;
}

constexpr std::size_t max_endpoints = 16;
constexpr std::size_t max_endpoint_length = 300;

template <class T>
const T* field(const Map& m, std::string_view name) {
    auto it = m.find(name);
    if (it == m.end() || !it->second.is<T>()) return nullptr;
    return &it->second.as<T>();
}

// Unsigned integers travel as whatever MessagePack chose: uint, or int when small.
std::optional<std::uint64_t> uint_field(const Map& m, std::string_view name) {
    if (auto u = field<std::uint64_t>(m, name)) return *u;
    if (auto i = field<std::int64_t>(m, name); i && *i >= 0) return std::uint64_t(*i);
    return std::nullopt;
}

std::optional<double> double_field(const Map& m, std::string_view name) {
    if (auto d = field<double>(m, name); d && *d >= 0 && *d < 1e12) return *d;
    if (auto u = uint_field(m, name)) return double(*u);
    return std::nullopt;
}

}  // namespace

std::string_view ClusterSubjects::node_of(std::string_view subject) const {
    std::string head = prefix_ + ".node.";
    if (subject.size() <= head.size() || subject.substr(0, head.size()) != head) return {};
    return subject.substr(head.size());
}

std::string_view ClusterSubjects::channel_of(std::string_view subject) const {
    std::string head = prefix_ + ".ch.";
    if (subject.size() <= head.size() || subject.substr(0, head.size()) != head) return {};
    return subject.substr(head.size());
}

std::string_view ClusterSubjects::topic_of(std::string_view subject) const {
    for (std::string_view kind : {".notice.", ".ask."}) {
        auto head = prefix_ + std::string(kind);
        if (subject.size() > head.size() && subject.substr(0, head.size()) == head)
            return subject.substr(head.size());
    }
    return {};
}

bool valid_node_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    return true;
}

std::string encode_report(const NodeInfo& info, bool leaving, std::uint64_t run) {
    Array endpoints;
    for (const auto& e : info.endpoints) endpoints.emplace_back(e);
    Map m{{"name", info.name},
          {"endpoints", std::move(endpoints)},
          {"public_key", info.public_key},
          {"capacity", info.capacity},
          {"connections", info.connections},
          {"handshakes_per_second", info.handshakes_per_second},
          {"cpu", info.cpu},
          {"memory_bytes", info.memory_bytes},
          {"draining", info.draining},
          {"sequence", info.sequence},
          {"report_period_ms", std::uint64_t(info.report_period.count())},
          {"leaving", leaving},
          {"run", run}};
    DataFrame f;
    f << m;
    return std::move(f).take_bytes();
}

Result<NodeReport> decode_report(std::string_view bytes) {
    auto frame = DataFrame::decode(bytes, report_limits());
    if (!frame) return bad_message("report: " + frame.error().message);
    auto map = frame->read_map();
    if (!map || !frame->at_end()) return bad_message("report is not one map");
    const Map& m = *map;
    NodeReport r;
    auto* name = field<std::string>(m, "name");
    if (!name || !valid_node_name(*name)) return bad_message("report without a valid node name");
    r.info.name = *name;
    auto* endpoints = field<Array>(m, "endpoints");
    if (!endpoints || endpoints->size() > max_endpoints)
        return bad_message("report: bad endpoints");
    for (const auto& e : *endpoints) {
        if (!e.is<std::string>() || e.as<std::string>().empty() ||
            e.as<std::string>().size() > max_endpoint_length)
            return bad_message("report: bad endpoint");
        r.info.endpoints.push_back(e.as<std::string>());
    }
    auto* key = field<std::string>(m, "public_key");
    if (!key || !(key->empty() || key->size() == 64)) return bad_message("report: bad public key");
    for (char c : *key)
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            return bad_message("report: bad public key");
    r.info.public_key = *key;
    auto capacity = uint_field(m, "capacity");
    auto connections = uint_field(m, "connections");
    auto memory = uint_field(m, "memory_bytes");
    auto sequence = uint_field(m, "sequence");
    auto rate = double_field(m, "handshakes_per_second");
    auto cpu = double_field(m, "cpu");
    auto* draining = field<bool>(m, "draining");
    auto* leaving = field<bool>(m, "leaving");
    if (!capacity || !connections || !memory || !sequence || !rate || !cpu || !draining || !leaving)
        return bad_message("report: a field is missing or has the wrong type");
    r.info.capacity = *capacity;
    r.info.connections = *connections;
    r.info.memory_bytes = *memory;
    r.info.sequence = *sequence;
    r.info.handshakes_per_second = *rate;
    r.info.cpu = *cpu;
    r.info.draining = *draining;
    r.leaving = *leaving;
    r.run = uint_field(m, "run").value_or(0);
    // Optional (absent: an older node, which does not say).
    if (m.count("report_period_ms")) {
        auto period = uint_field(m, "report_period_ms");
        if (!period) return bad_message("report: report_period_ms is not a count of milliseconds");
        if (*period > std::uint64_t(std::chrono::milliseconds(max_report_period).count()))
            return bad_message("report: report period over an hour");
        r.info.report_period = std::chrono::milliseconds(*period);
    }
    return r;
}

// Envelope: u8 version (1) | u8 flags (1 dataframe, 2 compress) | u8 origin length | origin |
// u8 command length | command | argument (the rest).
std::string encode_broadcast(const ClusterBroadcast& b) {
    std::string out;
    out.reserve(4 + b.origin.size() + b.command.size() + b.argument.size());
    out += char(1);
    out += char((b.dataframe ? 1 : 0) | (b.compress ? 2 : 0));
    put_short_text(out, b.origin);
    put_short_text(out, b.command);
    out += b.argument;
    return out;
}

Result<ClusterBroadcast> decode_broadcast(std::string_view bytes) {
    EnvelopeReader in{bytes};
    auto version = in.number(1), flags = in.number(1);
    if (!flags) return bad_message("broadcast too short");
    if (*version != 1) return bad_message("broadcast of an unknown version");
    if (*flags & ~3u) return bad_message("broadcast with unknown flags");
    ClusterBroadcast b;
    b.dataframe = *flags & 1;
    b.compress = *flags & 2;
    auto origin = in.short_text();
    if (!origin || !valid_node_name(*origin))
        return bad_message("broadcast without a valid origin");
    b.origin = *origin;
    auto command = in.short_text();
    if (!command || command->empty()) return bad_message("broadcast without a command");
    b.command = *command;
    b.argument = in.bytes;
    return b;
}

std::string encode_marker(InterestMarker m) {
    return std::to_string(m.run) + " " + std::to_string(m.number);
}

Result<InterestMarker> decode_marker(std::string_view bytes) {
    auto number = [](std::string_view text, std::uint64_t& out) {
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        return !text.empty() && ec == std::errc() && end == text.data() + text.size();
    };
    InterestMarker m;
    auto space = bytes.find(' ');
    if (space == std::string_view::npos || !number(bytes.substr(0, space), m.run) ||
        !number(bytes.substr(space + 1), m.number))
        return Error{Errc::bad_payload, "cluster message: interest marker: not two numbers"};
    return m;
}

}  // namespace hawser::detail
