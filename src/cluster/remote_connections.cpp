// Connections anywhere in the cluster: ClusterAddress, and send, call and find to a connection
// on any node. A request for another node is one NATS message to that node's `conn.<node>`
// subject; the node acts on its connection and answers on the requester's `answer.<node>`
// subject; the requester matches the answer to its waiting request by id, or fails it at its
// deadline (the cluster thread). Handlers run on nats.c's delivery thread; a call's reply is
// answered from the connection's IO thread.
#include <algorithm>
#include <charconv>

#include "cluster/cluster_impl.hpp"

namespace hawser {

using detail::RemoteAnswer;
using detail::RemoteRequest;

std::string ClusterAddress::to_string() const {
    return std::to_string(id) + "@" + node;
}

Result<ClusterAddress> ClusterAddress::parse(std::string_view text) {
    auto at = text.find('@');
    ClusterAddress a;
    if (at == std::string_view::npos || at == 0)
        return Error{Errc::invalid_argument, "a cluster address is <id>@<node>"};
    auto [end, ec] = std::from_chars(text.data(), text.data() + at, a.id);
    if (ec != std::errc() || end != text.data() + at || a.id == 0)
        return Error{Errc::invalid_argument, "a cluster address starts with a connection id"};
    a.node = text.substr(at + 1);
    if (!detail::valid_node_name(a.node))
        return Error{Errc::invalid_argument, "a cluster address ends with a node name"};
    return a;
}

// --- this node, asked by others ---

void Cluster::Impl::answer(const std::string& origin, RemoteAnswer a) {
    auto bytes = detail::encode_answer(a);
    if (bytes.size() > options.max_message_bytes)
        bytes = detail::encode_answer(
            {a.request, Errc::limit_exceeded, "the reply is over the cluster's max_message_bytes"});
    (void)publish(subjects.answers(origin), bytes);  // NATS away: the requester times out
}

void Cluster::Impl::on_request(std::string_view data) {
    auto r = detail::decode_request(data);
    if (!r) return dropped(r.error().message);
    count(counters.requests_served);
    auto conn = server.find(r->connection);
    if (!conn) {
        if (r->op != RemoteRequest::Op::send)
            answer(r->origin,
                   {r->request, Errc::not_found,
                    "no connection " + std::to_string(r->connection) + " on node " + name});
        return;
    }
    std::optional<DataFrame> frame;
    if (r->dataframe) {
        auto f = DataFrame::decode(r->argument, server.options().limits.dataframe);
        if (!f) {
            if (r->op == RemoteRequest::Op::call)
                answer(r->origin, {r->request, Errc::bad_payload, f.error().message});
            return dropped("request DataFrame: " + f.error().message);
        }
        frame = std::move(*f);
    }
    switch (r->op) {
        case RemoteRequest::Op::send:
            if (frame)
                (void)conn->send(r->command, *frame, r->compress);
            else
                (void)conn->send(r->command, std::move(r->argument), r->compress);
            return;
        case RemoteRequest::Op::find: {
            DataFrame presence;
            presence << Map{
                {"remote_address", conn->remote_address()},
                {"since_ms", std::int64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              conn->connected_since().time_since_epoch())
                                              .count())}};
            return answer(r->origin, {r->request, Errc::ok, presence.bytes()});
        }
        case RemoteRequest::Op::call: {
            CallOptions call;
            call.timeout = Milliseconds(r->timeout_ms);
            call.compress = r->compress;
            std::weak_ptr<Impl> weak = weak_from_this();
            auto reply = [weak, origin = r->origin, id = r->request](Errc code, std::string body) {
                if (auto impl = weak.lock()) impl->answer(origin, {id, code, std::move(body)});
            };
            if (frame)
                conn->call(
                    r->command, std::move(*frame),
                    [reply](Result<DataFrame> result) {
                        if (result) return reply(Errc::ok, result->bytes());
                        reply(result.error().code, result.error().message);
                    },
                    call);
            else
                conn->call(
                    r->command, std::move(r->argument),
                    [reply](Result<std::string> result) {
                        if (result) return reply(Errc::ok, std::move(*result));
                        reply(result.error().code, result.error().message);
                    },
                    call);
            return;
        }
    }
}

// --- this node, asking others ---

void Cluster::Impl::on_answer(std::string_view data) {
    auto a = detail::decode_answer(data);
    if (!a) return dropped(a.error().message);
    detail::PendingRequests::Done done;
    {
        std::lock_guard lock(requests_mu);
        done = requests.take(a->request);
    }
    if (done) done(std::move(*a));  // else: it timed out meanwhile
}

