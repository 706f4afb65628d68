#include "cloud/cloud_cluster.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace hawser::cloud::detail {

namespace {

constexpr std::string_view close_topic = "cloud-close";
constexpr std::string_view push_topic = "cloud-message";
constexpr std::string_view who_topic = "cloud-who";
// Presence entries carry rooms since version 2: nodes of the version before (without rooms)
// do not hear these, rather than refuse them.
constexpr std::string_view presence_topic = "cloud-presence-2";
constexpr std::string_view presences_topic = "cloud-presences-2";
constexpr std::string_view state_request_topic = "cloud-presence-ask";
constexpr std::string_view members_topic = "cloud-room-members";
constexpr std::string_view attempt_topic = "cloud-attempt";
constexpr std::string_view server_push_topic = "cloud-push";
// Whole states gathered from their parts at once: from this many nodes at most, holding this
// much memory in all (entry_memory).
constexpr std::size_t max_states_gathered = 256;
constexpr auto state_parts_lifetime = std::chrono::seconds(30);  // a state's parts come together
constexpr std::size_t max_state_bytes = std::size_t(512) << 20;
std::size_t entry_memory(const PresenceEntry& e) {
    return sizeof(PresenceEntry) + e.room.size() + e.name.size();
}

void log_dropped(std::string_view what) {
    spdlog::warn("hawser cloud: a malformed {} from another node was dropped", what);
}

// Asks every node `question`. `take(node, answer, out)` reads each answer into `out` (false:
// malformed, dropped); `done` gets what was taken once every node answered (or at 2 s).
template <class Out, class Take>
void ask_about(Cluster& cluster, std::string_view topic, std::string question,
               std::string_view what, Take take, std::function<void(Result<Out>)> done) {
    cluster.ask(
        topic, std::move(question),
        [take = std::move(take), done = std::move(done),
         what = std::string(what)](Result<std::map<std::string, std::string>> answers) {
            if (!answers) return done(answers.error());
            Out out;
            for (auto& [node, answer] : *answers)
                if (!take(node, answer, out)) log_dropped(what);
            done(std::move(out));
        },
        Milliseconds(2000));
}

// Asks the other nodes a question answered by [entries, complete] (this node's own answer is
// skipped: the asker reads its own state); limit_exceeded (`too_many`) when some node's answer
// did not fit in a cluster message.
void ask_entries(Cluster& cluster, std::string_view topic, std::string question,
                 std::string_view what, std::string too_many,
                 std::function<void(Result<CloudCluster::NodePresences>)> done) {
    using Out = std::pair<CloudCluster::NodePresences, bool>;
    ask_about<Out>(
        cluster, topic, std::move(question), what,
        [here = cluster.node_name()](const std::string& node, const std::string& bytes, Out& out) {
            if (node == here) return true;
            auto answer = decode_entries_answer(bytes);
            if (!answer) return false;
            for (auto& e : answer->first) out.first.emplace_back(node, std::move(e));
            if (!answer->second) out.second = true;
            return true;
        },
        [done = std::move(done), too_many = std::move(too_many)](Result<Out> r) {
            if (!r) return done(r.error());
            if (r->second) return done(Error{Errc::limit_exceeded, too_many});
            done(std::move(r->first));
        });
}

// The users a question asks about; nullopt (logged) when it is malformed.
std::optional<std::vector<std::uint64_t>> asked_users(std::string_view bytes,
                                                      std::string_view what) {
    auto users = decode_ids(bytes);
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
    cluster.on_notice(std::string(attempt_topic), [weak](std::string_view body) {
        if (auto s = weak.lock()) s->on_attempt(body);
    });
    cluster.on_notice(std::string(server_push_topic), [weak](std::string_view body) {
        if (auto s = weak.lock()) s->on_server_push(body);
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
    cluster.on_question(std::string(members_topic), [weak](std::string_view body) {
        auto s = weak.lock();
        return s ? s->on_members(body) : std::string();
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

bool CloudCluster::tell(std::string_view topic, const std::string& body, bool quiet) {
    // Without NATS the other nodes miss it: their connections of an ended session stay until
    // they next resume (which then fails), and the message waits in the mailbox.
    auto r = cluster_.notify(topic, body);
    if (!r && !quiet)
        spdlog::warn("hawser cloud: the other nodes were not told ({}): {}", topic,
                     r.error().message);
    return bool(r);
}

void CloudCluster::close(const Closing& c) {
    tell(close_topic, encode_closing(cluster_.node_name(), c));
}

void CloudCluster::on_close(std::string_view bytes) {
    auto closing = decode_closing(bytes);
    if (!closing) return log_dropped("closing");
    if (closing->first != cluster_.node_name()) local_.close(closing->second);
}

bool CloudCluster::attempt(Attempt kind, const std::string& key) {
    if (key.empty() || key.size() > max_attempt_key_bytes) return false;
    // Quiet: one a login while NATS is away would flood the log (each node counts alone then).
    return tell(attempt_topic, encode_attempt(cluster_.node_name(), kind, key), true);
}

void CloudCluster::on_attempt(std::string_view bytes) {
    auto notice = decode_attempt(bytes);
    if (!notice) return log_dropped("attempt");
    if (notice->origin != cluster_.node_name()) local_.attempt(notice->kind, notice->key);
}

bool CloudCluster::server_push(std::uint64_t user, std::string_view command,
                               std::string_view argument) {
    // Quiet: the caller hears cluster_unavailable for each push while NATS is away.
    return tell(server_push_topic,
                encode_server_push(cluster_.node_name(), user, command, argument), true);
}

void CloudCluster::on_server_push(std::string_view bytes) {
    auto push = decode_server_push(bytes);
    if (!push) return log_dropped("server push");
    if (push->origin != cluster_.node_name())
        local_.server_push(push->user, push->command, push->argument);
}

void CloudCluster::push(std::uint64_t user, const DataFrame& message) {
    tell(push_topic, encode_push(cluster_.node_name(), user, message));
}

void CloudCluster::on_push(std::string_view bytes) {
    auto push = decode_push(bytes);
    if (!push) return log_dropped("message");
    if (push->origin != cluster_.node_name()) local_.push(push->user, push->message);
}

// Asked: [users]; answered: [the online ones].
void CloudCluster::who(std::vector<std::uint64_t> users,
                       std::function<void(Result<std::vector<std::uint64_t>>)> done) {
    ask_about<std::vector<std::uint64_t>>(
        cluster_, who_topic, encode_ids(users), "answer to who",
        [](const std::string&, const std::string& answer, std::vector<std::uint64_t>& online) {
            auto ids = decode_ids(answer);
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
    return users ? encode_ids(local_.online(*users)) : std::string();
}

std::vector<std::pair<std::size_t, std::size_t>> CloudCluster::runs(
    const std::vector<PresenceEntry>& entries) const {
    auto room = cluster_.max_message_bytes() > 512 ? cluster_.max_message_bytes() - 512 : 0;
    std::vector<std::pair<std::size_t, std::size_t>> out{{0, 0}};
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        auto& [first, end] = out.back();
        auto size = entry_bytes(entries[i]);
        if (end > first && (end - first == max_entries_per_notice || bytes + size > room)) {
            out.emplace_back(i, i + 1);
            bytes = size;
            continue;
        }
        end = i + 1;
        bytes += size;
    }
    return out;
}

void CloudCluster::presence_changes(const std::vector<PresenceEntry>& changes) {
    if (changes.empty()) return;
    for (auto [first, end] : runs(changes))
        tell(presence_topic, encode_presence(cluster_.node_name(), false, 0, 1, false,
                                             changes.data() + first, end - first));
}

void CloudCluster::presence_state(const std::vector<PresenceEntry>& online, bool ask_others) {
    auto parts = runs(online);
    for (std::uint64_t part = 0; part < parts.size(); ++part) {
        auto [first, end] = parts[part];
        tell(presence_topic, encode_presence(cluster_.node_name(), true, part, parts.size(),
                                             ask_others, online.data() + first, end - first));
    }
}

void CloudCluster::on_presence(std::string_view bytes) {
    auto notice = decode_presence(bytes);
    if (!notice) return log_dropped("presence");
    auto& origin = notice->origin;
    if (origin == cluster_.node_name()) return;
    if (!notice->whole) return local_.presence(origin, std::move(notice->entries), false);
    std::vector<PresenceEntry> state;
    {
        std::lock_guard lock(parts_mu_);
        auto drop = [&](auto it) {
            parts_bytes_ -= it->second.bytes;
            parts_.erase(it);
        };
        if (auto it = parts_.find(origin); it != parts_.end() && notice->part == 0) drop(it);
        auto it = parts_.find(origin);
        if (it == parts_.end()) {
            // Only a first part starts a state; a later one whose first was lost is dropped.
            if (notice->part != 0) return log_dropped("presence state (a part was lost)");
            // Only from a node of the cluster (names are what senders say they are): one that
            // left or never was would hold its place until a node_gone that never comes.
            if (!knows(origin)) return log_dropped("presence state (an unknown node)");
            auto now = std::chrono::steady_clock::now();
            std::erase_if(parts_, [&](const auto& p) {  // states whose parts stopped coming
                bool stale = now - p.second.last_part > state_parts_lifetime;
                if (stale) parts_bytes_ -= p.second.bytes;
                return stale;
            });
            if (parts_.size() >= max_states_gathered) return log_dropped("presence state");
            it = parts_.emplace(origin, Parts{0, notice->parts, {}, 0, now}).first;
        }
        auto& p = it->second;
        std::size_t bytes = 0;
        for (auto& e : notice->entries) bytes += entry_memory(e);
        if (p.next != notice->part || p.total != notice->parts ||
            p.entries.size() + notice->entries.size() > max_state_entries ||
            parts_bytes_ + bytes > max_state_bytes) {
            drop(it);
            return log_dropped("presence state (a part was lost, or it is too large)");
        }
        p.entries.insert(p.entries.end(), std::make_move_iterator(notice->entries.begin()),
                         std::make_move_iterator(notice->entries.end()));
        p.last_part = std::chrono::steady_clock::now();
        p.bytes += bytes;
        parts_bytes_ += bytes;
        if (++p.next < p.total) return;
        parts_bytes_ -= p.bytes;
        state = std::move(p.entries);
        parts_.erase(it);
    }
    local_.presence(origin, std::move(state), true);
    if (notice->ask_others) local_.send_state();
}

void CloudCluster::request_state(const std::string& node) {
    tell(state_request_topic, encode_state_request(cluster_.node_name(), node));
}

void CloudCluster::on_state_request(std::string_view bytes) {
    auto request = decode_state_request(bytes);
    if (!request) return log_dropped("presence state request");
    if (request->second == cluster_.node_name()) local_.send_state();
}

// Asked: [users]; answered: [entries, complete].
void CloudCluster::presences(std::vector<std::uint64_t> users,
                             std::function<void(Result<NodePresences>)> done) {
    ask_entries(cluster_, presences_topic, encode_ids(users), "answer to presences",
                "these users hold too many connections to list at once; follow fewer",
                std::move(done));
}

// Asked: [rooms]; answered: [entries, complete]. Each room is a question of its own, so a
// node's answer carries one room's members (as many as a room holds: max_room_members is at
// most max_entries_per_notice), and the answers are put together.
void CloudCluster::members(std::vector<std::string> rooms,
                           std::function<void(Result<NodePresences>)> done) {
    if (rooms.empty()) return done(NodePresences{});
    struct Gathered {
        std::mutex mu;
        std::size_t left = 0;
        NodePresences all;
        std::optional<Error> failed;
        std::function<void(Result<NodePresences>)> done;
    };
    auto gathered = std::make_shared<Gathered>();
    gathered->left = rooms.size();
    gathered->done = std::move(done);
    for (auto& room : rooms) {
        ask_entries(cluster_, members_topic, encode_rooms({room}), "answer to room members",
                    "a room has more members on one node than one answer of the cluster carries",
                    [gathered](Result<NodePresences> r) {
                        std::unique_lock lock(gathered->mu);
                        if (!r && !gathered->failed) gathered->failed = r.error();
                        if (r)
                            gathered->all.insert(gathered->all.end(),
                                                 std::make_move_iterator(r->begin()),
                                                 std::make_move_iterator(r->end()));
                        if (--gathered->left > 0) return;
                        lock.unlock();
                        if (gathered->failed) return gathered->done(*gathered->failed);
                        gathered->done(std::move(gathered->all));
                    });
    }
}

bool CloudCluster::knows(const std::string& node) const {
    for (auto& n : cluster_.nodes())
        if (n.name == node) return true;
    return false;
}

// [entries, complete]: as many as fit in a cluster message.
std::string CloudCluster::answer_entries(const std::vector<PresenceEntry>& here) const {
    auto fit = runs(here).front().second;
    return encode_entries_answer(here.data(), fit, fit == here.size());
}

std::string CloudCluster::on_presences(std::string_view bytes) {
    auto users = asked_users(bytes, "presences");
    if (!users) return {};
    return answer_entries(local_.presences(*users));
}

std::string CloudCluster::on_members(std::string_view bytes) {
    auto rooms = decode_rooms(bytes);
    if (!rooms) {
        log_dropped("room members question");
        return {};
    }
    return answer_entries(local_.members(*rooms));
}

}  // namespace hawser::cloud::detail
