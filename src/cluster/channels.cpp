// Channels: which of this node's connections are in which channel (ChannelTable), the NATS
// subscription this node holds for each channel it has a subscriber in, and the commands that
// let clients subscribe themselves. Interest changes (a channel's first local subscriber, or
// its last leaving) are applied by the cluster thread in batches, every interest_batch at
// most, so a subscribe/unsubscribe storm reaches NATS as its net change. A batch is confirmed
// by a marker the node publishes to itself behind it (NATS reads a connection in order), so
// no thread waits for NATS; the marker comes back on the membership link, whose delivery does
// not queue behind channel traffic. Publications are fanned out in broadcast.cpp.
#include <spdlog/spdlog.h>

#include "cluster/cluster_impl.hpp"

namespace hawser {

bool Cluster::valid_channel(std::string_view c) {
    if (c.empty() || c.size() > 128 || c.front() == '.' || c.back() == '.' ||
        c.find("..") != std::string_view::npos)
        return false;
    for (char ch : c)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == ':' ||
              ch == '.'))
            return false;
    return true;
}

Error detail::channel_error(std::string_view channel) {
    return Error{Errc::invalid_argument,
                 "channel '" + std::string(channel.substr(0, 80)) +
                     "': 1 to 128 letters, digits or \"-_:.\", no empty part between dots"};
}

namespace {

// How long a subscription waits for its batch's marker before it is told NATS did not confirm.
constexpr auto confirm_within = std::chrono::seconds(5);

using Waiters = std::vector<Cluster::Impl::InterestWaiter>;

// Each waiter hears `outcome` on its loop.
void finish(Cluster::Impl& impl, Waiters& waiters, const Result<void>& outcome) {
    for (auto& w : waiters)
        impl.complete(w.loop, [done = std::move(w.done), outcome] { done(outcome); });
}

// The waiters of the batches at the front of `confirming` that `over` says are over. Under
// channels_mu.
template <class Over>
Waiters take_front(std::deque<Cluster::Impl::Confirming>& confirming, Over over) {
    Waiters out;
    while (!confirming.empty() && over(confirming.front())) {
        for (auto& w : confirming.front().waiters) out.push_back(std::move(w));
        confirming.pop_front();
    }
    return out;
}

// The waiters in `from` for the channel link's subscription `id`, taken out of it.
Waiters take_waiting_for(Waiters& from, std::uint64_t id) {
    Waiters out, rest;
    for (auto& w : from) (w.subscription == id ? out : rest).push_back(std::move(w));
    from = std::move(rest);
    return out;
}

// Told when nats.c refused the subscription they wait for.
Error refused_error(const Error& why) {
    return Error{Errc::cluster_unavailable,
                 "NATS refused the subscription (" + why.message + "); it is tried again"};
}

// The next interest batch goes out within `within` (interest_batch unless said; one already
// due keeps its time).
void schedule_interest(Cluster::Impl& impl,
                       std::optional<Cluster::Impl::Clock::duration> within = std::nullopt) {
    std::lock_guard lock(impl.mu);
    if (!impl.interest_due)
        impl.interest_due =
            Cluster::Impl::Clock::now() + within.value_or(impl.options.interest_batch);
    impl.recheck = true;
    impl.wake.notify_all();
}

// A subscription that cannot be made now is tried again in a second, not in a tight loop.
constexpr auto retry_after = std::chrono::seconds(1);

// What a subscription hears once nats.c gave a link up for good (nothing then is retried).
std::optional<Error> given_up(const Cluster::Impl& impl) {
    if (!impl.nats_given_up) return std::nullopt;
    return Error{Errc::cluster_unavailable,
                 "NATS closed this node's connection for good (its log says why): the "
                 "subscription takes no effect until the node is restarted"};
}

}  // namespace

