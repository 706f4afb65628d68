// Membership (see include/hawser/cluster.hpp): this node's load reports and the cluster thread
// that sends them (and runs the deadlines of remote requests and the channel interest
// batches), the reports of the others, routing and the redirects of full or draining nodes.
#include <spdlog/spdlog.h>

#include "cluster/cluster_impl.hpp"
#include "cluster/process_load.hpp"
#include "hawser/runtime.hpp"
#include "rpc/address.hpp"

#include <asio/ip/address.hpp>

namespace hawser {

// What does not change while the node runs: name, endpoints, key, capacity.
Result<void> Cluster::Impl::fill_self() {
    self.name = name;
    self.public_key = server.options().transport.insecure_plaintext ? "" : server.public_key();
    self.endpoints = options.public_endpoints;
    if (self.endpoints.empty()) {
        // The listen addresses, when they say how others reach this node: IP addresses, one
        // listener each (a name may resolve to several listeners, a wildcard to any address).
        auto ports = server.ports();
        const auto& listen = server.options().listen;
        auto unusable = [&](const std::string& why) {
            return Error{Errc::invalid_argument,
                         "cluster: " + why +
                             ": set public_endpoints (--public-endpoint) to where clients reach "
                             "this node"};
        };
        if (ports.size() != listen.size())
            return unusable("a listen address names several listeners");
        for (std::size_t i = 0; i < listen.size(); ++i) {
            auto hp = detail::parse_host_port(listen[i]);
            std::error_code ec;
            auto ip = hp ? asio::ip::make_address(hp->host, ec) : asio::ip::address();
            if (!hp || ec) return unusable("listen address '" + listen[i] + "' is a name");
            if (ip.is_unspecified())
                return unusable("listen address '" + listen[i] + "' is every interface");
            self.endpoints.push_back(detail::host_port_text(hp->host, ports[i]));
        }
    }
    self.capacity = options.capacity;
    if (self.capacity == 0) self.capacity = server.options().max_connections;
    if (self.capacity == 0) {
        auto files = raise_file_limit();  // already raised by start(); this reads it
        self.capacity = files > 64 ? files - 64 : 0;
    }
    return {};
}

void Cluster::Impl::report(bool leaving) {
    std::string bytes;
    {
        std::lock_guard lock(mu);
        ++self.sequence;
        bytes = detail::encode_report(self, leaving, run_id);
    }
    send_report(bytes);
}

void Cluster::Impl::send_report(const std::string& bytes) {
    // Essential: a queue full of publications must not refuse the report that keeps this node
    // in the others' registries.
    if (publish(subjects.node(name), bytes, /*on_channel_link=*/false, /*essential=*/true))
        count(counters.reports_sent);
}

void Cluster::Impl::run() {
    detail::ProcessLoad load;
    std::uint64_t last_handshakes = server.stats().handshakes;
    auto last = Clock::now();
    auto next_report = last;
    auto next_expiry = last + options.report_interval;
    Clock::duration announced = options.report_interval;  // by the last report sent
    std::unique_lock lock(mu);
    while (!stopping) {
        auto now = Clock::now();
        if (report_now || now >= next_report) {
            report_now = false;
            lock.unlock();
            auto stats = server.stats();
            double seconds = std::chrono::duration<double>(now - last).count();
            double rate = seconds > 0 ? double(stats.handshakes - last_handshakes) / seconds : 0;
            last_handshakes = stats.handshakes;
            last = now;
            double cpu = load.sample_cpu();
            auto memory = detail::ProcessLoad::resident_bytes();
            lock.lock();
            self.connections = stats.connections;
            self.handshakes_per_second = rate;
            self.cpu = cpu;
            self.memory_bytes = memory;
            self.draining = draining.load();
            // The report says when the next one comes, and the others wait for it that much
            // longer: past reports_heard_per_second, longer than the interval. Not while a
            // node that does not read it (an older release) would drop this one meanwhile.
            Clock::duration period = options.report_interval;
            if (registry.every_other_node_says_its_period(name)) {
                auto nodes = registry.size() + (registry.contains(name) ? 0 : 1);
                period = detail::report_period(options.report_interval,
                                               options.reports_heard_per_second, nodes);
            }
            self.report_period = std::chrono::duration_cast<Milliseconds>(period);
            // This node knows itself without NATS; the sequence moves first so that the
            // registry takes the update.
            ++self.sequence;
            registry.update(self, now, run_id);
            auto bytes = detail::encode_report(self, false, run_id);
            lock.unlock();
            send_report(bytes);
            // A longer period is waited only once said twice: a listener that lost the report
            // saying it still waits for the one before, which promised the shorter.
            next_report = now + std::min(period, announced);
            announced = period;
            lock.lock();
        }
        if (now >= next_expiry) {
            auto gone = registry.expire(now, options.node_expiry, options.report_interval);
            for (auto& node : gone) {
                spdlog::warn("hawser cluster: node {} went silent; dropped from routing", node);
                node_events.push_back({std::move(node), false, requests.added()});
            }
            next_expiry = now + options.report_interval;
            if (!gone.empty()) {
                deliver_node_events(lock);
                lock.lock();
            }
        }
        bool interest = interest_due && now >= *interest_due;
        if (interest) interest_due.reset();
        recheck = false;  // before the deadlines are read: a later poke is not lost
        lock.unlock();
        if (notices_repair_due) notices_dropped();
        expire_requests();
        expire_asks();
        if (interest) apply_interest();
        expire_confirmations();
        std::optional<Clock::time_point> deadline;
        {
            std::lock_guard requests_lock(requests_mu);
            deadline = requests.next_deadline();
        }
        for (auto next : {next_ask_deadline(), next_confirmation_deadline()})
            if (next && (!deadline || *next < *deadline)) deadline = next;
        lock.lock();
        auto until = std::min(next_report, next_expiry);
        if (deadline) until = std::min(until, *deadline);
        if (interest_due) until = std::min(until, *interest_due);
        wake.wait_until(lock, until, [&] { return stopping || report_now || recheck; });
    }
}

void Cluster::Impl::on_report(std::string_view subject, std::string_view data) {
    auto sender = subjects.node_of(subject);
    auto r = detail::decode_report(data);
    if (!r) return dropped(r.error().message);
    if (sender == name) {  // our own, echoed, unless another process took this node's name
        if (r->run != run_id && r->info.name == name) {
            count(counters.name_clashes);
            static std::atomic<std::int64_t> last_log{0};
            auto now = Clock::now().time_since_epoch().count();
            auto before = last_log.load();
            if (now - before > 10'000'000'000 && last_log.compare_exchange_strong(before, now))
                spdlog::error(
                    "hawser cluster: another process reports under this node's name '{}': node "
                    "names must be unique (routing and addresses mix the two up)",
                    name);
        }
        return;
    }
    if (r->info.name != sender) return dropped("report names another node than its subject");
    counters.reports_received.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock lock(mu);
    if (r->leaving) {
        if (!registry.remove(sender, r->run)) return;
        spdlog::info("hawser cluster: node {} left", sender);
        node_events.push_back({std::string(sender), false, requests.added()});
        return deliver_node_events(lock);
    }
    bool known = registry.contains(sender);
    if (!known && r->info.public_key != self.public_key)
        spdlog::warn(
            "hawser cluster: node {} has another server key than this node: clients that pin one "
            "key cannot use both as entry nodes (give every node the same server.key)",
            sender);
    // A node of an older release (it says no period) drops this one past its own node_expiry:
    // while this one waits longer than the interval, it reports now and then at the interval.
    if (r->info.report_period.count() == 0 && self.report_period > options.report_interval) {
        report_now = true;
        wake.notify_all();
    }
    bool joined =
        registry.update(std::move(r->info), std::chrono::steady_clock::now(), r->run) && !known;
    if (!joined) return;
    spdlog::info("hawser cluster: node {} joined", sender);
    node_events.push_back({std::string(sender), true});
    deliver_node_events(lock);
}

void Cluster::Impl::deliver_node_events(std::unique_lock<std::mutex>& lock) {
    // Another thread is delivering: it takes these too, after what it has, in order.
    if (delivering_node_events) return lock.unlock();
    delivering_node_events = true;
    struct Done {  // however this ends, another thread may deliver after this one
        Cluster::Impl& impl;
        std::unique_lock<std::mutex>& lock;
        ~Done() {
            if (!lock.owns_lock()) lock.lock();
            impl.delivering_node_events = false;
            lock.unlock();
        }
    } done{*this, lock};
    while (!node_events.empty()) {
        auto event = std::move(node_events.front());
        node_events.pop_front();
        lock.unlock();
        if (!event.joined)  // its answers will not come
            fail_requests_to(event.node, event.requests_before);
        for (auto& h : event.joined ? node_joined_handlers : node_gone_handlers) {
            try {
                h(event.node);
            } catch (const std::exception& e) {  // the next handlers and events still run
                spdlog::error("hawser cluster: a node {} handler threw: {}",
                              event.joined ? "joined" : "gone", e.what());
            } catch (...) {
                spdlog::error("hawser cluster: a node {} handler threw a non-standard exception",
                              event.joined ? "joined" : "gone");
            }
        }
        lock.lock();
    }
}

Result<NodeInfo> Cluster::Impl::route() {
    std::lock_guard lock(mu);
    if (stopping)  // nothing keeps the registry current any more
        return Error{Errc::cluster_unavailable, "this node left the cluster"};
    counters.routes.fetch_add(1, std::memory_order_relaxed);
    if (auto best = registry.pick(rng())) {
        registry.routed_to(best->name);
        return *best;
    }
    return Error{Errc::overloaded, "every node of the cluster is full or draining"};
}

std::optional<std::string> Cluster::Impl::redirect_for_new_connection() {
    if (!options.redirect_when_full) return std::nullopt;
    auto connections = server.connection_count();  // this one not yet among them
    std::lock_guard lock(mu);
    if (!started || stopping) return std::nullopt;
    if (!draining.load() && connections < self.capacity) return std::nullopt;
    auto best = registry.pick(rng(), name);
    if (!best) return std::nullopt;  // nowhere better: keep it
    registry.routed_to(best->name);
    count(counters.redirects);
    // docs/protocol.md, "Redirects": "<node> <public key or -> <endpoint>[,<endpoint>...]"
    return best->name + " " + (best->public_key.empty() ? "-" : best->public_key) + " " +
           fmt::format("{}", fmt::join(best->endpoints, ","));
}

// --- Cluster ---

std::vector<NodeInfo> Cluster::nodes() const {
    std::lock_guard lock(impl_->mu);
    return impl_->registry.nodes();
}

Result<NodeInfo> Cluster::route() const {
    return impl_->route();
}

void Cluster::set_draining(bool draining) {
    impl_->draining.store(draining);
    std::lock_guard lock(impl_->mu);
    impl_->report_now = true;  // the reporter updates this node's entry and tells the others now
    impl_->wake.notify_all();
}

}  // namespace hawser
