// The bytes the clouds of a cluster's nodes send each other (CloudCluster's notices, questions
// and answers; docs/cloud.md, "On a cluster"): each a DataFrame, encoded and decoded here with
// no cluster at hand. A decoder takes any bytes and gives nullopt for malformed ones, never
// reading past them or allocating past the limits below.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hawser/connection.hpp"
#include "hawser/dataframe.hpp"

namespace hawser::cloud::detail {

// Sessions in a closing, users in a who or presences question; rooms in a members question.
constexpr std::size_t max_listed = 4096;
constexpr std::size_t max_rooms_asked = 256;
// Presence entries in one notice, at most; fewer when cluster messages are smaller. A whole
// state gathered from its parts holds at most max_state_entries.
constexpr std::size_t max_entries_per_notice = 2048;
constexpr std::size_t max_state_entries = 1u << 22;
// What an entry's strings may hold: a room is named as a channel; a username is short.
constexpr std::size_t max_room_bytes = 128, max_name_bytes = 256;

// Which of a user's connections to close.
enum class Which : std::uint8_t {
    on_sessions = 0,      // those on the listed sessions
    all_but_session = 1,  // all but those on one session (logins under way included)
    all = 2,
};
struct Closing {
    std::uint64_t user = 0;
    Which which = Which::all;
    std::vector<std::uint64_t> sessions;  // on_sessions: the list; all_but_session: one
};

// One connection of a user that went online or offline, or (in a whole state) is online; or,
// with a room, that joined or left it (online: in it), as the username `name`.
struct PresenceEntry {
    std::uint64_t user = 0;
    ConnectionId connection = 0;
    bool online = true;
    std::string room, name;  // both empty for the connection's sign-in itself
};
// An entry's encoded size, at most (for cutting notices to the cluster's message size).
std::size_t entry_bytes(const PresenceEntry& e);

// [origin, user, which, sessions]
std::string encode_closing(std::string_view origin, const Closing& c);
std::optional<std::pair<std::string, Closing>> decode_closing(std::string_view bytes);

// [origin, user, the message as pushed]
struct Push {
    std::string origin;
    std::uint64_t user = 0;
    DataFrame message;
};
std::string encode_push(std::string_view origin, std::uint64_t user, const DataFrame& message);
std::optional<Push> decode_push(std::string_view bytes);

// [origin, whole, part, parts, ask_others, entries]: a node's changes (whole false, one part),
// or one part of its whole state.
struct PresenceNotice {
    std::string origin;
    bool whole = false;
    std::uint64_t part = 0, parts = 1;
    bool ask_others = false;
    std::vector<PresenceEntry> entries;
};
std::string encode_presence(std::string_view origin, bool whole, std::uint64_t part,
                            std::uint64_t parts, bool ask_others, const PresenceEntry* first,
                            std::size_t n);
std::optional<PresenceNotice> decode_presence(std::string_view bytes);

// [origin, the node asked for its whole state]
std::string encode_state_request(std::string_view origin, std::string_view asked);
std::optional<std::pair<std::string, std::string>> decode_state_request(std::string_view bytes);

// [origin, kind, key]: an attempt one node counted against a rate limit, which the others
// count too, so that a limit holds for the cluster and not per node (docs/cloud.md, "Rate
// limits"). The key is a source address or an account's name key.
enum class Attempt : std::uint8_t {
    login_from_address = 0,
    // A password tried on an account, counted before it is hashed (so that guesses in flight
    // on several nodes count), and taken back by account_refund when it was right.
    account_attempt = 1,
    registration_from_address = 2,
    account_refund = 3,
    // A login counted from an address that never ran (the node was overloaded).
    address_refund = 4,
};
constexpr std::size_t max_attempt_key_bytes = 128;
struct AttemptNotice {
    std::string origin;
    Attempt kind = Attempt::login_from_address;
    std::string key;
};
std::string encode_attempt(std::string_view origin, Attempt kind, std::string_view key);
std::optional<AttemptNotice> decode_attempt(std::string_view bytes);

// [origin, user (0: every signed-in connection), command, argument's bytes]: a server push
// (Cloud::push, Cloud::broadcast) for the other nodes' connections. The argument travels as
// it is encoded, to be handed on as it is, not decoded here.
constexpr std::size_t max_command_bytes = 255;
struct ServerPush {
    std::string origin;
    std::uint64_t user = 0;
    std::string command;
    std::string argument;  // a DataFrame's bytes
};
std::string encode_server_push(std::string_view origin, std::uint64_t user,
                               std::string_view command, std::string_view argument);
std::optional<ServerPush> decode_server_push(std::string_view bytes);

// [ids]: a who or presences question (users), a who answer (the online ones).
std::string encode_ids(const std::vector<std::uint64_t>& ids);
std::optional<std::vector<std::uint64_t>> decode_ids(std::string_view bytes);
// [rooms]: a members question.
std::string encode_rooms(const std::vector<std::string>& rooms);
std::optional<std::vector<std::string>> decode_rooms(std::string_view bytes);
// [entries, complete]: a presences or members answer, `complete` false when more were there
// than one answer carries.
std::string encode_entries_answer(const PresenceEntry* first, std::size_t n, bool complete);
std::optional<std::pair<std::vector<PresenceEntry>, bool>> decode_entries_answer(
    std::string_view bytes);

}  // namespace hawser::cloud::detail
