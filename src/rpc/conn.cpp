#include "rpc/conn.hpp"

#include <spdlog/spdlog.h>
#include <asio/write.hpp>
#include <cstring>

#include "rpc/command_stats.hpp"
#include "rpc/reply_slot.hpp"
#include "wire/compression.hpp"
#include "wire/encode.hpp"

namespace hawser::detail {

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

Conn::Conn(Loop& loop, std::shared_ptr<Host> host, asio::ip::tcp::socket socket,
           asio::ip::tcp::endpoint remote)
    : loop_(loop),
      host_(std::move(host)),
      socket_(std::move(socket)),
      remote_(remote),
      id_(Host::next_id(loop.index())),
      last_recv_(Clock::now()) {}

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
    host_->admission.handshake_done(remote_.address());
    handshake_.reset();
    state_ = State::closing;
    protocol_close(CloseReason::key_not_allowed, detail);
}

void Conn::become_open() {
    if (!host_->is_client) host_->admission.handshake_done(remote_.address());
    handshake_.reset();
    state_ = State::open;
    open_.store(true);
    host_->counters.handshakes.fetch_add(1, std::memory_order_relaxed);
    host_->add(shared_from_this());
    if (auto& hook = host_->hooks_on(loop_.index()).on_connect)
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

void Conn::direct_done() {
    --directs_in_flight_;
    if (state_ == State::closed || reading_ || input_paused()) return;
    // Deliver what the pause held back, then read again.
    while (decoder_.buffered() && !input_paused()) {
        auto before = decoder_.buffered();
        if (!on_frames(decoder_.resume(host_->frame, frame_sink()))) return;
        if (decoder_.buffered() == before) break;  // only an unfinished frame is left
    }
    wait_readable();
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

// --- incoming calls ---

// Runs a command's handler: here, or on the worker pool when the command asks for it. A big
// DataFrame is decoded on the worker pool first, so the IO thread never spends long on one
// payload; the handler then runs where it would have run anyway (docs/design.md).
template <class Run, class Fail>
void Conn::dispatch(const Commands::Entry& entry, std::span<const std::uint8_t> bytes, Run run,
                    Fail fail) {
    std::string payload(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const bool on_worker = entry.options.on_worker;
    const std::size_t size = payload.size();
    auto full = [&](const auto& fail) {
        host_->counters.overloaded.fetch_add(1, std::memory_order_relaxed);
        fail(Error{Errc::overloaded, "the server's worker queue is full; try again later"});
    };
    auto& workers = host_->runtime.workers();
    if (!is_stream(entry.kind) || size <= host_->limits.worker_decode_bytes) {
        if (!on_worker) return run(Argument(std::move(payload)));
        if (!workers.try_post(size, [run = std::move(run), p = std::move(payload)]() mutable {
                run(Argument(std::move(p)));
            }))
            full(fail);
        return;
    }
    // Payloads waiting for a worker are bounded per connection, like calls in flight.
    if (worker_decode_bytes_ + size > host_->limits.max_worker_decode_bytes)
        return fail(
            Error{Errc::overloaded, "too much data waiting to be decoded on this connection"});
    worker_decode_bytes_ += size;
    bool queued = workers.try_post(size, [self = weak_from_this(), host = host_, size, on_worker,
                                          payload = std::move(payload), run = std::move(run),
                                          fail]() mutable {
        auto frame = DataFrame::decode(payload, host->commands.decode_limits());
        std::string().swap(payload);
        auto conn = self.lock();
        if (!conn) return;  // closed meanwhile: nobody is waiting for the reply
        if (!frame || on_worker) {
            conn->loop().post([conn, size] { conn->worker_decode_bytes_ -= size; });
            if (!frame) return fail(frame.error());
            return run(Argument(std::move(*frame)));  // already where the handler wants to be
        }
        conn->loop().post([conn, size, run = std::move(run), frame = std::move(*frame)]() mutable {
            conn->worker_decode_bytes_ -= size;
            run(Argument(std::move(frame)));
        });
    });
    if (!queued) {
        worker_decode_bytes_ -= size;
        full(fail);
    }
}

void Conn::on_call(const MessageView& m) {
    const Commands::Entry* entry = host_->commands.find(m.name);
    if (!entry)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::unknown_command),
                          "no command named '" + std::string(m.name) + "'");
    if (entry->kind != m.kind)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::wrong_kind),
                          "'" + std::string(m.name) + "' is a " +
                              (is_stream(entry->kind) ? "stream" : "console") + " command");
    if (state_ != State::open)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::shutting_down),
                          "server is shutting down");
    if (handlers_in_flight_ >= host_->limits.max_pending_calls)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::too_many_pending),
                          "too many calls in flight on this connection");
    auto pass = host_->handlers.enter();
    if (!pass)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::shutting_down),
                          "server is shutting down");
    ++handlers_in_flight_;
    entry->stats->calls.fetch_add(1, std::memory_order_relaxed);
    entry->stats->bytes_in.fetch_add(m.payload.size(), std::memory_order_relaxed);
    // The slot keeps the host, and so `entry`, alive until the reply, wherever the handler runs.
    auto slot = std::make_shared<ReplySlot>(weak_from_this(), m.id, entry->stats, host_,
                                            std::move(*pass), entry->options.compress);
    auto run = [entry, slot,
                req = Request(Connection(shared_from_this()), entry->name)](Argument arg) mutable {
        try {
            entry->invoke(req, std::move(arg), slot);
        } catch (...) {
            reply_exception(slot, entry->name, std::current_exception());
        }
    };
    dispatch(*entry, m.payload, std::move(run),
             [slot](const Error& e) { reply_error(slot, e.code, e.message); });
}

