// Cluster (see include/hawser/cluster.hpp): options, construction (the commands and connection
// hooks it gives the server), start and stop of the NATS links and the cluster thread, and the
// callbacks it posts to the server's IO threads (cluster_impl.hpp says who runs where).
// Membership and routing are in membership.cpp.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>
#include <stdexcept>

#include "cluster/cluster_impl.hpp"
#include "hawser/runtime.hpp"
#include "rpc/address.hpp"
#include "rpc/host.hpp"

namespace hawser {

Result<void> Cluster::validate(const ClusterOptions& options) {
    auto bad = [](std::string what) { return Error{Errc::invalid_argument, "cluster: " + what}; };
    if (options.nats_urls.empty()) return bad("nats_urls is empty");
    for (const auto& url : options.nats_urls)
        if (!detail::NatsLink::url_parses(url))
            return bad("nats_urls: '" + url.substr(0, 80) +
                       "' is not a NATS URL (nats://host:port)");
    if (!options.node_name.empty() && !detail::valid_node_name(options.node_name))
        return bad("node_name '" + options.node_name.substr(0, 80) +
                   "': 1 to 64 letters, digits, '-' or '_'");
    // The prefix is one or more subject tokens.
    const auto& p = options.subject_prefix;
    if (p.empty() || p.size() > 64 || p.front() == '.' || p.back() == '.' ||
        p.find("..") != std::string::npos)
        return bad("subject_prefix '" + p.substr(0, 80) + "' is not a NATS subject");
    for (char c : p)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            return bad("subject_prefix '" + p.substr(0, 80) + "' is not a NATS subject");
    if (options.report_interval.count() <= 0 || options.report_interval > detail::max_report_period)
        return bad("report_interval must be from 1 ms to an hour");
    if (options.node_expiry < 2 * options.report_interval)
        return bad("node_expiry must be at least two report intervals");
    if (auto h = options.reports_heard_per_second; h != 0 && !(h >= 0.1 && h <= 1e6))
        return bad("reports_heard_per_second must be 0 (no limit) or from 0.1 to 1000000");
    if (options.max_message_bytes < 1024) return bad("max_message_bytes must be at least 1024");
    if (options.max_publish_queue_bytes < 1024)
        return bad("max_publish_queue_bytes must be at least 1024");
    if (options.max_remote_requests == 0) return bad("max_remote_requests must be at least 1");
    if (options.interest_batch.count() <= 0 || options.interest_batch > 10s)
        return bad("interest_batch must be between 1 ms and 10 s");
    for (const auto& prefix : options.client_channel_prefixes)
        if (prefix.size() > 128) return bad("client_channel_prefixes: at most 128 bytes each");
    if (options.nats_reconnect_wait.count() <= 0)
        return bad("nats_reconnect_wait must be positive");
    for (auto [name, deadline] :
         {std::pair{"nats_write_deadline", options.nats_write_deadline},
          std::pair{"channel_write_deadline", options.channel_write_deadline}})
        if (deadline < 100ms || deadline > 1min)  // stop() may wait for it
            return bad(std::string(name) + " must be from 100 ms to 1 minute");
    for (const auto& e : options.public_endpoints)
        if (auto hp = detail::parse_host_port(e); !hp)
            return bad("public_endpoints: " + hp.error().message);
    int auth = !options.nats_user.empty() + !options.nats_token.empty() +
               !options.nats_nkey.empty() + !options.nats_credentials_file.empty();
    if (auth > 1)
        return bad("set one of nats_user, nats_token, nats_nkey and nats_credentials_file");
    if (options.nats_nkey.empty() != options.nats_nkey_seed_file.empty())
        return bad("nats_nkey and nats_nkey_seed_file go together");
    return {};
}

void Cluster::Impl::nats_error(bool slow_consumer, const std::string& what) {
    // A slow consumer reports once per drop burst, maybe thousands a second: counted always,
    // logged at most once a second.
    if (slow_consumer) count(counters.slow_consumers);
    auto now = Clock::now().time_since_epoch().count();
    auto before = last_nats_log.load();
    if (now - before > 1'000'000'000 && last_nats_log.compare_exchange_strong(before, now))
        spdlog::warn("hawser cluster: {}", what);
}

void Cluster::Impl::dropped(std::string_view why) {
    // A peer can send garbage at will: counted always, logged at most once a second.
    counters.dropped.fetch_add(1, std::memory_order_relaxed);
    static std::atomic<std::int64_t> last_log{0};
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto before = last_log.load();
    if (now - before > 1'000'000'000 && last_log.compare_exchange_strong(before, now))
        spdlog::warn("hawser cluster: dropped a message: {}", why);
}

// --- Cluster ---

Cluster::Cluster(Server& server, ClusterOptions options)
    : impl_(std::make_shared<Impl>(server, std::move(options))) {
    if (auto r = validate(impl_->options); !r) throw std::invalid_argument(r.error().message);
    impl_->name = impl_->options.node_name;
    if (impl_->name.empty()) {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        std::string h;
        for (char c : std::string(host))
            if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') h += c;
        impl_->name = (h.empty() ? "node" : h.substr(0, 40)) + "-" + std::to_string(getpid());
    }
    // Answered by every node, from its registry: a DataFrame holding one map.
    std::weak_ptr<Impl> weak = impl_;
    server.commands().dataframe(
        std::string(route_command),
        [weak](const Request&, DataFrame, Responder<DataFrame> r) {
            auto impl = weak.lock();
            if (!impl) return r.fail(Errc::cluster_unavailable, "this node left the cluster");
            auto node = impl->route();
            if (!node) return r.fail(node.error().code, node.error().message);
            Array endpoints;
            for (auto& e : node->endpoints) endpoints.emplace_back(e);
            DataFrame reply;
            reply << Map{{"node", node->name},
                         {"here", impl->name},
                         {"endpoints", std::move(endpoints)},
                         {"public_key", node->public_key}};
            r.reply(std::move(reply));
        },
        CommandOptions{.public_access = true});  // clients are routed before they log in
    // Redirects of new connections, and channels left when a connection closes.
    detail::Host::ServiceHooks hooks;
    hooks.redirect = [weak]() -> std::optional<std::string> {
        auto impl = weak.lock();
        return impl ? impl->redirect_for_new_connection() : std::nullopt;
    };
    hooks.closed = [weak](ConnectionId id) {
        if (auto impl = weak.lock()) impl->connection_closed(id);
    };
    detail::host_of(server).services.push_back(std::move(hooks));
    impl_->host = detail::host_of(server).shared_from_this();
    impl_->register_channel_commands();
}

Cluster::~Cluster() {
    stop();
}

Result<void> Cluster::start() {
    auto& impl = *impl_;
    {
        std::lock_guard lock(impl.mu);
        if (impl.started || impl.thread.joinable()) return {};
        if (impl.stopping) return Error{Errc::invalid_argument, "cluster: stopped; make a new one"};
        if (impl.server.ports().empty())
            return Error{Errc::invalid_argument, "cluster: start the server first"};
        if (auto r = impl.fill_self(); !r) return r;
        impl.registry.update(impl.self, std::chrono::steady_clock::now(), impl.run_id);
    }
    impl.nats_given_up = false;  // a start that failed may have seen it
    std::weak_ptr<Impl> weak = impl_;
    // Channels on a connection of their own, delivered by nats.c's shared thread; each
    // channel subscription holds less (there may be thousands). Opened first: if it cannot
    // be, the membership link never comes up to be torn down again.
    detail::NatsLink::Events channel_events;
    channel_events.connected = [weak] {
        if (auto impl = weak.lock())
            spdlog::info("hawser cluster: node {} connected to NATS (channels)", impl->name);
    };
    channel_events.disconnected = [weak](std::string why) {
        auto impl = weak.lock();
        if (!impl) return;
        {
            std::lock_guard lock(impl->mu);
            if (impl->stopping) return;  // our own close
        }
        impl->counters.channel_disconnects.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("hawser cluster: node {} lost NATS for channels ({}); reconnecting",
                     impl->name, why.empty() ? "connection closed" : why);
    };
    channel_events.error = [weak](bool slow_consumer, std::string what) {
        if (auto impl = weak.lock()) impl->nats_error(slow_consumer, "NATS (channels): " + what);
    };
    // nats.c gave a link up for good: said once, with NATS's reason and what follows.
    auto given_up = [weak](const char* connection, const char* meaning) {
        return [weak, connection, meaning](std::string why) {
            auto impl = weak.lock();
            if (!impl) return;
            impl->nats_given_up = true;
            spdlog::error("hawser cluster: node {}: NATS closed the connection{} for good ({}); {}",
                          impl->name, connection, why, meaning);
        };
    };
    channel_events.closed = given_up(
        " for channels", "channel subscriptions on this node take no effect until it is restarted");
    auto channel_link = detail::NatsLink::open(
        impl.options, "hawser-" + impl.name + "-channels", std::move(channel_events),
        impl.counters.publishes_lost,
        {detail::NatsLink::Delivery::shared, detail::NatsPending{4096, 4 << 20},
         impl.options.channel_write_deadline});
    if (!channel_link) return channel_link.error();

    detail::NatsLink::Events events;
    events.connected = [weak] {
        auto impl = weak.lock();
        if (!impl) return;
        impl->counters.reconnects.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("hawser cluster: node {} connected to NATS", impl->name);
        {
            std::lock_guard lock(impl->mu);
            impl->report_now = true;  // the others learn of this node now, not in a second
            impl->wake.notify_all();
        }
        impl->notices_lost();
    };
    events.disconnected = [weak](std::string why) {
        auto impl = weak.lock();
        if (!impl) return;
        {
            std::lock_guard lock(impl->mu);
            if (impl->stopping) return;  // our own close
        }
        impl->counters.disconnects.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("hawser cluster: node {} lost NATS ({}); serving locally, reconnecting",
                     impl->name, why.empty() ? "connection closed" : why);
    };
    events.error = [weak](bool slow_consumer, std::string what) {
        auto impl = weak.lock();
        if (!impl) return;
        impl->nats_error(slow_consumer, "NATS: " + what);
        if (slow_consumer) impl->notices_dropped();  // notices or answers for this node
    };
    events.closed =
        given_up("", "serving locally, outside the cluster, until the node is restarted");
    events.caught_up = [weak] {  // this node's notices were refused while NATS fell behind
        if (auto impl = weak.lock()) impl->notices_dropped();
    };
    auto link = detail::NatsLink::open(impl.options, "hawser-" + impl.name, std::move(events),
                                       impl.counters.publishes_lost,
                                       {.write_deadline = impl.options.nats_write_deadline});
    if (!link) return link.error();
    // The handlers use the Impl, which outlives the link: stop() destroys the link first.
    auto on_report = [&impl](std::string_view subject, std::string_view data) {
        impl.on_report(subject, data);
    };
    if (auto r = (*link)->subscribe(impl.subjects.nodes, on_report); !r) return r.error();
    auto on_broadcast = [&impl](std::string_view, std::string_view data) {
        impl.on_broadcast(data);
    };
    if (auto r = (*link)->subscribe(impl.subjects.broadcast, on_broadcast); !r) return r.error();
    auto on_request = [&impl](std::string_view, std::string_view data) { impl.on_request(data); };
    if (auto r = (*link)->subscribe(impl.subjects.requests(impl.name), on_request); !r)
        return r.error();
    auto on_answer = [&impl](std::string_view, std::string_view data) { impl.on_answer(data); };
    if (auto r = (*link)->subscribe(impl.subjects.answers(impl.name), on_answer); !r)
        return r.error();
    if (!impl.notice_handlers.empty()) {
        auto on_notice = [&impl](std::string_view subject, std::string_view data) {
            impl.on_notice(subject, data);
        };
        if (auto r = (*link)->subscribe(impl.subjects.notices(), on_notice); !r) return r.error();
    }
    if (!impl.question_handlers.empty()) {
        auto on_question = [&impl](std::string_view subject, std::string_view data) {
            impl.on_question(subject, data);
        };
        if (auto r = (*link)->subscribe(impl.subjects.questions(), on_question); !r)
            return r.error();
    }
    // Published on the channel link behind its interest; received here, on a delivery thread
    // of its own, so that a channel backlog does not hold up confirmations.
    auto on_marker = [&impl](std::string_view, std::string_view data) { impl.on_marker(data); };
    if (auto r = (*link)->subscribe(impl.subjects.marker(impl.name), on_marker); !r)
        return r.error();
    auto on_reply = [&impl](std::string_view, std::string_view data) { impl.on_reply(data); };
    if (auto r = (*link)->subscribe(impl.subjects.replies(impl.name), on_reply); !r)
        return r.error();
    // When NATS is there, the server has the subscriptions before start() returns: whatever
    // is published after that reaches this node.
    (*link)->flush(std::chrono::seconds(2));
    // Refused for good already (wrong credentials say so at the second try): not started.
    for (auto* l : {link->get(), channel_link->get()})
        if (l->closed())
            return Error{Errc::cluster_unavailable,
                         "NATS closed this node's connection for good: " + l->why_closed()};
    {
        std::unique_lock lock(impl.link_mu);
        impl.link = std::move(*link);
        impl.channel_link = std::move(*channel_link);
    }
    {
        std::lock_guard lock(impl.mu);
        impl.started = true;
    }
    impl.thread = std::thread([&impl] { impl.run(); });
    // A first connect inside open() came before the link could publish: the hooks run again.
    impl.notices_lost();
    spdlog::info("hawser cluster: node {} joining over {} (endpoints {})", impl.name,
                 fmt::join(impl.options.nats_urls, ","), fmt::join(impl.self.endpoints, ","));
    return {};
}

void Cluster::stop() {
    auto& impl = *impl_;
    bool was_started;
    {
        std::lock_guard lock(impl.mu);
        if (impl.stopping) return;
        impl.stopping = true;
        was_started = impl.started;
        impl.wake.notify_all();
    }
    if (impl.thread.joinable()) impl.thread.join();
    std::unique_ptr<detail::NatsLink> link, channel_link;
    {
        if (was_started) impl.report(true);  // the others drop this node now, not at expiry
        std::unique_lock lock(impl.link_mu);
        link = std::move(impl.link);
        channel_link = std::move(impl.channel_link);
    }
    // What was queued goes out first: both links within the half second (what a NATS that does
    // not read has not taken by then is lost; closing then takes each link up to a second).
    auto flush_by = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    for (auto* l : {link.get(), channel_link.get()}) {
        if (!l) continue;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            flush_by - std::chrono::steady_clock::now());
        if (left.count() > 0) l->flush(left);
    }
    channel_link.reset();  // each returns once no NATS handler of its runs
    link.reset();
    impl.fail_requests();
    impl.fail_asks();
    impl.fail_confirmations({Errc::cluster_unavailable, "this node left the cluster"});
    // No callback of this cluster runs after stop() returns (unless it is called on an IO
    // thread, which cannot wait for its own loop).
    impl.wait_for_callbacks();
}

void Cluster::Impl::complete(std::size_t loop, std::function<void()> f) {
    // Counted from here until the closure is gone, run or dropped with its loop.
    class Ticket {
      public:
        explicit Ticket(std::shared_ptr<Inflight> in) : in_(std::move(in)) {
            std::lock_guard lock(in_->mu);
            ++in_->count;
        }
        Ticket(const Ticket&) = delete;
        Ticket& operator=(const Ticket&) = delete;
        ~Ticket() {
            std::lock_guard lock(in_->mu);
            if (--in_->count == 0) in_->cv.notify_all();
        }

      private:
        std::shared_ptr<Inflight> in_;
    };
    auto ticket = std::make_shared<Ticket>(inflight);
    host->post_user(loop, "cluster callback", [ticket, f = std::move(f)] { f(); });
}

void Cluster::Impl::wait_for_callbacks() {
    if (Runtime::on_io_thread()) return;
    std::unique_lock lock(inflight->mu);
    inflight->cv.wait(lock, [&] { return inflight->count == 0; });
}

const std::string& Cluster::node_name() const {
    return impl_->name;
}

bool Cluster::connected() const {
    std::shared_lock lock(impl_->link_mu);
    return impl_->link && impl_->link->connected() && impl_->channel_link->connected();
}

ClusterStats Cluster::stats() const {
    const auto& c = impl_->counters;
    auto get = [](const std::atomic<std::uint64_t>& a) {
        return a.load(std::memory_order_relaxed);
    };
    ClusterStats s;
    s.reports_sent = get(c.reports_sent);
    s.reports_received = get(c.reports_received);
    s.broadcasts_sent = get(c.broadcasts_sent);
    s.broadcasts_received = get(c.broadcasts_received);
    s.dropped_messages = get(c.dropped);
    s.routes_answered = get(c.routes);
    s.nats_disconnects = get(c.disconnects);
    s.nats_reconnects = get(c.reconnects);
    s.nats_channel_disconnects = get(c.channel_disconnects);
    s.redirects = get(c.redirects);
    s.remote_requests_sent = get(c.requests_sent);
    s.remote_requests_served = get(c.requests_served);
    s.publications_sent = get(c.publications_sent);
    s.publications_received = get(c.publications_received);
    s.deliveries = get(c.deliveries);
    s.deliveries_skipped = get(c.deliveries_skipped);
    s.channel_subscriptions = get(c.channel_subscriptions);
    s.interest_changes = get(c.interest_changes);
    s.interest_retries = get(c.interest_retries);
    s.name_clashes = get(c.name_clashes);
    s.slow_consumer_events = get(c.slow_consumers);
    s.publishes_lost = get(c.publishes_lost);
    std::shared_lock lock(impl_->link_mu);
    for (const auto* l : {impl_->link.get(), impl_->channel_link.get()})
        if (l) s.publish_queue_bytes += l->publish_queue_bytes();
    return s;
}

}  // namespace hawser
