#include "rpc/conn.hpp"

#include <spdlog/spdlog.h>
#include <asio/write.hpp>
#include <cstring>

#include "rpc/command_stats.hpp"
#include "rpc/reply_slot.hpp"

namespace hawser::detail {

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool is_abnormal(CloseReason r) {
    switch (r) {
        case CloseReason::bad_mark:
        case CloseReason::frame_too_large:
        case CloseReason::malformed:
        case CloseReason::slow_consumer:
        case CloseReason::protocol_error:
            return true;
        default:
            return false;
    }
}

}  // namespace

Conn::Conn(Loop& loop, std::shared_ptr<Host> host, asio::ip::tcp::socket socket)
    : loop_(loop),
      host_(std::move(host)),
      socket_(std::move(socket)),
      id_(Host::next_id(loop.index())),
      last_recv_(Clock::now()) {
    std::error_code ec;
    remote_ = socket_.remote_endpoint(ec);
}

Conn::~Conn() = default;

void Conn::start() {
    assert(loop_.in_loop());
    std::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    open_.store(true);
    loop_.attach(this);
    host_->add(shared_from_this());
    if (host_->on_connect) {
        try {
            host_->on_connect(Connection(shared_from_this()));
        } catch (const std::exception& e) {
            spdlog::error("hawser: on_connect hook threw: {}", e.what());
        }
    }
    if (state_ == State::closed) return;
    wait_readable();
    // Accepted just as the server began shutting down: it drains like the rest.
    if (host_->draining.load()) close_gracefully(CloseReason::shutdown);
}

// --- reading: wait for readability, then read into the loop's buffer ---

void Conn::wait_readable() {
    if (reading_ || state_ == State::closed) return;
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
        FrameError err =
            decoder_.feed(buffer.first(n), host_->frame,
                          [this](std::span<const std::uint8_t> body) { return on_frame(body); });
        if (state_ == State::closed) return;
        if (err == FrameError::bad_mark)
            return protocol_close(CloseReason::bad_mark, "wrong protocol mark");
        if (err == FrameError::too_large)
            return protocol_close(CloseReason::frame_too_large, "frame over the size limit");
        if (n < buffer.size()) break;
    }
    wait_readable();
}

bool Conn::on_frame(std::span<const std::uint8_t> body) {
    host_->counters.frames_in.fetch_add(1, std::memory_order_relaxed);
    auto m = parse_message(body);
    if (!m) {
        protocol_close(CloseReason::malformed, "malformed message header");
        return false;
    }
    if (m->flags & ~flags_supported) {
        protocol_close(CloseReason::malformed, "unsupported message flags");
        return false;
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
    return state_ != State::closed;
}

// --- incoming calls ---

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
    ++handlers_in_flight_;
    entry->stats->calls.fetch_add(1, std::memory_order_relaxed);
    entry->stats->bytes_in.fetch_add(m.payload.size(), std::memory_order_relaxed);
    auto slot = std::make_shared<ReplySlot>(weak_from_this(), m.id, entry->stats);
    std::string payload(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
    auto run = [entry, slot, req = Request(Connection(shared_from_this()), entry->name),
                payload = std::move(payload)]() mutable {
        try {
            entry->invoke(req, std::move(payload), slot);
        } catch (...) {
            slot->complete(Errc::handler_error, describe_exception(std::current_exception()));
        }
    };
    if (entry->options.on_worker)
        asio::post(host_->runtime.workers(), std::move(run));
    else
        run();
}

void Conn::on_direct(const MessageView& m) {
    const Commands::Entry* entry = host_->commands.find(m.name);
    if (!entry || entry->kind != m.kind) {
        host_->log.warn("direct", "hawser: direct command '" + std::string(m.name) +
                                      "' is not registered as such; ignored");
        return;
    }
    if (state_ != State::open) return;
    entry->stats->calls.fetch_add(1, std::memory_order_relaxed);
    entry->stats->bytes_in.fetch_add(m.payload.size(), std::memory_order_relaxed);
    auto run = [entry, req = Request(Connection(shared_from_this()), entry->name),
                payload =
                    std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()),
                host = host_]() mutable {
        auto started = Clock::now();
        try {
            entry->invoke(req, std::move(payload), nullptr);
        } catch (...) {
            entry->stats->errors.fetch_add(1, std::memory_order_relaxed);
            host->log.warn("direct-error:" + entry->name,
                           "hawser: direct command '" + entry->name +
                               "' threw: " + describe_exception(std::current_exception()));
        }
        entry->stats->handler_ns.record(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count());
    };
    if (entry->options.on_worker)
        asio::post(host_->runtime.workers(), std::move(run));
    else
        run();
}