void Conn::on_direct(const MessageView& m) {
    const Commands::Entry* entry = host_->commands.find(m.name);
    if (!entry || entry->kind != m.kind) {
        host_->log.warn("direct", "hawser: direct command '" + std::string(m.name) +
                                      "' is not registered as such; ignored");
        return;
    }
    if (state_ != State::open) return;
    auto pass = host_->handlers.enter();
    if (!pass) return;
    entry->stats->calls.fetch_add(1, std::memory_order_relaxed);
    entry->stats->bytes_in.fetch_add(m.payload.size(), std::memory_order_relaxed);
    auto failed = [entry, host = host_](std::string_view why) {
        entry->stats->errors.fetch_add(1, std::memory_order_relaxed);
        host->log.warn("direct-error:" + entry->name,
                       "hawser: direct command '" + entry->name + "' failed: " + std::string(why));
    };
    auto run = [entry, req = Request(Connection(shared_from_this()), entry->name), failed,
                pass = std::move(*pass)](Argument arg) mutable {
        auto started = Clock::now();
        try {
            entry->invoke(req, std::move(arg), nullptr);
        } catch (...) {
            failed(describe_exception(std::current_exception()));
        }
        entry->stats->handler_ns.record(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count());
    };
    if (!entry->options.on_worker)
        return dispatch(*entry, m.payload, std::move(run),
                        [failed](const Error& e) { failed(e.message); });
    // Direct messages for workers count against the same per-connection limit as calls; at the
    // limit this connection stops reading until one finishes (input_paused).
    ++directs_in_flight_;
    auto done = [weak = weak_from_this()] {
        if (auto c = weak.lock()) c->loop().post([c] { c->direct_done(); });
    };
    dispatch(
        *entry, m.payload,
        [run = std::move(run), done](Argument arg) mutable {
            run(std::move(arg));
            done();
        },
        [failed, done](const Error& e) {
            failed(e.message);
            done();
        });
}

void Conn::finish_call(std::uint64_t id, Errc code, const std::string& payload, bool compress) {
    if (handlers_in_flight_ > 0) --handlers_in_flight_;
    if (state_ == State::closed) return;
    if (code == Errc::ok) {
        if (header_size(id, {}) + payload.size() > host_->limits.max_frame_bytes)
            send_coded(Kind::error, id, std::uint16_t(Errc::limit_exceeded),
                       "reply over the frame size limit");
        else
            send_message(Kind::reply, id, {}, as_bytes(payload), compress);
    } else {
        send_coded(Kind::error, id, std::uint16_t(code), payload);
    }
    if (state_ == State::draining && handlers_in_flight_ == 0)
        close_gracefully(CloseReason::shutdown);
}

// --- outgoing calls ---

