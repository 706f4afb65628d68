// Cluster broadcast and channel publications: one NATS publish, and every node that receives it
// fans it out to its own connections (all of them for a broadcast, a channel's subscribers for
// a publication), each sealed per connection. Received on nats.c's delivery thread.
#include "rpc/broadcast.hpp"
#include "cluster/cluster_impl.hpp"

namespace hawser {

void Cluster::Impl::on_broadcast(std::string_view data) {
    auto b = detail::decode_broadcast(data);
    if (!b) return dropped(b.error().message);
    // The origin is not checked against the registry: reports and broadcasts come on
    // different subscriptions, so a broadcast may arrive before its sender's first report.
    // What keeps strangers off these subjects is NATS's authentication (docs/security.md).
    count(counters.broadcasts_received);
    Result<void> r;
    if (b->dataframe) {
        auto frame = DataFrame::decode(b->argument, server.options().limits.dataframe);
        if (!frame) return dropped("broadcast DataFrame: " + frame.error().message);
        r = server.broadcast(b->command, *frame, b->compress);
    } else {
        r = server.broadcast(b->command, b->argument, b->compress);
    }
    if (!r) dropped("broadcast '" + b->command + "': " + r.error().message);
}

void Cluster::Impl::on_publication(std::string_view subject, std::string_view data) {
    auto channel = subjects.channel_of(subject);
    auto p = detail::decode_broadcast(data);
    if (!p) return dropped(p.error().message);
    count(counters.publications_received);
    std::vector<ConnectionId> ids;
    {
        std::lock_guard lock(channels_mu);
        ids = channels.subscribers(channel);
    }
    if (ids.empty()) return;  // its last subscriber left after NATS sent it
    if (p->dataframe) {
        if (auto f = DataFrame::decode(p->argument, server.options().limits.dataframe); !f)
            return dropped("publication DataFrame: " + f.error().message);
    }
    // Encoded once, then each IO thread hands it to its subscribers. One thread posts a
    // channel's publications to each loop in the order NATS delivered them: one publisher's
    // order holds for every subscriber.
    detail::FanOut to;
    to.only = &ids;
    to.each = [self = shared_from_this()](bool sent) {
        count(sent ? self->counters.deliveries : self->counters.deliveries_skipped);
    };
    auto kind = p->dataframe ? detail::Kind::direct_dataframe : detail::Kind::direct_console;
    if (auto r = detail::fan_out(host, kind, p->command, p->argument, p->compress, std::move(to));
        !r)
        dropped("publication '" + p->command + "': " + r.error().message);
}

namespace {

Result<void> publish_fanout(Cluster::Impl& impl, const std::string& subject,
                            detail::ClusterBroadcast b, std::atomic<std::uint64_t>& sent,
                            bool channel = false) {
    if (b.command.empty() || b.command.size() > 255)
        return Error{Errc::invalid_argument, "command names are 1 to 255 bytes"};
    // What every node's connections would refuse is refused here, where the caller hears.
    if (b.argument.size() + b.command.size() + 16 > impl.server.options().limits.max_frame_bytes)
        return Error{Errc::limit_exceeded, "message over the frame size limit"};
    b.origin = impl.name;
    if (auto r = impl.publish(subject, detail::encode_broadcast(b), channel); !r) return r;
    Cluster::Impl::count(sent);
    return {};
}

}  // namespace

Result<void> Cluster::broadcast(std::string_view command, std::string_view argument,
                                bool compress) {
    return publish_fanout(*impl_, impl_->subjects.broadcast,
                          {{}, std::string(command), false, compress, std::string(argument)},
                          impl_->counters.broadcasts_sent);
}

Result<void> Cluster::broadcast(std::string_view command, const DataFrame& argument,
                                bool compress) {
    return publish_fanout(*impl_, impl_->subjects.broadcast,
                          {{}, std::string(command), true, compress, argument.bytes()},
                          impl_->counters.broadcasts_sent);
}

Result<void> Cluster::publish(std::string_view channel, std::string_view command,
                              std::string_view argument, bool compress) {
    if (!valid_channel(channel)) return detail::channel_error(channel);
    return publish_fanout(*impl_, impl_->subjects.channel(channel),
                          {{}, std::string(command), false, compress, std::string(argument)},
                          impl_->counters.publications_sent, true);
}

Result<void> Cluster::publish(std::string_view channel, std::string_view command,
                              const DataFrame& argument, bool compress) {
    if (!valid_channel(channel)) return detail::channel_error(channel);
    return publish_fanout(*impl_, impl_->subjects.channel(channel),
                          {{}, std::string(command), true, compress, argument.bytes()},
                          impl_->counters.publications_sent, true);
}

}  // namespace hawser
