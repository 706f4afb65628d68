// Conn, life and input: the handshake's end, reading from the transport into the loop's buffer
// and through the channel, dispatch of messages by kind, the idle/heartbeat sweep, and closing.
// Calls are in conn_calls.cpp, the send path in conn_send.cpp.
// Thread affinity: the connection's loop.
#include "rpc/conn.hpp"

#include <spdlog/spdlog.h>

#include "rpc/reply_slot.hpp"
#include "wire/compression.hpp"
#include "wire/encode.hpp"

namespace hawser::detail {

Conn::Conn(Loop& loop, std::shared_ptr<Host> host, std::unique_ptr<Transport> transport,
           asio::ip::tcp::endpoint remote, bool admitted_to_overflow)
    : loop_(loop),
      host_(std::move(host)),
      transport_(std::move(transport)),
      remote_(remote),
      admitted_to_overflow_(admitted_to_overflow),
      id_(Host::next_id(loop.index())),
      channel_(host_->channel, host_->loop_counters(loop.index())),
      last_recv_(loop.now()) {}

Conn::~Conn() {
    // Normally close() detached it; a connection never closed (its loop was torn down with it
    // still open) must not leave a pointer in the loop either.
    if (attached_) loop_.detach(this);
}

void Conn::start() {
    assert(loop_.in_loop());
    loop_.attach(this);
    attached_ = true;
    if (host_->is_client && !host_->channel.transport.insecure_plaintext) {
        // The client's first message costs two X25519 operations (about 100 us): it waits for
        // the loop's background turn as every later step does, so a group that opens hundreds
        // at once (a reconnect) does not hold its open connections' input behind all of them.
        loop_.post_background([self = shared_from_this()] {
            if (self->state_ == State::handshaking) self->begin_handshake();
        });
        return;
    }
    begin_handshake();
}

void Conn::begin_handshake() {
    begun_ = true;
    if (host_->is_client)
        channel_.start_client(
            {host_->channel.frame.mark, host_->channel.transport.insecure_plaintext,
             host_->server_key, host_->client_static},
            loop_.now());
    else
        channel_.start_server(host_->channel.transport.insecure_plaintext, host_->static_keys,
                              loop_.now());
    if (!channel_.nothing_to_send()) schedule_flush();
    wait_readable();
}

bool Conn::on_established() {
    if (host_->is_client) {
        if (channel_.encrypted() && !host_->server_key) {
            // Trust on first use: pin what this server proved it holds, for every later connect.
            host_->server_key = *channel_.peer_static_key();
            spdlog::warn("hawser: trusting server key {} on first use",
                         noise::to_hex(*host_->server_key));
        }
    } else {
        host_->admission.handshake_done(remote_.address(), admitted_to_overflow_);
        std::optional<noise::Key> key;
        if (auto k = channel_.peer_static_key()) key = *k;
        if (channel_.encrypted() && !host_->client_key_policy.admits(key)) {
            refuse_client_key();
            return false;
        }
    }
    Counters::add(host_->counters.handshakes);
    if (!host_->is_client)
        for (auto& service : host_->services)
            if (auto where = service.redirect ? service.redirect() : std::nullopt) {
                // Sealed like every goodbye after the handshake: the client can trust where
                // the server it authenticated sends it. Never opened, never shown to hooks.
                close_gracefully(CloseReason::redirect, *where);
                return false;
            }
    auto pass = host_->connections.enter();
    if (!pass) {
        // Its handshake completed after shutdown closed the gate: refused with a goodbye, never
        // registered or shown to the hooks, so shutdown has nothing of it to wait for.
        close_gracefully(CloseReason::shutdown);
        return false;
    }
    registered_ = std::move(*pass);
    state_ = State::open;
    // Its next check was for the handshake's end; idle and heartbeats may come sooner.
    if (attached_) loop_.sooner(this, next_check(loop_.now()));
    opened_at_ = std::chrono::system_clock::now();  // before the registry shows it to others
    open_.store(true);
    host_->add(shared_from_this());
    // A copy: a hook may replace itself (a Client's hooks may change at any time).
    if (auto hook = host_->hooks_on(loop_.index()).on_connect)
        host_->run_user("on_connect hook", [&] { hook(handle()); });
    if (state_ != State::open) return false;
    if (host_->on_opened) host_->on_opened(*this);
    return state_ == State::open && !input_paused();  // a hook may have paused reading
}

void Conn::refuse_client_key() {
    // The handshake is complete, so the goodbye is sealed: the client learns the reason from
    // the server it authenticated, and nobody on the path can forge it. The connection was
    // never open: nothing registered it and no hook saw it open.
    auto key = channel_.peer_static_key();
    std::string detail =
        key ? "client key " + noise::to_hex(*key) + " is not on the server's allow-list"
            : "this server requires a client key";
    state_ = State::closing;
    protocol_close(CloseReason::key_not_allowed, detail);
}

// --- reading: wait for readability, then read into the loop's buffer ---

void Conn::wait_readable() {
    // Not before the channel has started (begin_handshake arms it): input would be taken as
    // plaintext.
    if (!begun_ || reading_ || state_ == State::closed) return;
    if (input_paused()) return;  // resume_input() reads again
    reading_ = true;
    transport_->wait_readable(transport_user());
}

void Conn::on_readable(std::error_code ec) {
    reading_ = false;
    if (state_ == State::closed) return;
    if (ec) return close(CloseReason::io_error);
    if (channel_.handshaking()) {
        // A handshake step costs key exchanges (about 150 us): it waits for the loop's
        // background turn, one task a turn with a poll for IO between, so a crowd of
        // connections handshaking at once (a reconnect storm) never queues the established
        // connections' input on this loop behind all of theirs; on a server with a handshake
        // rate, for that too. Still "reading" meanwhile: nothing arms another wait.
        reading_ = true;
        if (paced_)
            handshake_turn();  // its turn was taken at its first read
        else
            host_->pace_handshake(loop_, shared_from_this());
        return;
    }
    take_input();
}

void Conn::set_waiting_for_pace(bool waiting) noexcept {
    if (waiting == waiting_for_pace_) return;
    waiting_for_pace_ = waiting;
    LoopCounters::add(host_->loop_counters(loop_.index()).handshakes_waiting,
                      waiting ? 1 : std::uint64_t(-1));
}

void Conn::handshake_turn() {
    paced_ = true;
    loop_.post_background([self = shared_from_this()] {
        self->reading_ = false;
        if (self->state_ != State::closed) self->take_input();
    });
}

void Conn::take_input() {
    bool more;
    {
        in_input_ = true;
        struct InputEnds {  // even if a handler's exception escapes
            bool& in;
            ~InputEnds() { in = false; }
        } ends{in_input_};
        more = read_input();
    }
    // Replies and calls made while the input was handled go out in one write, now: the peer
    // gets them before this loop spends syscalls on re-arming the read.
    if (flush_wanted_) {
        flush_wanted_ = false;
        flush();
    }
    if (more && state_ != State::closed) wait_readable();
}

bool Conn::read_input() {
    if (input_paused()) return false;  // paused while the wait was armed: the kernel keeps it
    auto buffer = loop_.read_buffer();
    std::error_code ec;
    // A few reads per wakeup at most, so one busy peer cannot starve the rest of the loop.
    for (int round = 0; round < 4; ++round) {
        std::size_t n = transport_->read_some(buffer, ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) break;
        if (ec == asio::error::eof) {
            close(CloseReason::peer_closed);
            return false;
        }
        if (ec) {
            transport_failed();
            return false;
        }
        Loop::ReadTime read_time(loop_);  // every message of this read goes by its time
        last_recv_ = loop_.now();
        LoopCounters::add(channel_.counters().bytes_in, n);
        bool delivering = channel_.feed(buffer.first(n), input());
        if (state_ == State::closed) return false;
        if (!channel_.nothing_to_send()) schedule_flush();  // handshake replies
        if (!delivering) return false;                      // paused: resume_input() resumes
        if (n < buffer.size()) break;
    }
    return true;
}

void Conn::transport_failed() {
    auto failure = transport_->failure();
    if (!failure.detail.empty())
        host_->log.warn(to_string(failure.reason), "hawser: closing connection with " +
                                                       remote_.address().to_string() + ": " +
                                                       failure.detail);
    close(failure.reason);
}

void Conn::on_wire_error(CloseReason reason, std::string_view detail, bool goodbye) {
    if (goodbye) return protocol_close(reason, detail);
    // Nothing from this peer can be trusted any more, not even a goodbye.
    host_->log.warn(to_string(reason),
                    "hawser: closing connection from " + remote_.address().to_string() + ": " +
                        std::string(detail) + " (" + std::string(to_string(reason)) + ")");
    close(reason);
}

bool Conn::on_message(std::span<const std::uint8_t> body) {
    if (state_ == State::closed) return false;
    auto m = parse_message(body);
    if (!m) {
        protocol_close(CloseReason::malformed, "malformed message header");
        return false;
    }
    auto compression = m->flags & flag_compression_mask;
    if ((m->flags & ~flag_compression_mask) || compression == flag_compression_mask) {
        protocol_close(CloseReason::malformed, "unsupported message flags");
        return false;
    }
    auto handler = host_->kinds.find(m->kind);
    if (!handler) {
        protocol_close(CloseReason::malformed,
                       "message kind " + std::to_string(int(m->kind)) + " is not spoken here");
        return false;
    }
    std::string unpacked;
    if (compression) {
        auto r =
            decompress(Compression(compression), m->payload, host_->limits.max_decompressed_bytes);
        if (!r) {
            protocol_close(r.error().code == Errc::limit_exceeded ? CloseReason::too_large
                                                                  : CloseReason::malformed,
                           r.error().message);
            return false;
        }
        unpacked = std::move(*r);
        m->payload = as_bytes(unpacked);
    }
    handler(*this, *m);
    return state_ != State::closed && !input_paused();
}

// --- closing ---

void Conn::protocol_close(CloseReason reason, std::string_view detail) {
    std::string who = remote_.address().to_string() + ":" + std::to_string(remote_.port());
    auto id = new_error_id();
    host_->log.warn(to_string(reason), "hawser: closing connection from " + who + ": " +
                                           std::string(to_string(reason)) + " (" +
                                           std::string(detail) + ", error id " + id + ")");
    // The peer learns the reason and the id, not what this side knows about it: before the
    // handshake the goodbye travels in clear, and details describe this side's configuration.
    goodbye_now(reason, peer_error_text(host_->send_error_details, describe(reason), detail, id));
}

void Conn::goodbye_now(CloseReason reason, std::string_view detail) {
    // Tell the peer why, best effort, then close without waiting for it. Before the handshake
    // completes there are no keys: the goodbye goes in clear.
    if (channel_.handshaking()) {
        std::vector<std::uint8_t> goodbye;
        encode_coded(goodbye, Kind::goodbye, 0, std::uint16_t(reason), detail);
        channel_.send_clear(goodbye);
    } else {
        send_coded(Kind::goodbye, 0, std::uint16_t(reason), detail);
    }
    if (state_ == State::closed) return;
    std::error_code ec;
    write_queued(ec);
    close(reason);
}

void Conn::close_gracefully(CloseReason reason, std::string_view text) {
    if (state_ == State::closed || state_ == State::closing) return;
    send_coded(Kind::goodbye, 0, std::uint16_t(reason), text.empty() ? to_string(reason) : text);
    if (state_ == State::closed) return;
    state_ = State::closing;
    reason_ = reason;
    deadline_ = loop_.now() + std::min<std::chrono::milliseconds>(host_->timeouts.shutdown,
                                                                  std::chrono::seconds(5));
    if (attached_) loop_.sooner(this, deadline_);
    if (channel_.nothing_to_send() && !flush_posted_) close(reason);
}

void Conn::begin_drain(Clock::time_point deadline) {
    if (state_ != State::open) return;
    state_ = State::draining;
    deadline_ = deadline;
    if (attached_) loop_.sooner(this, deadline_);
    drain_if_idle();
}

void Conn::drain_if_idle() {
    if (state_ == State::draining && handlers_in_flight_ == 0 && (!streams_ || streams_->empty()))
        close_gracefully(CloseReason::shutdown);
}

void Conn::close(CloseReason reason) {
    if (state_ == State::closed) return;
    if (!host_->is_client)
        host_->admission.closed(remote_.address(), state_ == State::handshaking,
                                admitted_to_overflow_);
    state_ = State::closed;
    reason_ = reason;
    open_.store(false);
    set_waiting_for_pace(false);     // it stays queued until the head, but no longer waits
    auto self = shared_from_this();  // the registry may hold the last reference
    if (attached_) loop_.detach(this);
    attached_ = false;
    host_->remove(*this, reason);  // counted before the peer can see the close
    transport_->close();
    channel_.clear_output();
    // Every pending call completes exactly once.
    if (calls_) {
        std::string why = "connection closed (" + std::string(to_string(reason)) + ")";
        for (auto& done : calls_->take_all())
            host_->run_user("call callback", [&] { done(Error{Errc::disconnected, why}); });
    }
    if (streams_)
        streams_->fail_all(Error{Errc::disconnected,
                                 "connection closed (" + std::string(to_string(reason)) + ")"});
    // Only connections the hooks saw open (they hold a pass) are announced as closing.
    if (auto hook = host_->hooks_on(loop_.index()).on_disconnect; hook && registered_)
        host_->run_user("on_disconnect hook", [&] { hook(Connection(self), reason); });
    if (registered_)
        for (auto& service : host_->services)
            if (service.closed) service.closed(id_);
    if (host_->on_closed) host_->on_closed(*this, reason);
    registered_ = {};  // last: shutdown returns once every connection let go of its pass
}

void Conn::on_sweep(Clock::time_point now) {
    try {
        check_timeouts(now);
    } catch (...) {  // still checked later: the sweep took it out of the wheel
        if (attached_) loop_.schedule(this, now + sweep_period);
        throw;
    }
    if (attached_) loop_.schedule(this, next_check(now));
}

Clock::time_point Conn::next_check(Clock::time_point now) const {
    const auto& t = host_->timeouts;
    auto next_period = now + sweep_period;
    if (state_ == State::handshaking)
        return channel_.handshaking() ? channel_.handshake_started() + host_->handshake_timeout
                                      : next_period;
    if (streams_) return next_period;  // big streams check their own stalls every period
    auto at = Clock::time_point::max();
    if (state_ == State::closing || state_ == State::draining) at = deadline_;
    if (congested() && rare_)
        at = std::min(at, rare_->over_soft_since + host_->limits.send_queue_soft_grace);
    if (t.idle.count() > 0 && !paused_by_user_) at = std::min(at, last_recv_ + t.idle);
    if (t.heartbeat.count() > 0 && state_ == State::open)
        at = std::min(at, std::max(last_recv_, deadline_) + t.heartbeat);
    return at == Clock::time_point::max() ? now + std::chrono::hours(1) : at;
}

void Conn::check_timeouts(Clock::time_point now) {
    if (state_ == State::closed) return;
    if (state_ == State::handshaking) {
        if (channel_.handshaking() &&
            now - channel_.handshake_started() >= host_->handshake_timeout) {
            host_->log.warn("handshake_timeout",
                            "hawser: handshake timed out with " + remote_.address().to_string());
            close(CloseReason::handshake_timeout);
        }
        return;
    }
    if ((state_ == State::closing) && now >= deadline_) return close(reason_);
    if (state_ == State::draining && now >= deadline_)
        return close_gracefully(CloseReason::shutdown);
    if (congested() && now - rare().over_soft_since >= host_->limits.send_queue_soft_grace) {
        // A goodbye would wait behind the backlog that is the reason for closing.
        host_->log.warn("slow_consumer",
                        "hawser: closing a slow consumer (send queue over its "
                        "soft limit for longer than its grace period)");
        return close(CloseReason::slow_consumer);
    }
    if (streams_) {
        streams_->on_sweep(now);
        if (state_ == State::closed) return;
    }
    auto quiet = now - last_recv_;
    const auto& t = host_->timeouts;
    // While input is paused for direct messages the peer is not quiet, we are not listening.
    if (t.idle.count() > 0 && quiet >= t.idle && !input_paused()) {
        // Bytes the peer sent wait unread: this loop is behind its sockets (a saturated
        // machine), the peer is not. It was heard now; the read that follows takes them.
        // (Asked only here: a heartbeat costs no system call, and a paused side's go out.)
        if (!transport_->input_waiting())
            return goodbye_now(CloseReason::idle_timeout, "idle timeout");
        last_recv_ = now;
        return;
    }
    if (t.heartbeat.count() > 0 && state_ == State::open && quiet >= t.heartbeat &&
        now - deadline_ >= t.heartbeat) {
        deadline_ = now;  // the last ping, while open
        send_message(Kind::ping, 0, {}, {});
    }
}

}  // namespace hawser::detail