void Conn::start_call(std::uint64_t id, Kind kind, std::string_view command, std::string payload,
                      const CallOptions& options, RawCallback done) {
    assert(loop_.in_loop());
    auto fail = [&](Errc code, std::string message) {
        loop_.post([host = host_, done = std::move(done), e = Error{code, std::move(message)}] {
            host->run_user("call callback", [&] { done(e); });
        });
    };
    if (state_ != State::open) return fail(Errc::disconnected, "connection is closed");
    if (command.size() > max_command_name)
        return fail(Errc::invalid_argument, "command name over 255 bytes");
    if (header_size(id, command) + payload.size() > host_->limits.max_frame_bytes)
        return fail(Errc::limit_exceeded, "call over the frame size limit");
    if (calls_.size() >= host_->limits.max_pending_calls)
        return fail(Errc::too_many_pending, "too many calls in flight on this connection");
    auto timeout = options.timeout.count() > 0 ? options.timeout : host_->timeouts.call;
    auto deadline = loop_.add_deadline(Clock::now() + timeout, this, id);
    calls_.emplace(id, PendingCall{std::move(done), deadline});
    host_->counters.calls_out.fetch_add(1, std::memory_order_relaxed);
    send_message(kind, id, command, as_bytes(payload), options.compress);
}

void Conn::complete_call(std::uint64_t id, Result<std::string> result) {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        host_->counters.late_replies.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    auto done = std::move(it->second.done);
    loop_.remove_deadline(it->second.deadline);
    calls_.erase(it);
    host_->run_user("call callback", [&] { done(std::move(result)); });
}

void Conn::cancel_call(std::uint64_t id) {
    if (calls_.count(id)) complete_call(id, Error{Errc::cancelled, "cancelled by the caller"});
}

void Conn::expire_call(std::uint64_t id) {
    // The loop already dropped the deadline entry; forget the iterator before completing.
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    auto done = std::move(it->second.done);
    calls_.erase(it);
    host_->run_user("call callback", [&] {
        done(Error{Errc::timeout, "no reply before the deadline"});
    });
}

