// Conn, life and input: the handshake, reading into the loop's buffer, frames and messages up to
// dispatch by kind, the idle/heartbeat sweep, and closing. Calls are in conn_calls.cpp, the
// send path in conn_send.cpp.
// Thread affinity: the connection's loop.
#include "rpc/conn.hpp"

#include <spdlog/spdlog.h>
#include <asio/write.hpp>
#include <cstring>

#include "rpc/command_stats.hpp"
#include "rpc/reply_slot.hpp"
#include "wire/compression.hpp"
#include "wire/encode.hpp"

namespace hawser::detail {

Conn::Conn(Loop& loop, std::shared_ptr<Host> host, asio::ip::tcp::socket socket,
           asio::ip::tcp::endpoint remote, bool admitted_to_overflow)
    : loop_(loop),
      host_(std::move(host)),
      socket_(std::move(socket)),
      remote_(remote),
      id_(Host::next_id(loop.index())),
      last_recv_(Clock::now()),
      admitted_to_overflow_(admitted_to_overflow) {}

Conn::~Conn() = default;

void Conn::start() {
    assert(loop_.in_loop());
    std::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    loop_.attach(this);
    handshake_ = std::make_unique<Handshaking>();
    handshake_->started = Clock::now();
    if (host_->is_client) {
        handshake_->client = std::make_unique<ClientHandshake>(
            ClientHandshake::Config{host_->frame.mark, host_->transport.insecure_plaintext,
                                    host_->server_key, host_->client_static});
        send_raw_frame(handshake_->client->hello());
    } else {
        handshake_->server = std::make_unique<ServerHandshake>(
            host_->frame.mark, host_->transport.insecure_plaintext, host_->static_keys);
    }
    if (state_ != State::closed) wait_readable();
}

void Conn::on_handshake_frame(std::span<const std::uint8_t> body) {
    auto step = handshake_->client ? handshake_->client->on_frame(body)
                                   : handshake_->server->on_frame(body);
    if (!step) return protocol_close(CloseReason::handshake_failed, step.error().message);
    if (!step->reply.empty()) send_raw_frame(step->reply);
    if (!step->done) return;
    auto now = Clock::now();
    if (handshake_->client) {
        secure_ = handshake_->client->transport(now);
        if (secure_ && !host_->server_key) {
            // Trust on first use: pin what this server proved it holds, for every later connect.
            host_->server_key = handshake_->client->server_key();
            spdlog::warn("hawser: trusting server key {} on first use",
                         noise::to_hex(*host_->server_key));
        }
        if (auto key = handshake_->client->server_key(); key && secure_)
            peer_static_ = std::make_unique<const noise::Key>(*key);
    } else {
        secure_ = handshake_->server->transport(now);
        auto key = handshake_->server->client_key();
        if (key) peer_static_ = std::make_unique<const noise::Key>(*key);
        if (secure_ && !host_->client_key_policy.admits(key)) return refuse_client_key();
    }
    become_open();
}

void Conn::refuse_client_key() {
    // The handshake is complete, so the goodbye is sealed: the client learns the reason from
    // the server it authenticated, and nobody on the path can forge it. The connection was
    // never open: nothing registered it and no hook saw it open.
    std::string detail = peer_static_ ? "client key " + noise::to_hex(*peer_static_) +
                                            " is not on the server's allow-list"
                                      : "this server requires a client key";
    host_->admission.handshake_done(remote_.address(), admitted_to_overflow_);
    handshake_.reset();
    state_ = State::closing;
    protocol_close(CloseReason::key_not_allowed, detail);
}

void Conn::become_open() {
    if (!host_->is_client)
        host_->admission.handshake_done(remote_.address(), admitted_to_overflow_);
    handshake_.reset();
    state_ = State::open;
    open_.store(true);
    host_->counters.handshakes.fetch_add(1, std::memory_order_relaxed);
    host_->add(shared_from_this());
    // A copy: a hook may replace itself (a Client's hooks may change at any time).
    if (auto hook = host_->hooks_on(loop_.index()).on_connect)
        host_->run_user("on_connect hook", [&] { hook(Connection(shared_from_this())); });
    if (state_ != State::open) return;
    if (host_->on_opened) host_->on_opened(*this);
    // Accepted just as the server began shutting down: it drains like the rest.
    if (host_->draining.load()) close_gracefully(CloseReason::shutdown);
}

// --- reading: wait for readability, then read into the loop's buffer ---

void Conn::wait_readable() {
    if (reading_ || state_ == State::closed) return;
    if (input_paused()) return;  // direct_done() resumes
    reading_ = true;
    socket_.async_wait(asio::socket_base::wait_read,
                       [self = shared_from_this()](std::error_code ec) { self->on_readable(ec); });
}

void Conn::on_readable(std::error_code ec) {
    reading_ = false;
    if (state_ == State::closed) return;
    if (ec) return close(CloseReason::io_error);
    auto buffer = loop_.read_buffer();
    // A few reads per wakeup at most, so one busy peer cannot starve the rest of the loop.
    for (int round = 0; round < 4; ++round) {
        std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) break;
        if (ec == asio::error::eof) return close(CloseReason::peer_closed);
        if (ec) return close(CloseReason::io_error);
        last_recv_ = Clock::now();
        host_->counters.bytes_in.fetch_add(n, std::memory_order_relaxed);
        if (!on_frames(decoder_.feed(buffer.first(n), host_->frame, frame_sink()))) return;
        if (input_paused()) return;  // direct_done() resumes
        if (n < buffer.size()) break;
    }
    wait_readable();
}

