#include "cloud/cloud_cluster.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace hawser::cloud::detail {

namespace {

constexpr std::string_view close_topic = "cloud-close";
constexpr std::string_view push_topic = "cloud-message";
constexpr std::string_view who_topic = "cloud-who";
constexpr std::string_view presence_topic = "cloud-presence";
constexpr std::string_view presences_topic = "cloud-presences";
constexpr std::string_view state_request_topic = "cloud-presence-ask";
constexpr std::size_t max_listed = 4096;  // sessions in a closing, users in a who
// Presence entries in one notice, at most; fewer when cluster messages are smaller.
constexpr std::size_t max_entries_per_notice = 2048;
constexpr std::size_t entry_bytes = 32;  // an entry encoded (19 at most), with room to spare
// Whole states gathered from their parts: at most this many entries in all, from this many
// nodes at once.
constexpr std::size_t max_state_entries = 1u << 22;
constexpr std::size_t max_states_gathered = 256;

// A node's name as the cluster allows it (a NATS subject token).
bool valid_node(std::string_view name) {
    return !name.empty() && name.size() <= 64 &&
           name.find_first_not_of(
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789-_") == std::string_view::npos;
}

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

using PresenceEntry = CloudCluster::PresenceEntry;

// [count, (user, connection, online)...]
void write_entries(DataFrame& out, const PresenceEntry* first, std::size_t n) {
    out << std::uint64_t(n);
    for (std::size_t i = 0; i < n; ++i)
        out << first[i].user << std::uint64_t(first[i].connection) << first[i].online;
}
std::optional<std::vector<PresenceEntry>> read_entries(DataFrame& in, std::size_t max) {
    auto n = in.read_uint();
    if (!n || *n > max || *n * 3 > in.size()) return std::nullopt;
    std::vector<PresenceEntry> out;
    out.reserve(*n);
    for (std::uint64_t i = 0; i < *n; ++i) {
        auto user = in.read_uint();
        auto connection = in.read_uint();
        auto online = in.read_bool();
        if (!user || !connection || !online) return std::nullopt;
        out.push_back({*user, *connection, *online});
    }
    return out;
}

void log_dropped(std::string_view what) {
    spdlog::warn("hawser cloud: a malformed {} from another node was dropped", what);
}

// Asks every node about `users`. `take(node, answer, out)` reads each answer into `out` (false:
// malformed, dropped); `done` gets what was taken once every node answered (or at 2 s).
template <class Out, class Take>
void ask_about(Cluster& cluster, std::string_view topic, const std::vector<std::uint64_t>& users,
               std::string_view what, Take take, std::function<void(Result<Out>)> done) {
    DataFrame question;
    write_ids(question, users);
    cluster.ask(
        topic, question.bytes(),
        [take = std::move(take), done = std::move(done),
         what = std::string(what)](Result<std::map<std::string, std::string>> answers) {
            if (!answers) return done(answers.error());
            Out out;
            for (auto& [node, answer] : *answers) {
                auto frame = DataFrame::decode(answer);
                if (!frame || !take(node, *frame, out)) log_dropped(what);
            }
            done(std::move(out));
        },
        Milliseconds(2000));
}

// The users a question asks about; nullopt (logged) when it is malformed.
std::optional<std::vector<std::uint64_t>> asked_users(std::string_view bytes,
                                                      std::string_view what) {
    auto body = DataFrame::decode(bytes);
    auto users = body ? read_ids(*body, max_listed) : std::nullopt;
    if (!users) log_dropped(what);
    return users;
}

}  // namespace

std::shared_ptr<CloudCluster> CloudCluster::join(Cluster& cluster, Local local) {
    auto self = std::make_shared<CloudCluster>(cluster, std::move(local));
    std::weak_ptr<CloudCluster> weak = self;
    cluster.on_notice(std::string(close_topic), [weak](std::string_view body) {
        if (auto s = weak.lock()) s->on_close(body);
    });
    cluster.on_notice(std::string(push_topic), [weak](std::string_view body) {
        if (auto s = weak.lock()) s->on_push(body);
    });
    cluster.on_question(std::string(who_topic), [weak](std::string_view body) {
        auto s = weak.lock();
        return s ? s->on_who(body) : std::string();
    });
    cluster.on_notice(std::string(presence_topic), [weak](std::string_view body) {
        if (auto s = weak.lock()) s->on_presence(body);
    });
    cluster.on_question(std::string(presences_topic), [weak](std::string_view body) {
        auto s = weak.lock();
        return s ? s->on_presences(body) : std::string();
    });
    cluster.on_notice(std::string(state_request_topic), [weak](std::string_view body) {
        if (auto s = weak.lock()) s->on_state_request(body);
    });
    cluster.on_node_joined([weak](const std::string& node) {
        if (auto s = weak.lock()) s->local_.node_joined(node);
    });
    cluster.on_node_gone([weak](const std::string& node) {
        if (auto s = weak.lock()) {
            {
                std::lock_guard lock(s->parts_mu_);
                s->parts_.erase(node);
            }
            s->local_.node_gone(node);
        }
    });
    cluster.on_notices_lost([weak] {
        if (auto s = weak.lock()) s->local_.notices_lost();
    });
    return self;
}

void CloudCluster::tell(std::string_view topic, const DataFrame& body) {
    // Without NATS the other nodes miss it: their connections of an ended session stay until
    // they next resume (which then fails), and the message waits in the mailbox.
    if (auto r = cluster_.notify(topic, body.bytes()); !r)
        spdlog::warn("hawser cloud: the other nodes were not told ({}): {}", topic,
                     r.error().message);
}

bool CloudCluster::from_here(DataFrame& body) const {
    auto origin = body.read_string();
    return !origin || *origin == cluster_.node_name();
}

// [origin, user, which, sessions]
void CloudCluster::close(const Closing& c) {
    DataFrame body;
    body << cluster_.node_name() << c.user << std::uint64_t(c.which);
    write_ids(body, c.sessions);
    tell(close_topic, body);
}

void CloudCluster::on_close(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return log_dropped("closing");
    if (from_here(*body)) return;
    Closing c;
    auto user = body->read_uint();
    auto which = body->read_uint();
    auto sessions = read_ids(*body, max_listed);
    if (!user || !which || *which > std::uint64_t(Which::all) || !sessions)
        return log_dropped("closing");
    c.user = *user;
    c.which = Which(*which);
    c.sessions = std::move(*sessions);
    if (c.which == Which::all_but_session && c.sessions.size() != 1) return log_dropped("closing");
    local_.close(c);
}

// [origin, user, the message as pushed]
void CloudCluster::push(std::uint64_t user, const DataFrame& message) {
    DataFrame body;
    body << cluster_.node_name() << user << message;
    tell(push_topic, body);
}

void CloudCluster::on_push(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return log_dropped("message");
    if (from_here(*body)) return;
    auto user = body->read_uint();
    auto message = body->read_frame();
    if (!user || !message) return log_dropped("message");
    local_.push(*user, *message);
}

// Asked: [users]; answered: [the online ones].
void CloudCluster::who(std::vector<std::uint64_t> users,
                       std::function<void(Result<std::vector<std::uint64_t>>)> done) {
    ask_about<std::vector<std::uint64_t>>(
        cluster_, who_topic, users, "answer to who",
        [](const std::string&, DataFrame& answer, std::vector<std::uint64_t>& online) {
            auto ids = read_ids(answer, max_listed);
            if (ids) online.insert(online.end(), ids->begin(), ids->end());
            return ids.has_value();
        },
        [done = std::move(done)](Result<std::vector<std::uint64_t>> online) {
            if (online) {
                std::sort(online->begin(), online->end());
                online->erase(std::unique(online->begin(), online->end()), online->end());
            }
            done(std::move(online));
        });
}

std::string CloudCluster::on_who(std::string_view bytes) {
    auto users = asked_users(bytes, "who");
    if (!users) return {};
    DataFrame answer;
    write_ids(answer, local_.online(*users));
    return std::move(answer).take_bytes();
}

std::size_t CloudCluster::entries_per_notice() const {
    auto room = cluster_.max_message_bytes() > 256 ? cluster_.max_message_bytes() - 256 : 0;
    return std::clamp<std::size_t>(room / entry_bytes, 1, max_entries_per_notice);
}

// [origin, whole, part, parts, ask_others, entries]: changes (whole false, one part), or one
// part of a node's whole state.
void CloudCluster::presence_changes(const std::vector<PresenceEntry>& changes) {
    auto per = entries_per_notice();
    for (std::size_t at = 0; at < changes.size(); at += per) {
        DataFrame body;
        body << cluster_.node_name() << false << std::uint64_t(0) << std::uint64_t(1) << false;
        write_entries(body, changes.data() + at, std::min(per, changes.size() - at));
        tell(presence_topic, body);
    }
}

void CloudCluster::presence_state(const std::vector<PresenceEntry>& online, bool ask_others) {
    auto per = entries_per_notice();
    std::uint64_t parts = std::max<std::uint64_t>(1, (online.size() + per - 1) / per);
    for (std::uint64_t part = 0; part < parts; ++part) {
        auto at = part * per;
        DataFrame body;
        body << cluster_.node_name() << true << part << parts << ask_others;
        write_entries(body, online.data() + at, std::min<std::size_t>(per, online.size() - at));
        tell(presence_topic, body);
    }
}

void CloudCluster::on_presence(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return log_dropped("presence");
    auto origin = body->read_string();
    auto whole = body->read_bool();
    auto part = body->read_uint();
    auto parts = body->read_uint();
    auto ask_others = body->read_bool();
    auto entries = read_entries(*body, max_entries_per_notice);
    if (!origin || !whole || !part || !parts || !ask_others || !entries || !valid_node(*origin) ||
        *part >= *parts || *parts > max_state_entries)
        return log_dropped("presence");
    if (*origin == cluster_.node_name()) return;
    if (!*whole) return local_.presence(*origin, std::move(*entries), false);
    std::vector<PresenceEntry> state;
    {
        std::lock_guard lock(parts_mu_);
        auto drop = [&](auto it) {
            parts_entries_ -= it->second.entries.size();
            parts_.erase(it);
        };
        if (auto it = parts_.find(*origin); it != parts_.end() && *part == 0) drop(it);
        auto it = parts_.find(*origin);
        if (it == parts_.end()) {
            // Only a first part starts a state; a later one whose first was lost is dropped.
            if (*part != 0) return log_dropped("presence state (a part was lost)");
            if (parts_.size() >= max_states_gathered) return log_dropped("presence state");
            it = parts_.emplace(*origin, Parts{0, *parts, {}}).first;
        }
        auto& p = it->second;
        if (p.next != *part || p.total != *parts ||
            parts_entries_ + entries->size() > max_state_entries) {
            drop(it);
            return log_dropped("presence state (a part was lost, or it is too large)");
        }
        p.entries.insert(p.entries.end(), entries->begin(), entries->end());
        parts_entries_ += entries->size();
        if (++p.next < p.total) return;
        parts_entries_ -= p.entries.size();
        state = std::move(p.entries);
        parts_.erase(it);
    }
    local_.presence(*origin, std::move(state), true);
    if (*ask_others) local_.send_state();
}

// [origin, the node asked]
void CloudCluster::request_state(const std::string& node) {
    DataFrame body;
    body << cluster_.node_name() << node;
    tell(state_request_topic, body);
}

void CloudCluster::on_state_request(std::string_view bytes) {
    auto body = DataFrame::decode(bytes);
    if (!body) return log_dropped("presence state request");
    auto origin = body->read_string();
    auto asked = body->read_string();
    if (!origin || !asked) return log_dropped("presence state request");
    if (*asked == cluster_.node_name()) local_.send_state();
}

// Asked: [users]; answered: [entries].
void CloudCluster::presences(std::vector<std::uint64_t> users,
                             std::function<void(Result<NodePresences>)> done) {
    ask_about<std::pair<NodePresences, bool>>(
        cluster_, presences_topic, users, "answer to presences",
        [](const std::string& node, DataFrame& answer, std::pair<NodePresences, bool>& out) {
            auto entries = read_entries(answer, max_state_entries);
            auto complete = answer.read_bool();
            if (!entries || !complete) return false;
            for (auto& e : *entries) out.first.emplace_back(node, e);
            if (!*complete) out.second = true;
            return true;
        },
        [done = std::move(done)](Result<std::pair<NodePresences, bool>> r) {
            if (!r) return done(r.error());
            if (r->second)
                return done(Error{Errc::limit_exceeded,
                                  "these users hold too many connections to list at once; follow "
                                  "fewer"});
            done(std::move(r->first));
        });
}

bool CloudCluster::knows(const std::string& node) const {
    for (auto& n : cluster_.nodes())
        if (n.name == node) return true;
    return false;
}

std::string CloudCluster::on_presences(std::string_view bytes) {
    auto users = asked_users(bytes, "presences");
    if (!users) return {};
    auto here = local_.presences(*users);
    // [entries, complete]: as many as fit in a cluster message.
    auto fit = std::min(here.size(), entries_per_notice());
    DataFrame answer;
    write_entries(answer, here.data(), fit);
    answer << (fit == here.size());
    return std::move(answer).take_bytes();
}

}  // namespace hawser::cloud::detail