void Conn::finish_call(std::uint64_t id, Errc code, const std::string& payload) {
    if (handlers_in_flight_ > 0) --handlers_in_flight_;
    if (state_ == State::closed) return;
    if (code == Errc::ok) {
        if (header_size(id, {}) + payload.size() > host_->frame.max_body)
            send_coded(Kind::error, id, std::uint16_t(Errc::limit_exceeded),
                       "reply over the frame size limit");
        else
            send_message(Kind::reply, id, {}, as_bytes(payload));
    } else {
        send_coded(Kind::error, id, std::uint16_t(code), payload);
    }
    if (state_ == State::draining && handlers_in_flight_ == 0)
        close_gracefully(CloseReason::shutdown);
}

// --- outgoing calls ---

void Conn::start_call(std::uint64_t id, Kind kind, std::string_view command, std::string payload,
                      std::chrono::milliseconds timeout, RawCallback done) {
    assert(loop_.in_loop());
    auto fail = [&](Errc code, std::string message) {
        loop_.post([done = std::move(done), e = Error{code, std::move(message)}] { done(e); });
    };
    if (state_ != State::open) return fail(Errc::disconnected, "connection is closed");
    if (command.size() > max_command_name)
        return fail(Errc::invalid_argument, "command name over 255 bytes");
    if (header_size(id, command) + payload.size() > host_->frame.max_body)
        return fail(Errc::limit_exceeded, "call over the frame size limit");
    if (calls_.size() >= host_->limits.max_pending_calls)
        return fail(Errc::too_many_pending, "too many calls in flight on this connection");
    if (timeout.count() <= 0) timeout = host_->timeouts.call;
    auto deadline = loop_.add_deadline(Clock::now() + timeout, this, id);
    calls_.emplace(id, PendingCall{std::move(done), deadline});
    host_->counters.calls_out.fetch_add(1, std::memory_order_relaxed);
    send_message(kind, id, command, as_bytes(payload));
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
    done(std::move(result));
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
    done(Error{Errc::timeout, "no reply before the deadline"});
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

Result<void> Conn::send_direct(Kind kind, std::string_view command, std::string_view payload) {
    if (state_ != State::open) return Error{Errc::disconnected, "connection is closed"};
    if (command.size() > max_command_name)
        return Error{Errc::invalid_argument, "command name over 255 bytes"};
    if (header_size(0, command) + payload.size() > host_->frame.max_body)
        return Error{Errc::limit_exceeded, "message over the frame size limit"};
    send_message(kind, 0, command, as_bytes(payload));
    return {};
}

// --- sending: append to the queue, write once per loop iteration ---

void Conn::send_message(Kind kind, std::uint64_t id, std::string_view name,
                        std::span<const std::uint8_t> payload) {
    if (state_ == State::closed) return;
    std::size_t body = header_size(id, name) + payload.size();
    append_frame(out_, host_->frame.mark, body, [&](std::uint8_t* p) {
        p = write_header(p, kind, 0, id, name);
        if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
    });
    host_->counters.frames_out.fetch_add(1, std::memory_order_relaxed);
    if (out_.size() - out_offset_ > host_->limits.max_send_queue_bytes) {
        host_->log.warn("slow_consumer",
                        "hawser: closing a slow consumer (send queue over its limit)");
        return close(CloseReason::slow_consumer);
    }
    schedule_flush();
}

void Conn::send_coded(Kind kind, std::uint64_t id, std::uint16_t code, std::string_view text) {
    if (text.size() > 1024) text = text.substr(0, 1024);
    std::string payload(2 + text.size(), '\0');
    payload[0] = static_cast<char>(code >> 8);
    payload[1] = static_cast<char>(code & 0xff);
    std::memcpy(payload.data() + 2, text.data(), text.size());
    send_message(kind, id, {}, as_bytes(payload));
}

void Conn::send_encoded(const std::vector<std::uint8_t>& frames) {
    if (state_ != State::open) return;
    out_.insert(out_.end(), frames.begin(), frames.end());
    host_->counters.frames_out.fetch_add(1, std::memory_order_relaxed);
    if (out_.size() - out_offset_ > host_->limits.max_send_queue_bytes)
        return close(CloseReason::slow_consumer);
    schedule_flush();
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
    while (out_offset_ < out_.size()) {
        std::error_code ec;
        std::size_t n = socket_.write_some(
            asio::buffer(out_.data() + out_offset_, out_.size() - out_offset_), ec);
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
        host_->counters.bytes_out.fetch_add(n, std::memory_order_relaxed);
        out_offset_ += n;
    }
    std::vector<std::uint8_t>().swap(out_);  // an idle connection keeps no send buffer
    out_offset_ = 0;
    if (state_ == State::closing) close(reason_);
}

// --- closing ---

void Conn::protocol_close(CloseReason reason, std::string_view detail) {
    std::string who = remote_.address().to_string() + ":" + std::to_string(remote_.port());
    host_->log.warn(to_string(reason), "hawser: closing connection from " + who + ": " +
                                           std::string(to_string(reason)) + " (" +
                                           std::string(detail) + ")");
    // Tell the peer why, best effort, then close without waiting for it.
    send_coded(Kind::goodbye, 0, std::uint16_t(reason), detail);
    if (state_ == State::closed) return;
    std::error_code ec;
    socket_.write_some(asio::buffer(out_.data() + out_offset_, out_.size() - out_offset_), ec);
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
    if (out_offset_ == out_.size() && !flush_posted_) close(reason);
}

void Conn::begin_drain(Clock::time_point deadline) {
    if (state_ != State::open) return;
    state_ = State::draining;
    deadline_ = deadline;
    if (handlers_in_flight_ == 0) close_gracefully(CloseReason::shutdown);
}

void Conn::close(CloseReason reason) {
    if (state_ == State::closed) return;
    state_ = State::closed;
    reason_ = reason;
    open_.store(false);
    std::error_code ec;
    socket_.close(ec);
    std::vector<std::uint8_t>().swap(out_);
    out_offset_ = 0;
    auto self = shared_from_this();  // the registry may hold the last reference
    loop_.detach(this);
    host_->remove(*this, reason);
    if (is_abnormal(reason))
        spdlog::debug("hawser: connection {} closed: {}", id_, to_string(reason));
    // Every pending call completes exactly once.
    auto calls = std::move(calls_);
    calls_.clear();
    std::string why = "connection closed (" + std::string(to_string(reason)) + ")";
    for (auto& [id, call] : calls) {
        loop_.remove_deadline(call.deadline);
        call.done(Error{Errc::disconnected, why});
    }
    if (host_->on_disconnect) {
        try {
            host_->on_disconnect(Connection(self), reason);
        } catch (const std::exception& e) {
            spdlog::error("hawser: on_disconnect hook threw: {}", e.what());
        }
    }
    if (host_->on_closed) host_->on_closed(*this, reason);
}

void Conn::on_sweep(Clock::time_point now) {
    if (state_ == State::closed) return;
    if ((state_ == State::closing) && now >= deadline_) return close(reason_);
    if (state_ == State::draining && now >= deadline_)
        return close_gracefully(CloseReason::shutdown);
    auto quiet = now - last_recv_;
    const auto& t = host_->timeouts;
    if (t.idle.count() > 0 && quiet >= t.idle) {
        send_coded(Kind::goodbye, 0, std::uint16_t(CloseReason::idle_timeout), "idle timeout");
        std::error_code ec;
        socket_.write_some(asio::buffer(out_.data() + out_offset_, out_.size() - out_offset_), ec);
        return close(CloseReason::idle_timeout);
    }
    if (t.heartbeat.count() > 0 && state_ == State::open && quiet >= t.heartbeat &&
        now - last_ping_ >= t.heartbeat) {
        last_ping_ = now;
        send_message(Kind::ping, 0, {}, {});
    }
}

}  // namespace hawser::detail
