// Notices and questions between the nodes' services (the cloud's revocations and pushes, an
// application's own): a notice is one publish every node receives; a question is one publish
// every node answers on the asker's reply subject, gathered until every node the registry
// knows has answered or the deadline passes. Handlers run on nats.c's threads; the asker's
// callback on an IO thread, as every application callback.
#include <spdlog/spdlog.h>

#include "cluster/cluster_impl.hpp"

namespace hawser {

namespace {

constexpr std::size_t max_asks = 1024;  // questions waiting for answers, on this node

bool valid_topic(std::string_view topic) {
    return detail::valid_node_name(topic);  // the same rule: one NATS subject token
}

std::string_view text(const Bytes& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}
std::span<const std::uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

void Cluster::Impl::on_notice(std::string_view subject, std::string_view data) {
    auto handler = notice_handlers.find(std::string(subjects.topic_of(subject)));
    if (handler == notice_handlers.end()) return;  // a topic this node has no service for
    try {
        handler->second(data);
    } catch (const std::exception& e) {
        spdlog::error("hawser cluster: the handler of notice '{}' threw: {}", handler->first,
                      e.what());
    } catch (...) {
        spdlog::error("hawser cluster: the handler of notice '{}' threw a non-standard exception",
                      handler->first);
    }
}

// A question: [origin node, id, body]; the answer goes to the origin: [this node, id, answer].
void Cluster::Impl::on_question(std::string_view subject, std::string_view data) {
    auto topic = subjects.topic_of(subject);
    auto frame = DataFrame::decode(data);
    if (!frame) return dropped("question: " + frame.error().message);
    auto origin = frame->read_string();
    auto id = frame->read_uint();
    auto body = frame->read_bytes();
    if (!origin || !id || !body || !detail::valid_node_name(*origin))
        return dropped("question: malformed");
    auto handler = question_handlers.find(std::string(topic));
    if (handler == question_handlers.end()) return;  // the asker waits for the others
    std::string answer;
    try {
        answer = handler->second(text(*body));
    } catch (const std::exception& e) {
        spdlog::error("hawser cluster: the handler of question '{}' threw: {}", handler->first,
                      e.what());
        return;
    } catch (...) {
        spdlog::error("hawser cluster: the handler of question '{}' threw a non-standard exception",
                      handler->first);
        return;
    }
    DataFrame reply;
    reply << name << *id << bytes(answer);
    // Not sent (over max_message_bytes, or NATS away): the asker goes on without this node's
    // answer at its timeout; this node counts and says why.
    if (auto r = publish(subjects.replies(*origin), reply.bytes()); !r)
        dropped("answer to question '" + std::string(topic) + "': " + r.error().message);
}

void Cluster::Impl::on_reply(std::string_view data) {
    auto frame = DataFrame::decode(data);
    if (!frame) return dropped("answer: " + frame.error().message);
    auto node = frame->read_string();
    auto id = frame->read_uint();
    auto answer = frame->read_bytes();
    if (!node || !id || !answer || !detail::valid_node_name(*node))
        return dropped("answer: malformed");
    std::optional<Asking> complete_now;
    {
        std::lock_guard lock(asks_mu);
        auto it = asks.find(*id);
        if (it == asks.end()) return;  // late: the question timed out
        // Only the nodes asked answer, each once: what else comes is not counted.
        if (!it->second.waiting.contains(*node)) return;
        it->second.answers.insert_or_assign(*node, std::string(text(*answer)));
        it->second.waiting.erase(*node);
        if (!it->second.waiting.empty()) return;
        complete_now = std::move(it->second);
        asks.erase(it);
    }
    complete(complete_now->loop,
             [a = std::move(*complete_now)]() mutable { a.done(std::move(a.answers)); });
}

void Cluster::Impl::ask(std::string_view topic, std::string body, Milliseconds timeout,
                        std::function<void(Result<Answers>)> done) {
    auto loop = caller_loop();
    auto fail = [&](Error e) {
        complete(loop, [done = std::move(done), e = std::move(e)] { done(e); });
    };
    if (!valid_topic(topic))
        return fail({Errc::invalid_argument, "a topic is 1 to 64 of letters, digits, '-', '_'"});
    if (body.size() > options.max_message_bytes)
        return fail({Errc::limit_exceeded, "the question is over max_message_bytes"});
    timeout = detail::bounded_wait(timeout);
    std::set<std::string> waiting{name};
    {
        std::lock_guard lock(mu);
        for (const auto& n : registry.nodes()) waiting.insert(n.name);
    }
    std::uint64_t id;
    {
        std::unique_lock lock(asks_mu);
        if (asks.size() >= max_asks) {
            lock.unlock();
            return fail({Errc::overloaded, "too many questions wait for answers"});
        }
        id = next_ask++;
        asks.emplace(id,
                     Asking{std::move(waiting), {}, Clock::now() + timeout, loop, std::move(done)});
    }
    poke();  // the cluster thread learns the new deadline
    DataFrame q;
    q << name << id << bytes(body);
    if (auto r = publish(subjects.question(topic), q.bytes()); !r) {
        std::optional<Asking> failed;
        {
            std::lock_guard lock(asks_mu);
            if (auto it = asks.find(id); it != asks.end()) {
                failed = std::move(it->second);
                asks.erase(it);
            }
        }
        if (failed) complete(loop, [d = std::move(failed->done), e = r.error()] { d(e); });
    }
}

void Cluster::Impl::expire_asks() {
    std::vector<Asking> due;
    auto now = Clock::now();
    {
        std::lock_guard lock(asks_mu);
        for (auto it = asks.begin(); it != asks.end();)
            if (it->second.deadline <= now) {
                due.push_back(std::move(it->second));
                it = asks.erase(it);
            } else {
                ++it;
            }
    }
    // The nodes that answered: a missing one left, is slow, or has no handler for the topic.
    for (auto& a : due)
        complete(a.loop, [a = std::move(a)]() mutable { a.done(std::move(a.answers)); });
}

std::optional<Cluster::Impl::Clock::time_point> Cluster::Impl::next_ask_deadline() {
    std::lock_guard lock(asks_mu);
    std::optional<Clock::time_point> first;
    for (auto& [_, a] : asks)
        if (!first || a.deadline < *first) first = a.deadline;
    return first;
}

void Cluster::Impl::fail_asks() {
    std::map<std::uint64_t, Asking> all;
    {
        std::lock_guard lock(asks_mu);
        all.swap(asks);
    }
    for (auto& [_, a] : all)
        complete(a.loop, [d = std::move(a.done)] {
            d(Error{Errc::cluster_unavailable, "the cluster stopped"});
        });
}

// --- the public side ---

void Cluster::on_notice(std::string topic, std::function<void(std::string_view)> handler) {
    if (!valid_topic(topic))
        throw std::invalid_argument("a notice topic is 1 to 64 of letters, digits, '-', '_'");
    impl_->notice_handlers[std::move(topic)] = std::move(handler);
}

void Cluster::on_node_joined(std::function<void(const std::string&)> handler) {
    impl_->node_joined_handlers.push_back(std::move(handler));
}

void Cluster::on_node_gone(std::function<void(const std::string&)> handler) {
    impl_->node_gone_handlers.push_back(std::move(handler));
}

void Cluster::on_notices_lost(std::function<void()> handler) {
    impl_->notices_lost_handlers.push_back(std::move(handler));
}

std::uint32_t Cluster::max_message_bytes() const {
    return impl_->options.max_message_bytes;
}

Result<void> Cluster::notify(std::string_view topic, std::string_view body) {
    if (!valid_topic(topic))
        return Error{Errc::invalid_argument, "a topic is 1 to 64 of letters, digits, '-', '_'"};
    if (body.size() > impl_->options.max_message_bytes)
        return Error{Errc::limit_exceeded, "the notice is over max_message_bytes"};
    return impl_->publish(impl_->subjects.notice(topic), body);
}

void Cluster::on_question(std::string topic, std::function<std::string(std::string_view)> answer) {
    if (!valid_topic(topic))
        throw std::invalid_argument("a question topic is 1 to 64 of letters, digits, '-', '_'");
    impl_->question_handlers[std::move(topic)] = std::move(answer);
}

void Cluster::start_ask(std::string_view topic, std::string body, Milliseconds timeout,
                        std::function<void(Result<std::map<std::string, std::string>>)> done) {
    impl_->ask(topic, std::move(body), timeout, std::move(done));
}

}  // namespace hawser
