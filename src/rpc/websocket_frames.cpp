// WebSocketTransport, the frames (see websocket_transport.hpp): reading them through wslay,
// writing them (the server's unmasked, the client's masked by wslay), control frames, and
// wslay's callbacks. The upgrade and the dispatch by state are in websocket_transport.cpp.
// Thread affinity: the connection's loop.
#include "rpc/websocket_transport.hpp"

#include "core/utf8.hpp"

#include <sodium.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <array>
#include <asio/error.hpp>
#include <cstring>
#include <new>
#include <optional>

namespace hawser::detail {

namespace {

// Frames one read may go through: empty frames (pings, pongs) advance nothing, so without a
// cap a flood of them would keep the loop in one connection.
constexpr int max_frames_per_read = 256;

// The header of an unmasked final binary frame of `size` bytes (RFC 6455 5.2). Built here
// rather than by wslay so that it leaves in the same writev as every buffer of its payload.
std::string binary_header(std::uint64_t size) {
    std::string h(1, char(0x82));
    if (size < 126) {
        h += char(size);
    } else if (size < 65536) {
        h += char(126);
        h += char(size >> 8);
        h += char(size & 0xff);
    } else {
        h += char(127);
        for (int shift = 56; shift >= 0; shift -= 8) h += char((size >> shift) & 0xff);
    }
    return h;
}

}  // namespace

std::size_t WebSocketTransport::read_frames(std::span<std::uint8_t> into, std::error_code& ec) {
    {
        std::error_code ignored;  // a broken socket shows in the read below
        flush_out(ignored);
    }
    std::size_t n = 0;
    int frames_left = max_frames_per_read;
    more_buffered_ = false;
    while (n < into.size()) {
        if (carry_size_ > 0) {
            auto k = std::min(carry_size_, into.size() - n);
            std::memcpy(into.data() + n, carry_, k);
            n += k;
            carry_ += k;
            carry_size_ -= k;
            continue;
        }
        if (close_received_ || state_ != State::open) break;
        if (frames_left-- == 0) {
            more_buffered_ = true;  // the rest after the loop's other connections have had a turn
            break;
        }
        rx_ec_ = {};
        rx_read_ = false;
        wslay_frame_iocb chunk{};
        auto r = wslay_frame_recv(frames_, &chunk);
        if (r == WSLAY_ERR_WANT_READ) {
            if (rx_read_ && !rx_ec_) continue;  // bytes came, not yet a whole header
            break;
        }
        if (r < 0)
            return fail(1002,
                        "a malformed WebSocket frame (a control frame fragmented or over 125 "
                        "bytes, or a length in the wrong form)",
                        ec);
        if (auto violation = on_chunk(chunk)) return fail(violation->code, violation->why, ec);
    }
    if (n == into.size()) more_buffered_ = true;
    if (n > 0) {
        ec = {};
        return n;
    }
    if (state_ == State::failed)
        ec = std::make_error_code(std::errc::protocol_error);
    else if (close_received_)
        ec = asio::error::eof;
    else if (more_buffered_ || !rx_ec_)
        ec = asio::error::would_block;
    else
        ec = rx_ec_;
    return 0;
}

std::optional<WebSocketTransport::Violation> WebSocketTransport::on_chunk(
    const wslay_frame_iocb& chunk) {
    auto violation = [](std::uint16_t code, const char* why) {
        return std::optional<Violation>(Violation{code, why});
    };
    if (!rx_in_frame_) {
        if (chunk.rsv != 0)
            return violation(1002,
                             "a WebSocket frame sets reserved bits (no extension was agreed)");
        if (server_ && !chunk.mask)
            return violation(1002, "a client's WebSocket frame is not masked");
        if (!server_ && chunk.mask) return violation(1002, "a server's WebSocket frame is masked");
        switch (chunk.opcode) {
            case WSLAY_BINARY_FRAME:
                if (rx_in_message_)
                    return violation(1002, "a WebSocket message began inside another");
                rx_in_message_ = !chunk.fin;
                break;
            case WSLAY_CONTINUATION_FRAME:
                if (!rx_in_message_)
                    return violation(1002, "a WebSocket continuation frame without a message");
                rx_in_message_ = !chunk.fin;
                break;
            case WSLAY_TEXT_FRAME:
                return violation(1003,
                                 "a text WebSocket message (Hawser speaks binary messages only)");
            case WSLAY_CONNECTION_CLOSE:
            case WSLAY_PING:
            case WSLAY_PONG:
                control_in_.clear();
                break;
            default:
                return violation(1002, "a WebSocket frame with a reserved opcode");
        }
        rx_opcode_ = chunk.opcode;
        rx_left_ = chunk.payload_length;
        rx_in_frame_ = true;
    }
    rx_left_ -= chunk.data_length;
    if (!wslay_is_ctrl_frame(rx_opcode_)) {
        carry_ = chunk.data;
        carry_size_ = chunk.data_length;
    } else {
        control_in_.append(reinterpret_cast<const char*>(chunk.data), chunk.data_length);
    }
    if (rx_left_ > 0) return std::nullopt;
    rx_in_frame_ = false;
    if (rx_opcode_ == WSLAY_PING) {
        send_control(WSLAY_PONG, std::move(control_in_));
    } else if (rx_opcode_ == WSLAY_CONNECTION_CLOSE) {
        if (control_in_.size() == 1)
            return violation(1002, "a WebSocket close frame with a one-byte payload");
        if (control_in_.size() >= 2) {
            // Codes a peer may send (RFC 6455 7.4): not 1004-1006, 1015, nor unassigned ones.
            unsigned code = (std::uint8_t(control_in_[0]) << 8) | std::uint8_t(control_in_[1]);
            bool valid =
                (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
                (code >= 3000 && code <= 4999);
            if (!valid) return violation(1002, "a WebSocket close frame with a reserved code");
            // Its reason is text (RFC 6455 5.5.1, 8.1): not UTF-8 fails the connection with 1007.
            if (!detail::valid_utf8(std::string_view(control_in_).substr(2)))
                return violation(1007, "a WebSocket close reason that is not UTF-8");
        }
        // The peer's status code comes back (RFC 6455 5.5.1), without its reason; the end of
        // input then reads as the peer closing.
        close_received_ = true;
        failure_ = {CloseReason::peer_closed, {}};
        send_control(WSLAY_CONNECTION_CLOSE, control_in_.substr(0, 2));
    }
    control_in_ = {};
    return std::nullopt;
}

std::size_t WebSocketTransport::write_frames(std::span<const asio::const_buffer> buffers,
                                             std::error_code& ec) {
    if (!flush_out(ec)) return 0;
    if (close_sent_) {  // the flush let a waiting close go: nothing may follow it
        ec = asio::error::shut_down;
        return 0;
    }
    auto written = server_ ? write_unmasked(buffers, ec) : write_masked(buffers, ec);
    if (written > 0) {
        std::error_code ignored;  // a pong or close that waited for the frame to end
        flush_out(ignored);
    }
    return written;
}

std::size_t WebSocketTransport::write_unmasked(std::span<const asio::const_buffer> buffers,
                                               std::error_code& ec) {
    if (tx_left_ == 0) {
        std::uint64_t total = 0;
        for (const auto& b : buffers) total += b.size();
        if (total == 0) return 0;
        tx_frame_ = tx_left_ = std::min<std::uint64_t>(total, max_frame_payload);
        out_ = binary_header(tx_left_);  // out_ is empty: flushed above
        out_at_ = 0;
    }
    // The header still owed, then the payload, up to the frame's end, in one writev.
    std::array<asio::const_buffer, 32> list;
    std::size_t count = 0, owed = out_.size() - out_at_;
    if (owed > 0) list[count++] = asio::const_buffer(out_.data() + out_at_, owed);
    std::uint64_t room = tx_left_;
    for (const auto& b : buffers) {
        if (count == list.size() || room == 0) break;
        auto take = std::min<std::uint64_t>(b.size(), room);
        list[count++] = asio::const_buffer(b.data(), take);
        room -= take;
    }
    auto n = inner_->write_some({list.data(), count}, ec);
    auto header = std::min(n, owed);
    out_at_ += header;
    if (out_at_ == out_.size()) {
        out_.clear();
        out_at_ = 0;
    }
    auto payload = n - header;
    tx_left_ -= payload;
    if (payload > 0)
        ec = {};
    else if (!ec)
        ec = asio::error::would_block;  // only header bytes went: the socket is full
    return payload;
}

std::size_t WebSocketTransport::write_masked(std::span<const asio::const_buffer> buffers,
                                             std::error_code& ec) {
    std::size_t total = 0, written = 0;
    for (const auto& b : buffers) total += b.size();
    tx_ec_ = {};
    for (const auto& b : buffers) {
        auto* data = static_cast<const std::uint8_t*>(b.data());
        std::size_t left = b.size();
        while (left > 0) {
            if (tx_left_ == 0)
                tx_frame_ = tx_left_ = std::min<std::uint64_t>(total - written, max_frame_payload);
            wslay_frame_iocb frame{};
            frame.fin = 1;
            frame.opcode = WSLAY_BINARY_FRAME;
            frame.mask = 1;
            frame.payload_length = tx_frame_;
            frame.data = data;
            frame.data_length = std::min<std::uint64_t>(left, tx_left_);
            auto r = wslay_frame_send(frames_, &frame);
            if (r == WSLAY_ERR_WANT_WRITE) goto done;
            if (r < 0) {
                if (!tx_ec_) tx_ec_ = std::make_error_code(std::errc::io_error);
                goto done;
            }
            written += std::size_t(r);
            data += r;
            left -= std::size_t(r);
            tx_left_ -= std::uint64_t(r);
            if (std::size_t(r) < frame.data_length) goto done;  // the socket is full
            // A frame that ended lets a waiting control frame go before the next one.
            if (tx_left_ == 0 && control_opcode_ != 0 && (!flush_out(tx_ec_) || close_sent_))
                goto done;
        }
    }
done:
    if (written > 0)
        ec = {};
    else
        ec = tx_ec_ ? tx_ec_ : std::error_code(asio::error::would_block);
    return written;
}

void WebSocketTransport::send_control(std::uint8_t opcode, std::string payload) {
    if (close_sent_ || control_opcode_ == WSLAY_CONNECTION_CLOSE || !frames_) return;
    control_opcode_ = opcode;
    control_payload_ = std::move(payload);
    std::error_code ignored;
    flush_out(ignored);
}

void WebSocketTransport::frame_into_out(std::uint8_t opcode, std::string_view payload) {
    wslay_frame_iocb frame{};
    frame.fin = 1;
    frame.opcode = opcode;
    frame.mask = !server_;
    frame.payload_length = payload.size();
    frame.data = reinterpret_cast<const std::uint8_t*>(payload.data());
    frame.data_length = payload.size();
    capture_ = true;
    wslay_frame_send(frames_, &frame);
    capture_ = false;
}

bool WebSocketTransport::flush_out(std::error_code& ec) {
    ec = {};
    for (;;) {
        while (out_at_ < out_.size()) {
            asio::const_buffer rest(out_.data() + out_at_, out_.size() - out_at_);
            out_at_ += inner_->write_some({&rest, 1}, ec);
            if (ec) return false;
        }
        out_.clear();
        out_at_ = 0;
        // A waiting control frame goes once nothing else is owed and no frame is half sent.
        if (control_opcode_ == 0 || tx_left_ > 0 || !frames_) return true;
        frame_into_out(control_opcode_, control_payload_);
        if (control_opcode_ == WSLAY_CONNECTION_CLOSE) close_sent_ = true;
        control_opcode_ = 0;
        control_payload_ = {};
    }
}

// --- wslay's callbacks ---

ssize_t WebSocketTransport::on_send(const std::uint8_t* data, std::size_t size, int flags,
                                    void* self) {
    auto& t = *static_cast<WebSocketTransport*>(self);
    if (t.capture_ || (flags & WSLAY_MSG_MORE)) {  // a control frame, or a header: kept
        try {
            t.out_.append(reinterpret_cast<const char*>(data), size);
        } catch (const std::bad_alloc&) {  // no exception may cross wslay's C frames
            t.tx_ec_ = std::make_error_code(std::errc::not_enough_memory);
            return -1;
        }
        return ssize_t(size);
    }
    // Payload: whatever is owed goes first, in the same write.
    asio::const_buffer buffers[2] = {{t.out_.data() + t.out_at_, t.out_.size() - t.out_at_},
                                     {data, size}};
    std::size_t owed = buffers[0].size();
    std::span<const asio::const_buffer> list(owed ? buffers : buffers + 1, owed ? 2 : 1);
    auto n = t.inner_->write_some(list, t.tx_ec_);
    if (n < owed) {
        t.out_at_ += n;
        return -1;  // wslay: want write
    }
    t.out_.clear();
    t.out_at_ = 0;
    return n == owed ? -1 : ssize_t(n - owed);
}

ssize_t WebSocketTransport::on_recv(std::uint8_t* into, std::size_t size, int, void* self) {
    auto& t = *static_cast<WebSocketTransport*>(self);
    t.rx_read_ = true;
    if (t.leftover_at_ < t.leftover_.size()) return ssize_t(t.take_leftover({into, size}));
    auto n = t.inner_->read_some({into, size}, t.rx_ec_);
    if (n == 0) {
        if (!t.rx_ec_) t.rx_ec_ = asio::error::eof;
        return -1;  // wslay: want read
    }
    return ssize_t(n);
}

int WebSocketTransport::on_mask(std::uint8_t* into, std::size_t size, void*) {
    randombytes_buf(into, size);
    return 0;
}

}  // namespace hawser::detail
