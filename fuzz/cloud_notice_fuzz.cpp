// What the cloud of one node reads from the others over NATS (cloud/cloud_notices.hpp):
// closings, pushed messages, presence notices and whole-state parts, state requests, attempts
// counted against rate limits, server pushes, and the questions and answers of who, presences and
// room members. Any bytes must decode or be refused, never read out of bounds or allocate past the
// limits; what decodes encodes back to the same thing. Half the work is on genuine messages
// built from the input and then changed, so the decoders' later fields are reached, not only
// their first.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cloud/cloud_notices.hpp"

using namespace hawser;
using namespace hawser::cloud::detail;

namespace {

bool same(const PresenceEntry& a, const PresenceEntry& b) {
    return a.user == b.user && a.connection == b.connection && a.online == b.online &&
           a.room == b.room && a.name == b.name;
}
bool same(const std::vector<PresenceEntry>& a, const std::vector<PresenceEntry>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same(a[i], b[i])) return false;
    return true;
}
void check(bool ok) {
    if (!ok) std::abort();
}

// Every decoder on the same bytes; each that accepts them must give back what it read.
void decode_all(std::string_view bytes) {
    if (auto c = decode_closing(bytes)) {
        auto again = decode_closing(encode_closing(c->first, c->second));
        check(again && again->first == c->first && again->second.user == c->second.user &&
              again->second.which == c->second.which &&
              again->second.sessions == c->second.sessions);
    }
    if (auto p = decode_push(bytes)) {
        auto again = decode_push(encode_push(p->origin, p->user, p->message));
        check(again && again->origin == p->origin && again->user == p->user &&
              again->message.bytes() == p->message.bytes());
    }
    if (auto n = decode_presence(bytes)) {
        check(n->entries.size() <= max_entries_per_notice && n->part < n->parts);
        auto again =
            decode_presence(encode_presence(n->origin, n->whole, n->part, n->parts, n->ask_others,
                                            n->entries.data(), n->entries.size()));
        check(again && again->origin == n->origin && again->whole == n->whole &&
              again->part == n->part && again->parts == n->parts &&
              again->ask_others == n->ask_others && same(again->entries, n->entries));
    }
    if (auto r = decode_state_request(bytes)) {
        auto again = decode_state_request(encode_state_request(r->first, r->second));
        check(again && *again == *r);
    }
    if (auto a = decode_attempt(bytes)) {
        auto again = decode_attempt(encode_attempt(a->origin, a->kind, a->key));
        check(again && again->origin == a->origin && again->kind == a->kind &&
              again->key == a->key);
    }
    if (auto p = decode_server_push(bytes)) {
        auto again =
            decode_server_push(encode_server_push(p->origin, p->user, p->command, p->argument));
        check(again && again->origin == p->origin && again->user == p->user &&
              again->command == p->command && again->argument == p->argument);
    }
    if (auto ids = decode_ids(bytes)) {
        check(ids->size() <= max_listed);
        check(decode_ids(encode_ids(*ids)) == ids);
    }
    if (auto rooms = decode_rooms(bytes)) {
        check(rooms->size() <= max_rooms_asked);
        check(decode_rooms(encode_rooms(*rooms)) == rooms);
    }
    if (auto a = decode_entries_answer(bytes)) {
        auto again = decode_entries_answer(
            encode_entries_answer(a->first.data(), a->first.size(), a->second));
        check(again && again->second == a->second && same(again->first, a->first));
    }
}

// Takes the input's bytes in turn, for a genuine message's fields.
struct Source {
    const std::uint8_t* at;
    const std::uint8_t* end;
    std::uint8_t byte() { return at < end ? *at++ : 0; }
    std::uint64_t number() {
        std::uint64_t n = 0;
        for (int i = byte() % 9; i > 0; --i) n = n << 8 | byte();
        return n;
    }
    std::string text(std::size_t max) {
        std::string s(byte() % (max + 1), 'a');
        for (auto& c : s) c = char(byte());
        return s;
    }
    std::string node() { return "node" + std::to_string(byte()); }
    PresenceEntry entry() {
        PresenceEntry e;
        e.user = number();
        e.connection = number();
        e.online = byte() & 1;
        if (byte() & 1) {
            e.room = "room" + text(8);
            e.name = "n" + text(12);
        }
        return e;
    }
};

std::string genuine(std::uint8_t kind, Source& in) {
    std::vector<PresenceEntry> entries(in.byte() % 6);
    for (auto& e : entries) e = in.entry();
    switch (kind % 9) {
        // Each field read into its own variable: the order arguments are evaluated in is
        // the compiler's, and an input must mean the same message everywhere.
        case 0: {
            Closing c;
            c.user = in.number();
            c.which = Which(in.byte() % 3);
            c.sessions = {in.number()};
            auto origin = in.node();
            return encode_closing(origin, c);
        }
        case 1: {
            DataFrame message;
            auto text = in.text(20);
            auto n = in.number();
            message << text << n;
            auto origin = in.node();
            auto user = in.number();
            return encode_push(origin, user, message);
        }
        case 2: {
            auto origin = in.node();
            bool whole = in.byte() & 1;
            std::uint64_t parts = whole ? 1 + in.byte() % 4 : 1;
            std::uint64_t part = in.byte() % parts;
            bool ask = in.byte() & 1;
            return encode_presence(origin, whole, part, parts, ask, entries.data(), entries.size());
        }
        case 3: {
            auto origin = in.node();
            auto asked = in.node();
            return encode_state_request(origin, asked);
        }
        case 4: {
            std::vector<std::uint64_t> ids(3);
            for (auto& id : ids) id = in.number();
            return encode_ids(ids);
        }
        case 5: {
            auto a = "a" + in.text(10);
            auto b = "b" + in.text(10);
            return encode_rooms({a, b});
        }
        case 6: {
            bool complete = in.byte() & 1;
            return encode_entries_answer(entries.data(), entries.size(), complete);
        }
        case 7: {
            DataFrame argument;
            auto text = in.text(20);
            argument << text;
            auto origin = in.node();
            auto user = in.number();
            auto command = "c" + in.text(10);
            return encode_server_push(origin, user, command, argument.bytes());
        }
        default: {
            auto origin = in.node();
            auto attempt = Attempt(in.byte() % 5);
            auto key = "k" + in.text(20);
            return encode_attempt(origin, attempt, key);
        }
    }
}

// Whether a genuine message of `kind` decodes as that kind.
bool decodes(std::uint8_t kind, std::string_view bytes) {
    switch (kind % 9) {
        case 0:
            return decode_closing(bytes).has_value();
        case 1:
            return decode_push(bytes).has_value();
        case 2:
            return decode_presence(bytes).has_value();
        case 3:
            return decode_state_request(bytes).has_value();
        case 4:
            return decode_ids(bytes).has_value();
        case 5:
            return decode_rooms(bytes).has_value();
        case 6:
            return decode_entries_answer(bytes).has_value();
        case 7:
            return decode_server_push(bytes).has_value();
        default:
            return decode_attempt(bytes).has_value();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    decode_all({reinterpret_cast<const char*>(data), size});
    if (size < 2) return 0;
    // A genuine message built from the input decodes whole, then with the input's bytes laid
    // over it from a chosen position.
    Source in{data + 2, data + size};
    auto message = genuine(data[0], in);
    check(decodes(data[0], message));
    decode_all(message);
    std::size_t at = data[1] % message.size();
    for (std::size_t i = 2; i < size && at < message.size(); ++i, ++at) message[at] = char(data[i]);
    decode_all(message);
    return 0;
}