Result<void> Cluster::Impl::subscribe(ConnectionId id, std::string_view channel,
                                      std::function<void(Result<void>)> subscribed) {
    if (!valid_channel(channel)) return detail::channel_error(channel);
    {
        std::lock_guard lock(mu);
        if (stopping) return Error{Errc::cluster_unavailable, "this node left the cluster"};
        // Nothing would send the interest, or answer `subscribed`, before start().
        if (!started) return Error{Errc::cluster_unavailable, "the cluster is not started"};
    }
    if (!server.find(id)) return Error{Errc::not_found, "no connection " + std::to_string(id)};
    {
        std::lock_guard lock(channels_mu);
        if (channels_closed) return Error{Errc::cluster_unavailable, "this node left the cluster"};
        auto added = channels.subscribe(id, channel, options.max_channels_per_connection);
        if (added == detail::ChannelTable::Added::over_limit)
            return Error{Errc::limit_exceeded,
                         "the connection is in max_channels_per_connection channels"};
        if (subscribed)
            interest_waiters.push_back(
                {std::string(channel), caller_loop(), std::move(subscribed)});
    }
    // It may have closed meanwhile, its channels left before this one was added: its hook
    // has run (the registry forgets a connection before the hooks run), so leave for it.
    if (!server.find(id)) connection_closed(id);
    schedule_interest(*this);
    return {};
}

void Cluster::Impl::connection_closed(ConnectionId id) {
    bool changed;
    {
        std::lock_guard lock(channels_mu);
        channels.remove(id);
        changed = channels.changed();
    }
    if (changed) schedule_interest(*this);
}

void Cluster::Impl::subscription_refused(std::string channel, std::uint64_t id, const Error& why) {
    auto for_good = given_up(*this);
    if (!for_good)
        nats_error(false, "NATS refused the subscription to channel " + channel + ": " +
                              why.message + "; retrying");
    // Those waiting for its batch's marker, which may still come back, hear it now; those not
    // yet in `confirming` when it comes back are told as their batch goes in (apply_interest).
    Waiters waiting;
    {
        std::lock_guard lock(channels_mu);
        for (auto& batch : confirming)
            for (auto& w : take_waiting_for(batch.waiters, id)) waiting.push_back(std::move(w));
        refused_subscriptions.push_back({std::move(channel), id, why});
    }
    if (!for_good) count(counters.interest_retries);
    schedule_interest(*this, retry_after);  // not retried once given up: apply_interest
    finish(*this, waiting, for_good ? *for_good : refused_error(why));
}