bool Conn::on_frames(FrameError err) {
    if (state_ == State::closed) return false;
    if (err == FrameError::bad_mark) {
        protocol_close(CloseReason::bad_mark, "wrong protocol mark");
        return false;
    }
    if (err == FrameError::too_large) {
        protocol_close(CloseReason::frame_too_large, "frame over the size limit");
        return false;
    }
    return true;
}
bool Conn::on_frame(std::span<const std::uint8_t> body) {
    host_->counters.frames_in.fetch_add(1, std::memory_order_relaxed);
    if (state_ == State::handshaking) {
        on_handshake_frame(body);
    } else if (!secure_) {
        on_message(body);
    } else {
        std::span<const std::uint8_t> message;
        auto rekeys = secure_->rekeys();
        switch (secure_->open(body, host_->limits.max_frame_bytes, loop_.open_scratch(), message)) {
            case SecureTransport::Opened::need_more:
                break;
            case SecureTransport::Opened::message:
                on_message(message);
                break;
            case SecureTransport::Opened::bad_mac:
                // Nothing from this peer can be trusted any more, not even a goodbye.
                host_->log.warn("bad_mac", "hawser: closing connection from " +
                                               remote_.address().to_string() +
                                               ": a message failed authentication (bad_mac)");
                close(CloseReason::bad_mac);
                break;
            case SecureTransport::Opened::too_large:
                protocol_close(CloseReason::too_large, "message over the size limit");
                break;
            case SecureTransport::Opened::malformed:
                protocol_close(CloseReason::malformed, "malformed transport message");
                break;
        }
        if (secure_ && secure_->rekeys() != rekeys)
            host_->counters.rekeys.fetch_add(1, std::memory_order_relaxed);
    }
    return state_ != State::closed && !input_paused();
}

void Conn::on_message(std::span<const std::uint8_t> body) {
    auto m = parse_message(body);
    if (!m) return protocol_close(CloseReason::malformed, "malformed message header");
    auto compression = m->flags & flag_compression_mask;
    if ((m->flags & ~flag_compression_mask) || compression == flag_compression_mask)
        return protocol_close(CloseReason::malformed, "unsupported message flags");
    std::string unpacked;
    if (compression) {
        auto r =
            decompress(Compression(compression), m->payload, host_->limits.max_decompressed_bytes);
        if (!r)
            return protocol_close(r.error().code == Errc::limit_exceeded ? CloseReason::too_large
                                                                         : CloseReason::malformed,
                                  r.error().message);
        unpacked = std::move(*r);
        m->payload = as_bytes(unpacked);
    }
    switch (m->kind) {
        case Kind::call_console:
        case Kind::call_stream:
            on_call(*m);
            break;
        case Kind::direct_console:
        case Kind::direct_stream:
            on_direct(*m);
            break;
        case Kind::reply:
        case Kind::error:
            on_reply(*m);
            break;
        case Kind::ping:
            send_message(Kind::pong, m->id, {}, {});
            break;
        case Kind::pong:
            break;
        case Kind::goodbye: {
            auto coded = parse_coded(m->payload);
            auto reason = coded && coded->first < close_reason_count ? CloseReason(coded->first)
                                                                     : CloseReason::peer_closed;
            close(reason == CloseReason::none ? CloseReason::peer_closed : reason);
            break;
        }
    }
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
    if (state_ == State::handshaking) {
        std::vector<std::uint8_t> goodbye;
        encode_coded(goodbye, Kind::goodbye, 0, std::uint16_t(reason), detail);
        send_raw_frame(goodbye);
    } else {
        send_coded(Kind::goodbye, 0, std::uint16_t(reason), detail);
    }
    if (state_ == State::closed) return;
    std::error_code ec;
    write_queued(ec);
    close(reason);
}

