// NatsLink (see nats_link.hpp), on nats.c.
#include "cluster/nats_link.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <system_error>

namespace hawser::detail {

namespace {

Error nats_error(std::string_view what, natsStatus s) {
    return Error{Errc::cluster_unavailable, std::string(what) + ": " + natsStatus_GetText(s) +
                                                " (" + nats_GetLastError(nullptr) + ")"};
}

}  // namespace

Result<std::unique_ptr<NatsLink>> NatsLink::open(const ClusterOptions& o,
                                                 const std::string& client_name, Events events,
                                                 std::atomic<std::uint64_t>& lost, Shape shape) {
    std::unique_ptr<NatsLink> link;
    try {  // the socket loop's thread and eventfd
        link.reset(new NatsLink(std::move(events), o.max_message_bytes, shape.pending,
                                shape.write_deadline));
    } catch (const std::system_error& e) {
        return Error{Errc::cluster_unavailable,
                     std::string("cannot start a NATS link: ") + e.what()};
    }
    natsOptions* opts = nullptr;
    if (auto s = natsOptions_Create(&opts); s != NATS_OK) return nats_error("NATS options", s);
    struct Free {
        natsOptions* o;
        ~Free() { natsOptions_Destroy(o); }
    } free_opts{opts};

    std::vector<const char*> urls;
    for (const auto& u : o.nats_urls) urls.push_back(u.c_str());
    auto check = [](natsStatus s, std::string_view what) -> Result<void> {
        if (s == NATS_OK) return {};
        return Error{Errc::invalid_argument, "cluster: " + std::string(what) + ": " +
                                                 natsStatus_GetText(s) + " (" +
                                                 nats_GetLastError(nullptr) + ")"};
    };
    Result<void> r =
        check(natsOptions_SetServers(opts, urls.data(), int(urls.size())), "nats_urls");
    if (r) r = check(natsOptions_SetName(opts, client_name.c_str()), "name");
    if (r) r = check(natsOptions_SetMaxReconnect(opts, -1), "reconnect");
    if (r)
        r = check(natsOptions_SetReconnectWait(opts, o.nats_reconnect_wait.count()),
                  "reconnect wait");
    if (r) r = check(natsOptions_SetReconnectJitter(opts, 100, 1000), "reconnect jitter");
    // Publishing checks the connection first (a publish while NATS is away fails at once); the
    // small buffer only holds what races with a disconnect.
    if (r) r = check(natsOptions_SetReconnectBufSize(opts, 64 << 10), "reconnect buffer");
    // A NATS that closed the connection is noticed at once; one that went silent after 15 to
    // 20 s. A NATS busy for a few seconds is not gone: reconnecting would send every channel
    // subscription again at the worst moment (a million-connection run once did, on every node).
    // The write deadline below still ends a connection NATS has not read from for that long.
    if (r) r = check(natsOptions_SetPingInterval(opts, 5000), "ping interval");
    if (r) r = check(natsOptions_SetMaxPingsOut(opts, 3), "pings out");
    if (r) r = check(natsOptions_SetSendAsap(opts, o.nats_send_asap), "send asap");
    if (r && shape.delivery == Delivery::shared)
        r = check(natsOptions_UseGlobalMessageDelivery(opts, true), "shared delivery");
    if (r) r = check(natsOptions_SetTimeout(opts, 2000), "connect timeout");
    // The socket is read and written by the link's own loop (NatsSocketLoop), so that nats.c
    // never waits on the socket holding its connection's lock. The loop takes a NATS that has
    // not read what it writes for the write deadline as gone, and nats.c reconnects; publishers
    // meanwhile queue, then are refused. nats.c's own deadline bounds its connect handshake.
    // With TLS nats.c waits under the lock in that mode too (SSL wanting to read or write), so
    // it keeps its own reader and writer threads, with its own write deadline. (A NATS that
    // requires TLS needs nats_tls: nats.c would turn it on by itself, after the loop attached.)
    const bool tls = o.nats_tls || !o.nats_tls_ca_file.empty();
    if (r)
        r = check(natsOptions_SetWriteDeadline(opts, shape.write_deadline.count()),
                  "write deadline");
    if (r && !tls && !link->loop_->attach_to(opts))
        r = Error{Errc::invalid_argument, "cluster: NATS event loop refused"};
    if (r && !o.nats_user.empty())
        r = check(natsOptions_SetUserInfo(opts, o.nats_user.c_str(), o.nats_password.c_str()),
                  "user");
    if (r && !o.nats_token.empty())
        r = check(natsOptions_SetToken(opts, o.nats_token.c_str()), "token");
    if (r && !o.nats_nkey.empty())
        r = check(
            natsOptions_SetNKeyFromSeed(opts, o.nats_nkey.c_str(), o.nats_nkey_seed_file.c_str()),
            "nkey");
    if (r && !o.nats_credentials_file.empty())
        r = check(
            natsOptions_SetUserCredentialsFromFiles(opts, o.nats_credentials_file.c_str(), nullptr),
            "credentials file");
    if (r && tls) {
        r = check(natsOptions_SetSecure(opts, true), "tls");
        if (r && !o.nats_tls_ca_file.empty())
            r = check(natsOptions_LoadCATrustedCertificates(opts, o.nats_tls_ca_file.c_str()),
                      "tls CA file");
    }
    if (!r) return r.error();

    auto* self = link.get();
    natsOptions_SetDisconnectedCB(
        opts,
        [](natsConnection* nc, void* c) {
            auto* l = static_cast<NatsLink*>(c);
            l->connected_ = down;
            // Given up for good (or closed by ~NatsLink): the closed event says so, and nothing
            // is being reconnected.
            if (natsConnection_IsClosed(nc)) return;
            const char* why = nullptr;
            natsConnection_GetLastError(nc, &why);
            std::string reason = why ? why : "";
            if (auto t = l->loop_->write_timeouts(); t != l->write_timeouts_seen_.exchange(t))
                reason = "NATS took nothing written to it for the write deadline";
            if (l->events_.disconnected) l->events_.disconnected(reason);
        },
        self);
    natsOptions_SetReconnectedCB(
        opts,
        [](natsConnection*, void* c) {
            auto* l = static_cast<NatsLink*>(c);
            l->connected_ = up;
            if (l->events_.connected) l->events_.connected();
        },
        self);
    natsOptions_SetClosedCB(
        opts,
        [](natsConnection* nc, void* c) {
            auto* l = static_cast<NatsLink*>(c);
            l->connected_ = down;
            // Told before closed_ is set: once it is, ~NatsLink may free the link.
            if (!l->closing_) {
                const char* why = nullptr;
                natsConnection_GetLastError(nc, &why);
                std::string reason = why && *why ? why : "no reason given";
                {
                    std::lock_guard lock(l->mu_);
                    l->why_closed_ = reason;
                }
                l->given_up_ = true;
                if (l->events_.closed) l->events_.closed(std::move(reason));
            }
            bool orphaned;
            {
                std::lock_guard lock(l->mu_);
                l->closed_ = true;
                orphaned = l->orphaned_;
                l->cv_.notify_all();
            }
            if (orphaned) delete l;  // open() failed and left it here
        },
        self);
    natsOptions_SetErrorHandler(
        opts,
        [](natsConnection*, natsSubscription*, natsStatus s, void* c) {
            auto* l = static_cast<NatsLink*>(c);
            if (l->events_.error) l->events_.error(s == NATS_SLOW_CONSUMER, natsStatus_GetText(s));
        },
        self);
    // The first connect is retried in the background like a reconnect: a node starts (and
    // serves its own clients) while NATS is down.
    natsOptions_SetRetryOnFailedConnect(
        opts, true,
        [](natsConnection*, void* c) {
            auto* l = static_cast<NatsLink*>(c);
            l->connected_ = up;
            if (l->events_.connected) l->events_.connected();
        },
        self);
    // Until Connect returns, a closed event can only be nats.c giving up a start it could not
    // make (below): the link reports it to nobody.
    link->closing_ = true;
    auto s = natsConnection_Connect(&link->nc_, opts);
    if (s == NATS_OK || s == NATS_NOT_YET_CONNECTED) link->closing_ = false;
    if (s == NATS_OK) {
        int was = unknown;  // a disconnect reported meanwhile stands
        link->connected_.compare_exchange_strong(was, up);
    }
    if (link->nc_)
        link->queue_ = std::make_unique<PublishQueue>(
            o.max_publish_queue_bytes,
            [self, nc = link->nc_](const char* subject, std::string_view d) {
                self->wait_for_room();
                auto st = natsConnection_Publish(nc, subject, d.data(), int(d.size()));
                if (st == NATS_OK) return true;
                // Lost: NATS went away with it queued (the reconnect buffer is small on
                // purpose, see above), or refused it (a max_payload below max_message_bytes).
                if (self->events_.error)
                    self->events_.error(false, std::string("a message to ") + subject +
                                                   " was lost: " + natsStatus_GetText(st));
                return false;
            },
            lost,
            [self] {
                if (self->events_.caught_up) self->events_.caught_up();
            });
    if (s == NATS_OK) {
        if (link->events_.connected) link->events_.connected();
    } else if (s == NATS_NOT_YET_CONNECTED) {
        if (link->events_.error)
            link->events_.error(false, "not connected yet (" +
                                           std::string(nats_GetLastError(nullptr)) +
                                           "); retrying in the background");
    } else {
        // When nats.c could not start its background connecting (a thread or a buffer it
        // could not get), it closed the connection itself and calls the closed handler with
        // this link, from a thread of its own. Unless that has run, the link is left to the
        // handler, which frees it. (Whatever else fails here fails before nats.c has a
        // connection, and then nothing calls: a link left so is lost, which only a failed
        // allocation can make happen once nats_urls are checked.)
        link->loop_->stop();
        std::unique_lock lock(link->mu_);
        if (!link->closed_) {
            link->orphaned_ = true;
            lock.unlock();
            (void)link.release();
        }
        return nats_error("cannot start the NATS connection", s);
    }
    return link;
}

bool NatsLink::url_parses(std::string_view url) {
    if (url.empty()) return false;
    if (auto scheme = url.find("://"); scheme != std::string_view::npos)
        url.remove_prefix(scheme + 3);
    if (auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
    auto bracket = url.rfind(']');
    auto colon = url.rfind(':');
    if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket))
        return true;  // no port: 4222
    auto port = url.substr(colon + 1);
    port = port.substr(0, port.find('/'));
    if (port.empty()) return true;
    if (port.size() > 10 || !std::ranges::all_of(port, [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    return std::stoull(std::string(port)) <= 0x7fffffffull;
}

NatsLink::~NatsLink() {
    if (!nc_) return;
    // The queue's thread stops waiting for room, sends nothing after the message it may be
    // handing to nats.c, and is gone before the connection closes. What nats.c still buffers
    // goes out while the loop writes (half a second at most; behind a NATS that does not read,
    // closing then waits half a second more for its own flush, as nothing reads). The loop
    // stops before the connection closes: nats.c reads the socket without its lock, and closing
    // closes the socket, whose number the process may reuse at once. Closing the connection
    // closes every subscription; each reports completion once its handler has returned for the
    // last time, and the connection reports closed last.
    closing_ = true;
    loop_->release_waiters();
    queue_.reset();
    if (connected() && natsConnection_Buffered(nc_) > 0) natsConnection_FlushTimeout(nc_, 500);
    loop_->stop();
    natsConnection_Close(nc_);
    {
        // No timeout: freeing what nats.c may still call into would be worse than waiting.
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] {
            for (auto& [id, sub] : subs_)
                if (!sub->complete) return false;
            return closed_;
        });
    }
    loop_->wait_detached();  // a close nats.c made itself detaches after reporting closed
    for (auto& [id, sub] : subs_)
        if (sub->sub) natsSubscription_Destroy(sub->sub);
    natsConnection_Destroy(nc_);
}

void NatsLink::wait_for_room() {
    // -1 once closed: the publish then fails, and says so.
    if (natsConnection_Buffered(nc_) < max_buffered) return;  // nearly always
    for (;;) {
        auto seen = loop_->writes();
        if (natsConnection_Buffered(nc_) < max_buffered) return;
        // Rechecked now and then: a reconnect empties the buffer without the loop writing.
        if (!loop_->wait_written(seen, std::chrono::milliseconds(100))) return;
    }
}

bool NatsLink::connected() const {
    return connected_ == up;
}

std::string NatsLink::why_closed() const {
    std::lock_guard lock(mu_);
    return why_closed_;
}

Result<void> NatsLink::publish(const std::string& subject, std::string_view data, bool essential) {
    if (data.size() > max_message_bytes_)
        return Error{Errc::limit_exceeded, "cluster message over max_message_bytes"};
    if (!connected() || !queue_) return Error{Errc::cluster_unavailable, "not connected to NATS"};
    return queue_->push(subject, data,
                        essential ? PublishQueue::Admit::essential : PublishQueue::Admit::bounded);
}

bool NatsLink::flush(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!connected() || !queue_ || !queue_->drained(deadline)) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() > 0 && natsConnection_FlushTimeout(nc_, left.count()) == NATS_OK;
}

