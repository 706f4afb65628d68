#include "cloud/cloud_notices.hpp"

#include "cluster/messages.hpp"

namespace hawser::cloud::detail {

namespace {

// [count, ids...], at most `max`.
std::optional<std::vector<std::uint64_t>> read_ids(DataFrame& in, std::size_t max) {
    auto n = in.read_uint();
    if (!n || *n > max || *n > in.size()) return std::nullopt;
    std::vector<std::uint64_t> ids;
    for (std::uint64_t i = 0; i < *n; ++i) {
        auto id = in.read_uint();
        if (!id) return std::nullopt;
        ids.push_back(*id);
    }
    return ids;
}
void write_ids(DataFrame& out, const std::vector<std::uint64_t>& ids) {
    out << std::uint64_t(ids.size());
    for (auto id : ids) out << id;
}

// [count, (user, connection, online, room, name)...]
void write_entries(DataFrame& out, const PresenceEntry* first, std::size_t n) {
    out << std::uint64_t(n);
    for (std::size_t i = 0; i < n; ++i)
        out << first[i].user << std::uint64_t(first[i].connection) << first[i].online
            << first[i].room << first[i].name;
}
std::optional<std::vector<PresenceEntry>> read_entries(DataFrame& in, std::size_t max) {
    auto n = in.read_uint();
    if (!n || *n > max || *n * 5 > in.size()) return std::nullopt;
    std::vector<PresenceEntry> out;
    out.reserve(*n);
    for (std::uint64_t i = 0; i < *n; ++i) {
        auto user = in.read_uint();
        auto connection = in.read_uint();
        auto online = in.read_bool();
        auto room = in.read_string();
        auto name = in.read_string();
        // A sign-in names no room and no one; a member joining a room names itself.
        if (!user || !connection || !online || !room || !name || room->size() > max_room_bytes ||
            name->size() > max_name_bytes || (room->empty() && !name->empty()) ||
            (!room->empty() && *online && name->empty()))
            return std::nullopt;
        out.push_back({*user, *connection, *online, std::move(*room), std::move(*name)});
    }
    return out;
}

// The origin every notice starts with, which must be a node's name.
std::optional<std::string> read_origin(DataFrame& in) {
    auto origin = in.read_string();
    if (!origin || !hawser::detail::valid_node_name(*origin)) return std::nullopt;
    return std::move(*origin);
}

}  // namespace

std::size_t entry_bytes(const PresenceEntry& e) {
    return 32 + e.room.size() + e.name.size();  // 25 at most besides the strings' bytes
}

std::string encode_closing(std::string_view origin, const Closing& c) {
    DataFrame body;
    body << origin << c.user << std::uint64_t(c.which);
    write_ids(body, c.sessions);
    return std::move(body).take_bytes();
}

std::optional<std::pair<std::string, Closing>> decode_closing(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto origin = read_origin(*body);
    auto user = body->read_uint();
    auto which = body->read_uint();
    auto sessions = read_ids(*body, max_listed);
    if (!origin || !user || !which || *which > std::uint64_t(Which::all) || !sessions)
        return std::nullopt;
    Closing c{*user, Which(*which), std::move(*sessions)};
    if (c.which == Which::all_but_session && c.sessions.size() != 1) return std::nullopt;
    return std::pair{std::move(*origin), std::move(c)};
}

std::string encode_push(std::string_view origin, std::uint64_t user, const DataFrame& message) {
    DataFrame body;
    body << origin << user << message;
    return std::move(body).take_bytes();
}

std::optional<Push> decode_push(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto origin = read_origin(*body);
    auto user = body->read_uint();
    auto message = body->read_frame();
    if (!origin || !user || !message) return std::nullopt;
    return Push{std::move(*origin), *user, std::move(*message)};
}

std::string encode_presence(std::string_view origin, bool whole, std::uint64_t part,
                            std::uint64_t parts, bool ask_others, const PresenceEntry* first,
                            std::size_t n) {
    DataFrame body;
    body << origin << whole << part << parts << ask_others;
    write_entries(body, first, n);
    return std::move(body).take_bytes();
}

std::optional<PresenceNotice> decode_presence(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto origin = read_origin(*body);
    auto whole = body->read_bool();
    auto part = body->read_uint();
    auto parts = body->read_uint();
    auto ask_others = body->read_bool();
    auto entries = read_entries(*body, max_entries_per_notice);
    if (!origin || !whole || !part || !parts || !ask_others || !entries || *part >= *parts ||
        *parts > max_state_entries || (!*whole && *parts != 1))
        return std::nullopt;
    return PresenceNotice{std::move(*origin), *whole, *part, *parts, *ask_others,
                          std::move(*entries)};
}

std::string encode_state_request(std::string_view origin, std::string_view asked) {
    DataFrame body;
    body << origin << asked;
    return std::move(body).take_bytes();
}

std::optional<std::pair<std::string, std::string>> decode_state_request(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto origin = read_origin(*body);
    auto asked = body->read_string();
    if (!origin || !asked) return std::nullopt;
    return std::pair{std::move(*origin), std::move(*asked)};
}

std::string encode_attempt(std::string_view origin, Attempt kind, std::string_view key) {
    DataFrame body;
    body << origin << std::uint64_t(kind) << key;
    return std::move(body).take_bytes();
}

std::optional<AttemptNotice> decode_attempt(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto origin = read_origin(*body);
    auto kind = body->read_uint();
    auto key = body->read_string();
    if (!origin || !kind || *kind > std::uint64_t(Attempt::address_refund) || !key ||
        key->empty() || key->size() > max_attempt_key_bytes)
        return std::nullopt;
    return AttemptNotice{std::move(*origin), Attempt(*kind), std::move(*key)};
}

std::string encode_server_push(std::string_view origin, std::uint64_t user,
                               std::string_view command, std::string_view argument) {
    DataFrame body;
    body << origin << user << command
         << std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(argument.data()),
                                          argument.size());
    return std::move(body).take_bytes();
}