void Conn::close_gracefully(CloseReason reason) {
    if (state_ == State::closed || state_ == State::closing) return;
    send_coded(Kind::goodbye, 0, std::uint16_t(reason), to_string(reason));
    if (state_ == State::closed) return;
    state_ = State::closing;
    reason_ = reason;
    deadline_ = Clock::now() + std::min<std::chrono::milliseconds>(host_->timeouts.shutdown,
                                                                   std::chrono::seconds(5));
    if (out_.empty() && !flush_posted_) close(reason);
}

void Conn::begin_drain(Clock::time_point deadline) {
    if (state_ != State::open) return;
    state_ = State::draining;
    deadline_ = deadline;
    if (handlers_in_flight_ == 0) close_gracefully(CloseReason::shutdown);
}

void Conn::close(CloseReason reason) {
    if (state_ == State::closed) return;
    if (!host_->is_client)
        host_->admission.closed(remote_.address(), state_ == State::handshaking,
                                admitted_to_overflow_);
    handshake_.reset();
    state_ = State::closed;
    reason_ = reason;
    open_.store(false);
    auto self = shared_from_this();  // the registry may hold the last reference
    loop_.detach(this);
    host_->remove(*this, reason);  // counted before the peer can see the close
    std::error_code ec;
    socket_.close(ec);
    clear_queue();
    // Every pending call completes exactly once.
    auto calls = std::move(calls_);
    calls_.clear();
    std::string why = "connection closed (" + std::string(to_string(reason)) + ")";
    for (auto& [id, call] : calls) {
        loop_.remove_deadline(call.deadline);
        host_->run_user("call callback", [&] { call.done(Error{Errc::disconnected, why}); });
    }
    if (auto hook = host_->hooks_on(loop_.index()).on_disconnect)
        host_->run_user("on_disconnect hook", [&] { hook(Connection(self), reason); });
    if (host_->on_closed) host_->on_closed(*this, reason);
}

void Conn::on_sweep(Clock::time_point now) {
    if (state_ == State::closed) return;
    if (state_ == State::handshaking) {
        if (now - handshake_->started >= host_->handshake_timeout) {
            host_->log.warn("handshake_timeout",
                            "hawser: handshake timed out with " + remote_.address().to_string());
            close(CloseReason::handshake_timeout);
        }
        return;
    }
    if ((state_ == State::closing) && now >= deadline_) return close(reason_);
    if (state_ == State::draining && now >= deadline_)
        return close_gracefully(CloseReason::shutdown);
    if (congested() && now - over_soft_since_ >= host_->limits.send_queue_soft_grace) {
        // A goodbye would wait behind the backlog that is the reason for closing.
        host_->log.warn("slow_consumer",
                        "hawser: closing a slow consumer (send queue over its "
                        "soft limit for longer than its grace period)");
        return close(CloseReason::slow_consumer);
    }
    auto quiet = now - last_recv_;
    const auto& t = host_->timeouts;
    // While input is paused for direct messages the peer is not quiet, we are not listening.
    if (t.idle.count() > 0 && quiet >= t.idle && !input_paused())
        return goodbye_now(CloseReason::idle_timeout, "idle timeout");
    if (t.heartbeat.count() > 0 && state_ == State::open && quiet >= t.heartbeat &&
        now - last_ping_ >= t.heartbeat) {
        last_ping_ = now;
        send_message(Kind::ping, 0, {}, {});
    }
}

}  // namespace hawser::detail