std::uint64_t NatsLink::add(Handler handler) {
    // No reap here: this may run on the cluster thread, and reaping is the queue's thread's
    // (see start).
    std::lock_guard lock(mu_);
    auto id = next_id_++;
    subs_.emplace(id, std::make_unique<Subscription>(Subscription{this, std::move(handler), id}));
    return id;
}

Result<void> NatsLink::start(std::uint64_t id, const std::string& subject) {
    reap();
    Subscription* sub;
    {
        std::lock_guard lock(mu_);
        auto it = subs_.find(id);
        if (it == subs_.end()) return {};
        sub = it->second.get();
        sub->complete = false;  // its handler may run as soon as nats.c has it
    }
    auto forget = [&] {  // no handler has run, or will
        std::lock_guard lock(mu_);
        subs_.erase(id);
    };
    auto on_message = [](natsConnection*, natsSubscription*, natsMsg* m, void* c) {
        auto* s = static_cast<Subscription*>(c);
        s->handler(natsMsg_GetSubject(m),
                   std::string_view(natsMsg_GetData(m), std::size_t(natsMsg_GetDataLength(m))));
        natsMsg_Destroy(m);
    };
    natsSubscription* ns = nullptr;
    auto st = natsConnection_Subscribe(&ns, nc_, subject.c_str(), on_message, sub);
    if (st != NATS_OK) {
        forget();
        return nats_error("NATS subscribe to " + subject, st);
    }
    {
        std::lock_guard lock(mu_);
        sub->sub = ns;
    }
    st = natsSubscription_SetOnCompleteCB(
        ns,
        [](void* c) {
            auto* s = static_cast<Subscription*>(c);
            std::lock_guard lock(s->link->mu_);
            s->complete = true;
            s->link->completed_.push_back(s->id);
            s->link->cv_.notify_all();
        },
        sub);
    if (st != NATS_OK) {
        // Nothing would say when its handler is done for good: undo the subscription and let
        // the small Subscription go unfreed rather than free it under a running handler.
        natsSubscription_Unsubscribe(ns);
        std::lock_guard lock(mu_);
        if (auto it = subs_.find(id); it != subs_.end()) (void)it->second.release();
        subs_.erase(id);
        return nats_error("NATS subscription settings for " + subject, st);
    }
    // Outside the lock, as every unsubscribe: the completion callback takes it.
    if (natsSubscription_SetPendingLimits(ns, pending_.messages, pending_.bytes) != NATS_OK) {
        stop(id);  // freed by a reap once complete
        return nats_error("NATS pending limits for " + subject, NATS_ERR);
    }
    return {};
}

