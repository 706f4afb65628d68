// Conn, sending: messages are encoded, sealed (or framed in plaintext) straight into the send
// queue, and written once per loop turn with one gather write; the queue's size is reported to
// the host and checked against the soft and hard limits.
// Thread affinity: the connection's loop.
#include <spdlog/spdlog.h>
#include <cstring>

#include "rpc/conn.hpp"
#include "wire/encode.hpp"

namespace hawser::detail {

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

void Conn::clear_queue() {
    change_queue([&] { out_.clear(); });
}

}  // namespace hawser::detail
