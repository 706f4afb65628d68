#include "cloud_messages.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>

#include "cli_reply.hpp"
#include "frame_json.hpp"
#include "hawser/cloud/cloud.hpp"

namespace hawser::app {

namespace {

using cloud::Cloud;

struct Received {
    std::uint64_t id = 0;
    std::string from, text;
};

// Messages pushed while the command runs, handed from the IO thread to the main thread.
struct Pushed {
    std::mutex mu;
    std::condition_variable arrived;
    std::deque<Received> queue;
    std::deque<std::string> presence;  // changes of presence and rooms, as printed
};

Pushed& pushed() {
    static Pushed p;
    return p;
}

// A text body as it is; any other as JSON.
std::string text_of(const Value& body) {
    if (body.is<std::string>()) return body.as<std::string>();
    DataFrame frame;
    frame << body;
    auto json = frame_to_json(std::move(frame));
    return json ? *json : "(a body that cannot be shown)";
}

void print(const Received& m) {
    std::printf("%llu %s: %s\n", static_cast<unsigned long long>(m.id), m.from.c_str(),
                m.text.c_str());
    std::fflush(stdout);
}

// An array of usernames, as cloud.who and cloud.follow take them.
DataFrame names_argument(const std::vector<std::string>& words) {
    Array names;
    for (auto& n : words) names.emplace_back(n);
    DataFrame arg;
    arg << Value(std::move(names));
    return arg;
}

// Prints what waits in the mailbox, oldest first; the highest id printed (0: none).
Result<std::uint64_t> print_inbox(const Connection& conn, std::chrono::milliseconds timeout,
                                  std::set<std::uint64_t>& seen) {
    std::uint64_t after = 0;
    for (;;) {
        DataFrame arg;
        arg << after;
        auto r = call(conn, Cloud::inbox_command, std::move(arg), timeout);
        if (!r) return r.error();
        auto page = r->get<Value>();
        bool more = r->get<bool>();
        for (auto& v : page.as<Array>()) {
            auto& m = v.as<Map>();
            Received got{number(m.at("id")), m.at("from").as<std::string>(), text_of(m.at("body"))};
            if (seen.insert(got.id).second) print(got);
            after = got.id;
        }
        if (!more) return after;
    }
}

Result<void> acknowledge(const Connection& conn, std::uint64_t up_to,
                         std::chrono::milliseconds timeout) {
    if (up_to == 0) return {};
    DataFrame arg;
    arg << up_to;
    auto r = call(conn, Cloud::ack_command, std::move(arg), timeout);
    if (!r) return r.error();
    return {};
}

}  // namespace

void wake_listener() {
    auto& p = pushed();
    std::lock_guard lock(p.mu);
    p.arrived.notify_all();
}

void prepare_listen(Commands& commands) {
    commands.direct_dataframe(std::string(Cloud::message_push), [](const Request&, DataFrame& df) {
        Received m;
        m.id = df.get<std::uint64_t>();
        m.from = df.get<std::string>();
        m.text = text_of(df.get<Value>());
        auto& p = pushed();
        std::lock_guard lock(p.mu);
        p.queue.push_back(std::move(m));
        p.arrived.notify_all();
    });
    commands.direct_dataframe(std::string(Cloud::presence_push), [](const Request&, DataFrame& df) {
        auto name = df.get<std::string>();
        bool online = df.get<bool>();
        auto line = name + (online ? " online " : " offline ") + df.get<std::string>();
        auto& p = pushed();
        std::lock_guard lock(p.mu);
        p.presence.push_back(std::move(line));
        p.arrived.notify_all();
    });
    commands.direct_dataframe(std::string(Cloud::room_push), [](const Request&, DataFrame& df) {
        auto room = df.get<std::string>();
        auto name = df.get<std::string>();
        bool joined = df.get<bool>();
        auto line = room + " " + name + (joined ? " joined " : " left ") + df.get<std::string>();
        auto& p = pushed();
        std::lock_guard lock(p.mu);
        p.presence.push_back(std::move(line));
        p.arrived.notify_all();
    });
}

namespace {

// Prints each change of presence or rooms as it comes, until `count` of them (0: never).
int print_changes(const Connection& conn, std::size_t count) {
    std::fflush(stdout);
    auto& p = pushed();
    for (std::size_t printed = 0; count == 0 || printed < count;) {
        std::string line;
        {
            std::unique_lock lock(p.mu);
            p.arrived.wait(lock, [&] { return !p.presence.empty() || !conn.connected(); });
            if (p.presence.empty())
                return call_error({Errc::disconnected, "the connection closed"});
            line = std::move(p.presence.front());
            p.presence.pop_front();
        }
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
        ++printed;
    }
    return exit_ok;
}

// follow: who is online now, then each change until `count` of them (0: never).
int follow(const Connection& conn, const MessageCommand& c, std::chrono::milliseconds timeout) {
    auto r = call(conn, Cloud::follow_command, names_argument(c.words), timeout);
    if (!r) return call_error(r.error());
    auto now = r->get<Value>();
    for (auto& n : c.words) {
        auto& presences = now.as<Map>().at(n);
        if (!presences.is<Array>())
            std::printf("%s: no such user\n", n.c_str());
        else if (presences.as<Array>().empty())
            std::printf("%s offline\n", n.c_str());
        for (auto& p : presences.is<Array>() ? presences.as<Array>() : Array{})
            std::printf("%s online %s\n", n.c_str(), p.as<std::string>().c_str());
    }
    return print_changes(conn, c.count);
}

// join: who is in each room now ("ROOM NAME PRESENCE"), then each member that joins or leaves
// ("ROOM NAME joined|left PRESENCE") until `count` of them.
int join(const Connection& conn, const MessageCommand& c, std::chrono::milliseconds timeout) {
    auto r = call(conn, Cloud::join_command, names_argument(c.words), timeout);
    if (!r) return call_error(r.error());
    auto now = r->get<Value>();
    for (auto& [room, members] : now.as<Map>())
        for (auto& m : members.is<Array>() ? members.as<Array>() : Array{})
            std::printf("%s %s %s\n", room.c_str(), m.as<Array>().at(0).as<std::string>().c_str(),
                        m.as<Array>().at(1).as<std::string>().c_str());
    return print_changes(conn, c.count);
}

}  // namespace

int run_message_command(const Connection& conn, const MessageCommand& c,
                        std::chrono::milliseconds timeout) {
    if (c.verb == "message") {
        DataFrame arg;
        arg << c.words.at(0) << c.words.at(1);
        auto r = call(conn, Cloud::send_command, std::move(arg), timeout);
        if (!r) return call_error(r.error());
        std::printf("sent as message %llu\n",
                    static_cast<unsigned long long>(r->get<std::uint64_t>()));
        return exit_ok;
    }
    if (c.verb == "follow") return follow(conn, c, timeout);
    if (c.verb == "join") return join(conn, c, timeout);
    if (c.verb == "who") {
        auto r = call(conn, Cloud::who_command, names_argument(c.words), timeout);
        if (!r) return call_error(r.error());
        auto online = r->get<Value>();
        for (auto& n : c.words)
            std::printf("%s %s\n", n.c_str(),
                        online.as<Map>().at(n).as<bool>() ? "online" : "offline");
        return exit_ok;
    }
    // inbox and listen: what waits first; listen then what arrives (pushes that raced the
    // read are printed once, by id).
    std::set<std::uint64_t> seen;
    auto last = print_inbox(conn, timeout, seen);
    if (!last) return call_error(last.error());
    std::uint64_t highest = *last;
    if (!c.keep)
        if (auto r = acknowledge(conn, highest, timeout); !r) return call_error(r.error());
    if (c.verb != "listen") return exit_ok;
    auto& p = pushed();
    while (c.count == 0 || seen.size() < c.count) {
        std::deque<Received> batch;
        {
            std::unique_lock lock(p.mu);
            p.arrived.wait(lock, [&] { return !p.queue.empty() || !conn.connected(); });
            if (p.queue.empty()) return call_error({Errc::disconnected, "the connection closed"});
            batch.swap(p.queue);
        }
        for (auto& m : batch)
            if (seen.insert(m.id).second) print(m);
        // A message stored before one pushed here may still be on its way: it is in the
        // mailbox, so a read shows it before the acknowledgement covers it.
        auto again = print_inbox(conn, timeout, seen);
        if (!again) return call_error(again.error());
        highest = std::max({highest, *again, batch.back().id});
        if (!c.keep)
            if (auto r = acknowledge(conn, highest, timeout); !r) return call_error(r.error());
    }
    return exit_ok;
}

}  // namespace hawser::app