Result<std::uint64_t> NatsLink::subscribe(const std::string& subject, Handler handler) {
    auto id = add(std::move(handler));
    if (auto started = start(id, subject); !started) return started.error();
    return id;
}

Result<std::uint64_t> NatsLink::subscribe_in_order(const std::string& subject, Handler handler,
                                                   Refused refused) {
    if (given_up_)  // by nats.c, for good (an authorisation it refuses)
        return Error{Errc::cluster_unavailable, "NATS closed this node's connection for good"};
    if (!queue_) return Error{Errc::cluster_unavailable, "not connected to NATS"};
    auto id = add(std::move(handler));
    auto queued = queue_->push(
        [this, id, subject, refused = std::move(refused)] {
            if (auto started = start(id, subject); !started && refused)
                refused(id, started.error());
        },
        footprint(subject.size()), PublishQueue::Admit::essential);
    if (!queued) {
        std::lock_guard lock(mu_);
        subs_.erase(id);  // never started: no handler runs
        return queued.error();
    }
    return id;
}

void NatsLink::unsubscribe(std::uint64_t id) {
    // Refused only once the queue stops, when the link is closing: closing unsubscribes all.
    if (queue_)
        (void)queue_->push([this, id] { stop(id); }, footprint(0), PublishQueue::Admit::always);
}

void NatsLink::stop(std::uint64_t id) {
    // Outside the lock: the completion callback takes it. Nothing frees the subscription
    // before it completes, which it does only once unsubscribed (or closed).
    natsSubscription* sub = nullptr;
    {
        std::lock_guard lock(mu_);
        // Not there: nats.c refused it, or closed it and it was reaped.
        auto it = subs_.find(id);
        if (it == subs_.end() || !it->second->sub || it->second->stopped) return;
        it->second->stopped = true;
        sub = it->second->sub;
    }
    natsSubscription_Unsubscribe(sub);  // completion follows, on nats.c's delivery thread
    reap();
}

void NatsLink::reap() {
    // nats.c's free takes the connection's lock: done outside ours, which nats.c's threads take.
    std::vector<natsSubscription*> done;
    {
        std::lock_guard lock(mu_);
        for (auto id : completed_)
            if (auto it = subs_.find(id); it != subs_.end()) {
                done.push_back(it->second->sub);
                subs_.erase(it);
            }
        completed_.clear();
    }
    for (auto* sub : done) natsSubscription_Destroy(sub);
}

}  // namespace hawser::detail