void Conn::on_reply(const MessageView& m) {
    if (m.kind == Kind::reply) {
        return complete_call(
            m.id, std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
    }
    auto coded = parse_coded(m.payload);
    if (!coded) return protocol_close(CloseReason::malformed, "error reply without a code");
    auto code = coded->first == 0 ? Errc::handler_error : Errc(coded->first);
    complete_call(m.id, Error{code, std::string(coded->second)});
}

Result<void> Conn::send_direct(Kind kind, std::string_view command, std::string_view payload,
                               bool compress) {
    if (state_ != State::open) return Error{Errc::disconnected, "connection is closed"};
    if (command.size() > max_command_name)
        return Error{Errc::invalid_argument, "command name over 255 bytes"};
    if (header_size(0, command) + payload.size() > host_->limits.max_frame_bytes)
        return Error{Errc::limit_exceeded, "message over the frame size limit"};
    send_message(kind, 0, command, as_bytes(payload), compress);
    return {};
}

// --- sending: append to the queue, write once per loop iteration ---

void Conn::send_message(Kind kind, std::uint64_t id, std::string_view name,
                        std::span<const std::uint8_t> payload, bool compress) {
    if (state_ == State::closed) return;
    auto& message = loop_.seal_scratch();
    encode_message(message, kind, id, name, payload, host_->transport, compress);
    send_prepared(message);
    if (message.capacity() > (1u << 20))
        std::vector<std::uint8_t>().swap(message);  // after a big one
}

void Conn::send_prepared(std::span<const std::uint8_t> message) {
    if (state_ == State::closed || state_ == State::handshaking) return;
    if (secure_) {
        auto rekeys = secure_->rekeys();
        bool sealed = false;
        change_queue([&] {
            out_.append([&](std::vector<std::uint8_t>& out) {
                sealed =
                    secure_->seal(message, out, host_->frame.mark, host_->transport, Clock::now());
            });
        });
        if (!sealed) return seal_failed();
        if (secure_->rekeys() != rekeys)
            host_->counters.rekeys.fetch_add(1, std::memory_order_relaxed);
    } else {
        change_queue([&] {
            out_.append([&](std::vector<std::uint8_t>& out) {
                append_frame(out, host_->frame.mark, message.size(), [&](std::uint8_t* p) {
                    std::memcpy(p, message.data(), message.size());
                });
            });
        });
    }
    host_->counters.frames_out.fetch_add(1, std::memory_order_relaxed);
    if (out_.unsent() > host_->limits.max_send_queue_bytes) {
        host_->log.warn("slow_consumer",
                        "hawser: closing a slow consumer (send queue over its limit)");
        return close(CloseReason::slow_consumer);
    }
    schedule_flush();
}

void Conn::seal_failed() {
    // Nothing of the failed message was queued, and nothing more can be sealed (not even a
    // goodbye): write what is already sealed, best effort, and close.
    host_->log.warn("internal_error", "hawser: closing connection with " +
                                          remote_.address().to_string() +
                                          ": a message could not be encrypted (internal_error)");
    std::error_code ec;
    write_queued(ec);
    close(CloseReason::internal_error);
}

void Conn::send_raw_frame(std::span<const std::uint8_t> body) {
    change_queue([&] {
        out_.append([&](std::vector<std::uint8_t>& out) {
            append_frame(out, host_->frame.mark, body.size(), [&](std::uint8_t* p) {
                if (!body.empty()) std::memcpy(p, body.data(), body.size());
            });
        });
    });
    host_->counters.frames_out.fetch_add(1, std::memory_order_relaxed);
    schedule_flush();
}

void Conn::send_coded(Kind kind, std::uint64_t id, std::uint16_t code, std::string_view text) {
    auto& message = loop_.seal_scratch();
    encode_coded(message, kind, id, code, text);
    send_prepared(message);
}

template <class F>
void Conn::change_queue(F&& f) {
    auto unsent = out_.unsent(), allocated = out_.allocated();
    f();
    // Unsigned wrap-around makes these the signed differences.
    host_->counters.send_queue_bytes.fetch_add(out_.unsent() - unsent, std::memory_order_relaxed);
    host_->counters.send_buffer_bytes.fetch_add(out_.allocated() - allocated,
                                                std::memory_order_relaxed);
    auto soft = host_->limits.send_queue_soft_bytes;
    bool over = soft != 0 && out_.unsent() > soft;
    if (over != congested()) {
        congested_.store(over, std::memory_order_relaxed);
        if (over) over_soft_since_ = Clock::now();
    }
}

std::size_t Conn::write_queued(std::error_code& ec) {
    std::size_t n = 0;
    change_queue([&] {
        n = out_.write([&](std::span<const asio::const_buffer> buffers) {
            return socket_.write_some(buffers, ec);
        });
    });
    host_->counters.bytes_out.fetch_add(n, std::memory_order_relaxed);
    return n;
}

void Conn::schedule_flush() {
    if (flush_posted_ || writing_) return;
    flush_posted_ = true;
    loop_.post([self = shared_from_this()] {
        self->flush_posted_ = false;
        self->flush();
    });
}

void Conn::flush() {
    if (state_ == State::closed || writing_) return;
    while (!out_.empty()) {
        std::error_code ec;
        write_queued(ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            writing_ = true;
            socket_.async_wait(asio::socket_base::wait_write,
                               [self = shared_from_this()](std::error_code ec) {
                                   self->writing_ = false;
                                   if (self->state_ == State::closed) return;
                                   if (ec) return self->close(CloseReason::io_error);
                                   self->flush();
                               });
            return;
        }
        if (ec) return close(CloseReason::io_error);
    }
    if (state_ == State::closing) close(reason_);
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
    if (!host_->is_client) host_->admission.closed(remote_.address(), state_ == State::handshaking);
    handshake_.reset();
    state_ = State::closed;
    reason_ = reason;
    open_.store(false);
    auto self = shared_from_this();  // the registry may hold the last reference
    loop_.detach(this);
    host_->remove(*this, reason);  // counted before the peer can see the close
    std::error_code ec;
    socket_.close(ec);
    change_queue([&] { out_.clear(); });
    // Every pending call completes exactly once.
    auto calls = std::move(calls_);
    calls_.clear();
    std::string why = "connection closed (" + std::string(to_string(reason)) + ")";
    for (auto& [id, call] : calls) {
        loop_.remove_deadline(call.deadline);
        host_->run_user("call callback", [&] { call.done(Error{Errc::disconnected, why}); });
    }
    if (auto& hook = host_->hooks_on(loop_.index()).on_disconnect)
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
    if (t.idle.count() > 0 && quiet >= t.idle)
        return goodbye_now(CloseReason::idle_timeout, "idle timeout");
    if (t.heartbeat.count() > 0 && state_ == State::open && quiet >= t.heartbeat &&
        now - last_ping_ >= t.heartbeat) {
        last_ping_ = now;
        send_message(Kind::ping, 0, {}, {});
    }
}

}  // namespace hawser::detail