void Cluster::Impl::apply_interest() {
    std::vector<detail::ChannelTable::Interest> changes;
    std::vector<InterestWaiter> waiters;
    std::vector<RefusedSubscription> refused;
    {
        std::lock_guard lock(channels_mu);
        refused = std::move(refused_subscriptions);
        refused_subscriptions.clear();
        for (auto& r : refused) channels.retry(r.channel);  // looked at again in this batch
        changes = channels.take_changes();
        waiters = std::move(interest_waiters);
        interest_waiters.clear();
    }
    // On the cluster thread the link is stable: stop() takes it out only after joining.
    detail::NatsLink* nats;
    {
        std::shared_lock lock(link_mu);
        nats = channel_link.get();
    }
    // Not held after all (unless it was withdrawn and made again meanwhile, with another id).
    for (auto& r : refused)
        if (auto held = channel_subscriptions.find(r.channel);
            held != channel_subscriptions.end() && held->second == r.id)
            channel_subscriptions.erase(held);
    std::unordered_map<std::string, Error> failed;
    // NATS is not taking subscriptions now, so none is tried; or nats.c gave a link up for
    // good, so nothing will take effect, and nothing is retried.
    std::optional<Error> refusing = given_up(*this);
    const bool closed = refusing.has_value();
    for (auto& change : changes) {
        if (!nats) break;
        auto held = channel_subscriptions.find(change.channel);
        if (change.wanted && held == channel_subscriptions.end() && refusing) {
            failed.emplace(change.channel, *refusing);
            continue;
        }
        if (change.wanted && held == channel_subscriptions.end()) {
            // Queued, as the marker behind it: this thread never waits on NATS.
            auto sub = nats->subscribe_in_order(
                subjects.channel(change.channel),
                [this](std::string_view subject, std::string_view data) {
                    on_publication(subject, data);
                },
                [this, channel = change.channel](std::uint64_t id, const Error& why) {
                    subscription_refused(channel, id, why);
                });
            if (!sub) {  // NATS is not taking even subscriptions now
                nats_error(false, "cannot subscribe to channel " + change.channel + ": " +
                                      sub.error().message + "; retrying");
                refusing = Error{Errc::cluster_unavailable,
                                 "NATS is not taking this node's subscriptions now (" +
                                     sub.error().message +
                                     "): the subscription stands and takes effect once NATS "
                                     "has it"};
                failed.emplace(change.channel, *refusing);
                continue;
            }
            channel_subscriptions.emplace(change.channel, *sub);
            count(counters.interest_changes);
        } else if (!change.wanted && held != channel_subscriptions.end()) {
            nats->unsubscribe(held->second);
            channel_subscriptions.erase(held);
            count(counters.interest_changes);
        }
    }
    counters.channel_subscriptions.store(channel_subscriptions.size(), std::memory_order_relaxed);
    if (!failed.empty() && !closed) {
        counters.interest_retries.fetch_add(failed.size(), std::memory_order_relaxed);
        {
            std::lock_guard lock(channels_mu);
            for (auto& [channel, error] : failed) channels.retry(channel);
        }
        std::lock_guard lock(mu);  // again in a second, not in a tight loop
        if (!interest_due) interest_due = Clock::now() + retry_after;
    }
    // Those whose subscribe failed hear it now; the rest once the marker published behind
    // their batch comes back, or at its deadline (expire_confirmations): waiting here would
    // hold up the reports that keep this node in the cluster.
    std::vector<InterestWaiter> sent;
    for (auto& w : waiters) {
        auto f = failed.find(w.channel);
        if (f == failed.end()) {
            if (auto held = channel_subscriptions.find(w.channel);
                held != channel_subscriptions.end())
                w.subscription = held->second;
            sent.push_back(std::move(w));
            continue;
        }
        complete(w.loop, [done = std::move(w.done), e = f->second] { done(e); });
    }
    if (sent.empty()) return;
    // Queued before the marker goes: it may come back before publish() returns.
    auto marker = ++last_marker;
    std::vector<std::pair<Waiters, Error>> refused_already;
    {
        std::lock_guard lock(channels_mu);
        // Refused by nats.c before they were here for subscription_refused to tell them.
        for (auto& r : refused_subscriptions)
            if (auto told = take_waiting_for(sent, r.id); !told.empty())
                refused_already.emplace_back(std::move(told),
                                             closed ? *refusing : refused_error(r.why));
        confirming.push_back({marker, Clock::now() + confirm_within, std::move(sent)});
    }
    for (auto& [told, why] : refused_already) finish(*this, told, why);
    // On the channel link, behind its subscriptions; it comes back on the membership link.
    Result<void> published =
        nats ? nats->publish(subjects.marker(name), detail::encode_marker({run_id, marker}),
                             /*essential=*/true)
             : Result<void>(Error{Errc::cluster_unavailable, "the cluster is not started"});
    if (published) return;
    {
        // Only this thread queues or expires them, and a marker not sent cannot come back:
        // it is still the last one.
        std::lock_guard lock(channels_mu);
        if (confirming.empty() || confirming.back().marker != marker) return;
        sent = std::move(confirming.back().waiters);
        confirming.pop_back();
    }
    // Away, or too far behind to take even the marker (or gone for good).
    finish(*this, sent,
           closed ? *refusing
                  : Error{Errc::cluster_unavailable,
                          "NATS did not take the confirmation (" + published.error().message +
                              "): the subscription stands and takes effect once NATS has it"});
}

void Cluster::Impl::on_marker(std::string_view data) {
    auto m = detail::decode_marker(data);
    if (!m) return dropped(m.error().message);
    if (m->run != run_id) return;  // another process under this node's name (reports count it)
    Waiters confirmed;
    {
        std::lock_guard lock(channels_mu);
        confirmed =
            take_front(confirming, [&](const Confirming& c) { return c.marker <= m->number; });
    }
    finish(*this, confirmed, {});
}

void Cluster::Impl::expire_confirmations() {
    auto now = Clock::now();
    Waiters late;
    {
        std::lock_guard lock(channels_mu);
        late = take_front(confirming, [&](const Confirming& c) { return c.deadline <= now; });
    }
    if (late.empty()) return;
    if (auto for_good = given_up(*this)) return finish(*this, late, *for_good);
    // Away, or behind a backlog: the words must not claim which.
    finish(*this, late,
           Error{Errc::cluster_unavailable,
                 "NATS did not confirm the subscription within " +
                     std::to_string(confirm_within.count()) +
                     " s (away or overloaded); it stands and takes effect once NATS has it"});
}

