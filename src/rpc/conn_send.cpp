// Conn, sending: messages are encoded and handed to the channel, which seals (or frames) them
// straight into the send queue; the queue is written once per loop turn with one gather write
// and checked against the soft and hard limits.
// Thread affinity: the connection's loop.
#include <spdlog/spdlog.h>

#include "rpc/conn.hpp"
#include "wire/encode.hpp"
#include "wire/stream_messages.hpp"

namespace hawser::detail {

// --- sending: append to the queue, write once per loop iteration ---

void Conn::send_message(Kind kind, std::uint64_t id, std::string_view name,
                        std::span<const std::uint8_t> payload, bool compress) {
    if (state_ == State::closed) return;
    MessageParts message;  // the payload is copied once, into the piece that is sealed
    encode_message(message, kind, id, name, payload, host_->channel.transport, compress);
    send_prepared(message.head(), message.body());
}

void Conn::send_prepared(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body) {
    // Nothing before the channel has started either: it would go out unsealed.
    if (state_ == State::closed || !begun_ || channel_.handshaking()) return;
    bool sent = head.size() + body.size() > Channel::write_slice
                    ? channel_.send(head, body, loop_.now(), [this] { return write_early(); })
                    : channel_.send(head, body, loop_.now());
    if (!sent) return seal_failed();
    if (state_ == State::closed) return;
    check_queue();
    if (state_ != State::closed) schedule_flush();
}

void Conn::send_coded(Kind kind, std::uint64_t id, std::uint16_t code, std::string_view text) {
    MessageParts message;
    encode_coded(message, kind, id, code, text);
    send_prepared(message.head(), message.body());
}

void Conn::send_stream_data(std::uint64_t id, std::size_t size, const SecureTransport::Fill& fill,
                            bool compress) {
    if (state_ == State::closed) return;
    if (compress && host_->channel.transport.compression != Compression::none) {
        std::vector<std::uint8_t> plain(size);
        fill(plain, 0);
        return send_message(kind_stream_data, id, {}, plain, true);
    }
    std::uint8_t header[max_message_header];
    auto end = write_header(header, kind_stream_data, 0, id, {});
    if (!channel_.send_filled(std::span(header, end), size, fill, loop_.now()))
        return seal_failed();
    check_queue();  // the stream turn that called this writes it
}

bool Conn::stream_room() const noexcept {
    return (state_ == State::open || state_ == State::draining) && !writing_ &&
           channel_.unsent() < host_->limits.stream_chunk_bytes;
}

StreamTable& Conn::streams() {
    if (!streams_) {
        streams_ = std::make_unique<StreamTable>(*this);
        if (attached_) loop_.sooner(this, loop_.now());  // streams are checked every period
    }
    return *streams_;
}

void Conn::post_user(std::string_view what, std::function<void()> f) {
    loop_.post([host = host_, what, f = std::move(f)] { host->run_user(what, f); });
}

void Conn::refuse_call(std::function<void()> callback) {
    bool kept = false, post = false;
    {
        std::lock_guard lock(refused_mu_);
        if (refused_.size() < max_refused_calls) {
            refused_.push_back(std::move(callback));
            kept = true;
            post = !std::exchange(refused_posted_, true);
        }
    }
    if (!kept) return host_->run_user("call callback", callback);  // past the bound
    if (!post) return;
    loop_.post([self = shared_from_this()] {
        std::vector<std::function<void()>> refused;
        {
            std::lock_guard lock(self->refused_mu_);
            refused.swap(self->refused_);
            self->refused_posted_ = false;
        }
        for (auto& f : refused) self->host_->run_user("call callback", f);
    });
}

void Conn::seal_failed() {
    // The piece that failed was dropped unsent, and nothing more can be sealed (not even a
    // goodbye): write what is already sealed, best effort, and close.
    host_->log.warn("internal_error", "hawser: closing connection with " +
                                          remote_.address().to_string() +
                                          ": a message could not be encrypted (internal_error)");
    std::error_code ec;
    channel_.write([&](std::span<const asio::const_buffer> buffers) {
        return transport_->write_some(buffers, ec);
    });
    close(CloseReason::internal_error);
}

void Conn::check_queue() {
    auto unsent = channel_.unsent();
    if (unsent > host_->limits.max_send_queue_bytes) {
        host_->log.warn("slow_consumer",
                        "hawser: closing a slow consumer (send queue over its limit)");
        return close(CloseReason::slow_consumer);
    }
    auto soft = host_->limits.send_queue_soft_bytes;
    bool over = soft != 0 && unsent > soft;
    if (over != congested()) {
        congested_.store(over, std::memory_order_relaxed);
        if (over) {
            rare().over_soft_since = loop_.now();
            if (attached_)
                loop_.sooner(this, rare().over_soft_since + host_->limits.send_queue_soft_grace);
        }
    }
}

std::size_t Conn::write_queued(std::error_code& ec) {
    if (!channel_.seal()) {
        seal_failed();
        ec = asio::error::shut_down;
        return 0;
    }
    auto n = channel_.write([&](std::span<const asio::const_buffer> buffers) {
        return transport_->write_some(buffers, ec);
    });
    if (congested()) check_queue();
    return n;
}

bool Conn::write_once() {
    std::error_code ec;
    write_queued(ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        writing_ = true;  // the rest is written when the socket drains (on_writable)
        transport_->wait_writable(transport_user());
        return false;
    }
    if (ec) {
        transport_failed();  // a no-op if a failed seal closed it already
        return false;
    }
    return true;
}

bool Conn::write_early() {
    if (!writing_ && state_ != State::closed) write_once();
    return state_ != State::closed;
}

void Conn::schedule_flush() {
    if (flush_posted_ || writing_) return;
    if (in_input_) {
        flush_wanted_ = true;  // on_readable writes when the input is handled
        return;
    }
    flush_posted_ = true;
    loop_.post([self = shared_from_this()] {
        self->flush_posted_ = false;
        self->flush();
    });
}

void Conn::flush() {
    if (state_ == State::closed || writing_) return;
    while (!channel_.nothing_to_send())
        if (!write_once()) return;
    if (state_ == State::closing) return close(reason_);
    if (streams_ && streams_->has_ready()) wake_streams();  // the socket has room again
}

void Conn::wake_streams() {
    if (pump_queued_ || state_ == State::closed) return;
    pump_queued_ = true;
    loop_.post_background([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->stream_turn();
    });
}

void Conn::stream_turn() {
    pump_queued_ = false;
    if (state_ == State::closed || writing_ || !streams_) return;  // on_writable wakes them
    streams_->pump();  // fills the room calls left: about one chunk
    flush();           // and back in line if more is ready
}

void Conn::on_writable(std::error_code ec) {
    writing_ = false;
    if (state_ == State::closed) return;
    if (ec) return close(CloseReason::io_error);
    flush();
}

}  // namespace hawser::detail