void Cluster::Impl::request(const ClusterAddress& to, RemoteRequest r, Milliseconds timeout,
                            std::function<void(RemoteAnswer)> done) {
    // Errors found at once complete before the call returns, on the caller's thread.
    auto fail = [&](Errc code, std::string why) { done({0, code, std::move(why)}); };
    if (!knows(to.node)) return fail(Errc::not_found, "no node " + to.node + " in the cluster");
    if (r.op != RemoteRequest::Op::find && (r.command.empty() || r.command.size() > 255))
        return fail(Errc::invalid_argument, "command names are 1 to 255 bytes");
    timeout = detail::bounded_wait(timeout);
    // What the answer, the deadline or stop() completes: the caller's callback, run on the
    // caller's IO thread (or any IO thread for a caller that is not on one).
    auto user = std::make_shared<std::function<void(RemoteAnswer)>>(std::move(done));
    detail::PendingRequests::Done posted = [this, loop = caller_loop(), user](RemoteAnswer a) {
        complete(loop, [user, a = std::move(a)]() mutable { (*user)(std::move(a)); });
    };
    std::optional<std::uint64_t> id;
    {
        std::lock_guard lock(requests_mu);
        id = requests.add(Clock::now() + timeout, to.node, posted);  // takes it only on success
    }
    if (!id)
        return (*user)({0, Errc::overloaded,
                        "too many requests to other nodes waiting (max_remote_requests)"});
    // Fails it at once, here, unless an answer, the deadline or stop() took it first.
    auto take_back = [&](Errc code, std::string why) {
        detail::PendingRequests::Done taken;
        {
            std::lock_guard lock(requests_mu);
            taken = requests.take(*id);
        }
        if (taken) (*user)({*id, code, std::move(why)});
    };
    // A node that left between the first look and the add found nothing to fail: look again.
    if (!knows(to.node)) return take_back(Errc::cluster_unavailable, "node " + to.node + " left");
    r.request = *id;
    r.connection = to.id;
    r.origin = name;
    r.timeout_ms = std::uint32_t(std::min<std::int64_t>(timeout.count(), UINT32_MAX));
    auto sent = publish(subjects.requests(to.node), detail::encode_request(r));
    if (!sent) return take_back(sent.error().code, sent.error().message);
    count(counters.requests_sent);
    poke();  // its deadline may be the earliest
}

void Cluster::Impl::expire_requests() {
    std::vector<detail::PendingRequests::Done> expired;
    {
        std::lock_guard lock(requests_mu);
        expired = requests.expire(Clock::now());
    }
    for (auto& done : expired)
        done({0, Errc::timeout, "no answer from the connection's node before the deadline"});
}

void Cluster::Impl::fail_requests_to(std::string_view node, std::uint64_t added_before) {
    std::vector<detail::PendingRequests::Done> waiting;
    {
        std::lock_guard lock(requests_mu);
        waiting = requests.take_node(node, added_before);
    }
    for (auto& done : waiting)
        done({0, Errc::cluster_unavailable,
              "the connection's node " + std::string(node) + " left the cluster"});
}

void Cluster::Impl::fail_requests() {
    std::vector<detail::PendingRequests::Done> waiting;
    {
        std::lock_guard lock(requests_mu);
        waiting = requests.take_all();
    }
    for (auto& done : waiting) done({0, Errc::cluster_unavailable, "this node left the cluster"});
}

// --- Cluster ---

ClusterAddress Cluster::address_of(ConnectionId local) const {
    return {impl_->name, local};
}