std::optional<Cluster::Impl::Clock::time_point> Cluster::Impl::next_confirmation_deadline() {
    std::lock_guard lock(channels_mu);
    if (confirming.empty()) return std::nullopt;
    return confirming.front().deadline;
}

void Cluster::Impl::fail_confirmations(const Error& why) {
    Waiters waiters;
    {
        std::lock_guard lock(channels_mu);
        channels_closed = true;
        waiters = std::move(interest_waiters);
        interest_waiters.clear();
        for (auto& w : take_front(confirming, [](const Confirming&) { return true; }))
            waiters.push_back(std::move(w));
    }
    finish(*this, waiters, why);
}

bool Cluster::Impl::may_subscribe(const Connection& conn, std::string_view channel) const {
    if (subscribe_hook) return subscribe_hook(conn, channel);
    for (const auto& prefix : options.client_channel_prefixes)
        if (channel.starts_with(prefix)) return true;
    return false;
}

void Cluster::Impl::register_channel_commands() {
    std::weak_ptr<Impl> weak = weak_from_this();
    auto refuse = [](Responder<std::string>& r) {
        r.fail(Errc::cluster_unavailable, "this node left the cluster");
    };
    server.commands().console(
        std::string(subscribe_command),
        [weak, refuse](const Request& req, std::string channel, Responder<std::string> r) {
            auto impl = weak.lock();
            if (!impl) return refuse(r);
            if (!valid_channel(channel))
                return r.fail(Errc::invalid_argument, detail::channel_error(channel).message);
            const auto& conn = req.connection();
            if (!impl->may_subscribe(conn, channel))
                return r.fail(Errc::not_allowed, "subscribing to this channel is not allowed");
            auto done = [r](Result<void> outcome) {
                // The subscription stands either way; the reply says whether NATS has it yet.
                if (outcome) return r.reply("");
                r.fail(outcome.error().code, outcome.error().message);
            };
            if (auto s = impl->subscribe(conn.id(), channel, done); !s)
                r.fail(s.error().code, s.error().message);
        });
    server.commands().console(
        std::string(unsubscribe_command),
        [weak, refuse](const Request& req, std::string channel, Responder<std::string> r) {
            auto impl = weak.lock();
            if (!impl) return refuse(r);
            // What a client may join it may leave; channels the server put it in stay.
            if (valid_channel(channel) && !impl->may_subscribe(req.connection(), channel))
                return r.fail(Errc::not_allowed, "leaving this channel is not allowed");
            if (auto u = impl->unsubscribe(req.connection().id(), channel); !u)
                return r.fail(u.error().code, u.error().message);
            r.reply("");
        });
}

Result<void> Cluster::Impl::unsubscribe(ConnectionId id, std::string_view channel) {
    if (!valid_channel(channel)) return detail::channel_error(channel);
    bool changed;
    {
        std::lock_guard lock(channels_mu);
        channels.unsubscribe(id, channel);
        changed = channels.changed();
    }
    if (changed) schedule_interest(*this);
    return {};
}

// --- Cluster ---

Result<void> Cluster::subscribe(ConnectionId local, std::string_view channel,
                                std::function<void(Result<void>)> subscribed) {
    return impl_->subscribe(local, channel, std::move(subscribed));
}

Result<void> Cluster::unsubscribe(ConnectionId local, std::string_view channel) {
    return impl_->unsubscribe(local, channel);
}

std::vector<ConnectionId> Cluster::subscribers(std::string_view channel) const {
    std::lock_guard lock(impl_->channels_mu);
    return impl_->channels.subscribers(channel);
}

std::vector<std::string> Cluster::channels_of(ConnectionId local) const {
    std::lock_guard lock(impl_->channels_mu);
    return impl_->channels.channels_of(local);
}

void Cluster::on_subscribe(std::function<bool(const Connection&, std::string_view)> allow) {
    impl_->subscribe_hook = std::move(allow);
}

}  // namespace hawser
