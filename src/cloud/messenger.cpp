#include "cloud/messenger.hpp"

#include <algorithm>
#include <chrono>

#include "cloud/signed_in.hpp"
#include "cloud/unix_ms.hpp"
#include "cloud/weak_command.hpp"

namespace hawser::cloud::detail {

namespace {

constexpr std::size_t inbox_page = 100;             // messages per cloud.inbox reply, at most
constexpr std::size_t inbox_page_bytes = 4u << 20;  // ... and about this many bytes
constexpr std::size_t max_who_names = 100;

const SignedIn& me(const Request& req) {
    return req.connection().service_context<SignedIn>();
}

}  // namespace

Messenger::Messenger(std::shared_ptr<Jobs> jobs, const CloudOptions& options,
                     std::unique_ptr<Mailbox> mailbox, Directory directory)
    : jobs_(std::move(jobs)),
      options_(options),
      mailbox_(std::move(mailbox)),
      directory_(std::move(directory)),
      sends_per_user_(options.messages_per_minute, std::chrono::minutes(1), options.max_tracked) {}

Result<std::shared_ptr<Messenger>> Messenger::open(zdb::Store& store, std::shared_ptr<Jobs> jobs,
                                                   const CloudOptions& options,
                                                   Directory directory) {
    auto mailbox = Mailbox::open(store, options.database_prefix + ".messages");
    if (!mailbox) return mailbox.error();
    return std::make_shared<Messenger>(std::move(jobs), options, std::move(*mailbox),
                                       std::move(directory));
}

void Messenger::close() {
    mailbox_.reset();
}

Result<void> Messenger::remove_all(std::uint64_t user) {
    return mailbox_->remove_all(user);
}

void Messenger::add_commands(Commands& commands) {
    // Not public: the login gate lets them run only for a signed-in caller.
    std::weak_ptr<Messenger> weak = weak_from_this();
    add_weak_command(commands, weak, Cloud::send_command, &Messenger::do_send);
    add_weak_command(commands, weak, Cloud::inbox_command, &Messenger::do_inbox);
    add_weak_command(commands, weak, Cloud::ack_command, &Messenger::do_ack);
    add_weak_command(commands, weak, Cloud::who_command, &Messenger::do_who);
}

void Messenger::do_send(const Request& req, DataFrame arg, Reply reply) {
    auto to = arg.read_string();
    if (!to) return reply.fail(Errc::invalid_argument, "expected the recipient's name");
    if (!Cloud::valid_username(*to)) return reply.fail(Errc::not_found, "no such user");
    auto body = arg.read_value();
    if (!body) return reply.fail(Errc::invalid_argument, "expected the message's body");
    DataFrame sized;
    sized << *body;
    if (sized.bytes().size() > options_.max_message_bytes)
        return reply.fail(
            Errc::invalid_argument,
            "a message is at most " + std::to_string(options_.max_message_bytes) + " bytes");
    const auto& sender = me(req);
    if (!sends_per_user_.try_count(std::to_string(sender.user), AttemptLimiter::Clock::now()))
        return reply.fail(Errc::rate_limited, "too many messages; wait a minute");
    Message m;
    m.from = sender.user;
    m.from_name = sender.name;
    m.body = std::move(*body);
    jobs_->post_for(
        reply, [self = shared_from_this(), to = std::move(*to), m = std::move(m), reply]() mutable {
            auto recipient = self->directory_.find_user(to);
            if (!recipient) return reply.fail(recipient.error().code, recipient.error().message);
            if (!*recipient) return reply.fail(Errc::not_found, "no such user: '" + to + "'");
            m.to = (*recipient)->first;
            m.sent_ms = unix_ms();
            m.expires_ms = m.sent_ms + self->options_.message_lifetime.count();
            auto id = self->mailbox_->append(m, self->options_.max_queued_messages, m.sent_ms,
                                             [&] { return self->directory_.account_exists(m.to); });
            if (!id) return reply.fail(id.error().code, id.error().message);
            m.id = *id;
            self->sent_.fetch_add(1);
            self->push(m);
            DataFrame out;
            out << *id;
            reply.reply(std::move(out));
        });
}

// To every connection signed in as the recipient on this node, each on its own IO thread,
// where it is checked again: it may have logged out or in as someone else meanwhile; and to
// the other nodes, which do the same. The mailbox keeps the message until it is acknowledged,
// so a push that finds the connection gone, or behind on what it was sent (congested), or a
// node that NATS did not reach, loses nothing by being skipped.
void Messenger::push(const Message& m) {
    DataFrame frame;
    frame << m.id << m.from_name << m.body << m.sent_ms;
    push_here(m.to, frame);
    if (cluster_) cluster_->push(m.to, frame);
}

void Messenger::push_here(std::uint64_t to, const DataFrame& message) {
    auto connections = directory_.connections_of(to);
    if (connections.empty()) return;
    auto frame = std::make_shared<const DataFrame>(message);
    for (auto id : connections)
        jobs_->with_connection(id, [self = shared_from_this(), frame, to](const Connection& c) {
            auto& them = c.service_context<SignedIn>();
            if (them.user != to || !them.active() || c.congested()) return;
            if (c.send(Cloud::message_push, *frame)) self->pushed_.fetch_add(1);
        });
}

void Messenger::do_inbox(const Request& req, DataFrame arg, Reply reply) {
    std::uint64_t after = 0;
    if (!arg.at_end()) {
        auto a = arg.read_uint();
        if (!a) return reply.fail(Errc::invalid_argument, "expected the id to read after");
        after = *a;
    }
    jobs_->post_for(reply, [self = shared_from_this(), user = me(req).user, after, reply] {
        bool more = false;
        auto page = self->mailbox_->read(user, after, inbox_page, unix_ms(), more);
        if (!page) return reply.fail(page.error().code, page.error().message);
        Array list;
        std::size_t bytes = 0;
        for (auto& m : *page) {
            if (bytes >= inbox_page_bytes) {  // the rest in the next page
                more = true;
                break;
            }
            DataFrame sized;
            sized << m.body;
            bytes += sized.bytes().size() + 64;
            list.emplace_back(m.to_map());
        }
        DataFrame out;
        out << Value(std::move(list)) << more;
        reply.reply(std::move(out));
    });
}

void Messenger::do_ack(const Request& req, DataFrame arg, Reply reply) {
    auto up_to = arg.read_uint();
    if (!up_to) return reply.fail(Errc::invalid_argument, "expected a message id");
    jobs_->post_for(reply, [self = shared_from_this(), user = me(req).user, up_to = *up_to, reply] {
        auto removed = self->mailbox_->acknowledge(user, up_to);
        if (!removed) return reply.fail(removed.error().code, removed.error().message);
        DataFrame out;
        out << *removed;
        reply.reply(std::move(out));
    });
}

void Messenger::do_who(const Request& req, DataFrame arg, Reply reply) {
    auto names = arg.read_value();
    if (!names || !names->is<Array>() || names->as<Array>().size() > max_who_names)
        return reply.fail(Errc::invalid_argument, "expected an array of at most " +
                                                      std::to_string(max_who_names) + " usernames");
    std::vector<std::string> asked;
    for (auto& v : names->as<Array>()) {
        if (!v.is<std::string>())
            return reply.fail(Errc::invalid_argument, "usernames are strings");
        asked.push_back(v.as<std::string>());
    }
    // Each name is a look-up in the store: asking counts against the sender's message rate.
    if (!sends_per_user_.try_count(std::to_string(me(req).user), AttemptLimiter::Clock::now()))
        return reply.fail(Errc::rate_limited, "too many requests; wait a minute");
    jobs_->post_for(reply, [self = shared_from_this(), asked = std::move(asked), reply] {
        std::vector<std::pair<std::string, std::optional<std::uint64_t>>> users;
        for (auto& name : asked) {
            auto user = self->directory_.find_user(name);
            if (!user) return reply.fail(user.error().code, user.error().message);
            // An unknown name is simply not online.
            users.emplace_back(name, *user ? std::optional((*user)->first) : std::nullopt);
        }
        auto answer = [reply, users](const std::function<bool(std::uint64_t)>& online) {
            Map out;
            for (auto& [name, id] : users) out.insert_or_assign(name, Value(id && online(*id)));
            DataFrame frame;
            frame << Value(std::move(out));
            reply.reply(std::move(frame));
        };
        auto here = [self](std::uint64_t id) {
            return !self->directory_.connections_of(id).empty();
        };
        if (!self->cluster_) return answer(here);
        std::vector<std::uint64_t> ids;
        for (auto& [_, id] : users)
            if (id) ids.push_back(*id);
        // Every node says which of them it holds; without NATS, this node's answer stands.
        // This node's own users count whether or not its own answer came back in time.
        self->cluster_->who(std::move(ids), [answer, here](Result<std::vector<std::uint64_t>> r) {
            if (!r) return answer(here);
            answer([&](std::uint64_t id) {
                return std::binary_search(r->begin(), r->end(), id) || here(id);
            });
        });
    });
}

}  // namespace hawser::cloud::detail