std::optional<ServerPush> decode_server_push(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto origin = read_origin(*body);
    auto user = body->read_uint();
    auto command = body->read_string();
    auto argument = body->read_bytes();
    if (!origin || !user || !command || command->empty() || command->size() > max_command_bytes ||
        !argument)
        return std::nullopt;
    return ServerPush{std::move(*origin), *user, std::move(*command),
                      std::string(argument->begin(), argument->end())};
}

std::string encode_ids(const std::vector<std::uint64_t>& ids) {
    DataFrame body;
    write_ids(body, ids);
    return std::move(body).take_bytes();
}

std::optional<std::vector<std::uint64_t>> decode_ids(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    return read_ids(*body, max_listed);
}

std::string encode_rooms(const std::vector<std::string>& rooms) {
    DataFrame body;
    body << std::uint64_t(rooms.size());
    for (auto& room : rooms) body << room;
    return std::move(body).take_bytes();
}

std::optional<std::vector<std::string>> decode_rooms(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto n = body->read_uint();
    if (!n || *n > max_rooms_asked || *n > body->size()) return std::nullopt;
    std::vector<std::string> rooms;
    for (std::uint64_t i = 0; i < *n; ++i) {
        auto room = body->read_string();
        if (!room || room->empty() || room->size() > max_room_bytes) return std::nullopt;
        rooms.push_back(std::move(*room));
    }
    return rooms;
}

std::string encode_entries_answer(const PresenceEntry* first, std::size_t n, bool complete) {
    DataFrame body;
    write_entries(body, first, n);
    body << complete;
    return std::move(body).take_bytes();
}

std::optional<std::pair<std::vector<PresenceEntry>, bool>> decode_entries_answer(
    std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return std::nullopt;
    auto entries = read_entries(*body, max_entries_per_notice);
    auto complete = body->read_bool();
    if (!entries || !complete) return std::nullopt;
    return std::pair{std::move(*entries), *complete};
}

}  // namespace hawser::cloud::detail