namespace {

Error no_connection(const ClusterAddress& a) {
    return Error{Errc::not_found, "no connection " + a.to_string()};
}

// A command's argument as it travels: a console argument as it is, a DataFrame as its bytes.
constexpr bool is_dataframe(const DataFrame&) {
    return true;
}
constexpr bool is_dataframe(const std::string&) {
    return false;
}
std::string argument_bytes(const DataFrame& argument) {
    return argument.bytes();
}
std::string argument_bytes(std::string&& argument) {
    return std::move(argument);
}

template <class Argument>
Result<void> send_to(Cluster::Impl& impl, const ClusterAddress& to, std::string_view command,
                     Argument&& argument, bool compress) {
    if (to.node == impl.name) {
        auto conn = impl.server.find(to.id);
        if (!conn) return no_connection(to);
        return conn->send(command, std::forward<Argument>(argument), compress);
    }
    if (command.empty() || command.size() > 255)
        return Error{Errc::invalid_argument, "command names are 1 to 255 bytes"};
    if (!impl.knows(to.node))
        return Error{Errc::not_found, "no node " + to.node + " in the cluster"};
    RemoteRequest r;
    r.op = RemoteRequest::Op::send;
    r.dataframe = is_dataframe(argument);
    r.compress = compress;
    r.connection = to.id;
    r.origin = impl.name;
    r.command = command;
    r.argument = argument_bytes(std::forward<Argument>(argument));
    if (auto sent = impl.publish(impl.subjects.requests(to.node), detail::encode_request(r)); !sent)
        return sent;
    Cluster::Impl::count(impl.counters.requests_sent);
    return {};
}

Milliseconds call_timeout(const Cluster::Impl& impl, const CallOptions& options) {
    return options.timeout.count() > 0 ? options.timeout : impl.server.options().timeouts.call;
}

// A call to a connection on any node; R is the reply's type, the argument's kind.
template <class R>
void call_to(Cluster::Impl& impl, const ClusterAddress& to, std::string_view command, R argument,
             std::function<void(Result<R>)> done, const CallOptions& options) {
    if (to.node == impl.name) {
        auto conn = impl.server.find(to.id);
        if (!conn) return done(no_connection(to));
        conn->call(command, std::move(argument), std::move(done), options);
        return;
    }
    RemoteRequest r{RemoteRequest::Op::call, is_dataframe(argument), options.compress};
    r.command = command;
    r.argument = argument_bytes(std::move(argument));
    auto limits = impl.server.options().limits.dataframe;
    impl.request(to, std::move(r), call_timeout(impl, options),
                 [done = std::move(done), limits](RemoteAnswer a) {
                     if (a.code != Errc::ok) return done(Error{a.code, std::move(a.body)});
                     if constexpr (std::is_same_v<R, DataFrame>)
                         done(DataFrame::decode(a.body, limits));
                     else
                         done(std::move(a.body));
                 });
}

}  // namespace

Result<void> Cluster::send(const ClusterAddress& to, std::string_view command, std::string argument,
                           bool compress) {
    return send_to(*impl_, to, command, std::move(argument), compress);
}

Result<void> Cluster::send(const ClusterAddress& to, std::string_view command,
                           const DataFrame& argument, bool compress) {
    return send_to(*impl_, to, command, argument, compress);
}

void Cluster::start_call(const ClusterAddress& to, std::string_view command, std::string argument,
                         std::function<void(Result<std::string>)> done, CallOptions options) {
    call_to(*impl_, to, command, std::move(argument), std::move(done), options);
}

void Cluster::start_call(const ClusterAddress& to, std::string_view command, DataFrame argument,
                         std::function<void(Result<DataFrame>)> done, CallOptions options) {
    call_to(*impl_, to, command, std::move(argument), std::move(done), options);
}

void Cluster::start_find(const ClusterAddress& of, std::function<void(Result<Presence>)> done,
                         Milliseconds timeout) {
    if (of.node == impl_->name) {
        auto conn = impl_->server.find(of.id);
        if (!conn) return done(no_connection(of));
        return done(Presence{of, conn->remote_address(), conn->connected_since()});
    }
    auto limits = impl_->server.options().limits.dataframe;
    impl_->request(
        of, RemoteRequest{RemoteRequest::Op::find}, timeout,
        [done = std::move(done), of, limits](RemoteAnswer a) -> void {
            if (a.code != Errc::ok) return done(Error{a.code, std::move(a.body)});
            auto bad = [&] {
                done(Error{Errc::bad_payload, "a presence answer that does not decode"});
            };
            auto frame = DataFrame::decode(a.body, limits);
            if (!frame) return bad();
            auto map = frame->read_map();
            if (!map) return bad();
            auto address = map->find("remote_address");
            auto since = map->find("since_ms");
            if (address == map->end() || !address->second.is<std::string>() || since == map->end())
                return bad();
            // MessagePack carries a positive integer as unsigned, or signed if small.
            std::int64_t ms;
            if (since->second.is<std::int64_t>())
                ms = since->second.as<std::int64_t>();
            else if (since->second.is<std::uint64_t>())
                ms = std::int64_t(since->second.as<std::uint64_t>());
            else
                return bad();
            done(Presence{of, address->second.as<std::string>(),
                          std::chrono::system_clock::time_point(std::chrono::milliseconds(ms))});
        });
}

}  // namespace hawser
