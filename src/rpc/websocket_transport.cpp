// WebSocketTransport (see websocket_transport.hpp): readiness, dispatch by state, the upgrade
// (sniffing, the request or the answer, refusals), closing. The frames are in
// websocket_frames.cpp. Thread affinity: the connection's loop.
//
// Bytes owed to the socket besides the channel's (the upgrade answer, one control frame, the
// rest of a frame header) go out at the start of the next read or write, and at the end of
// each write. Only a socket whose peer stopped reading cannot take them; a pong then replaces
// the one before it instead of piling up, and the idle timeout ends such a connection.
#include "rpc/websocket_transport.hpp"

#include <wslay/wslay.h>

#include <algorithm>
#include <array>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <cstring>
#include <new>
#include <optional>

namespace hawser::detail {

namespace {

constexpr std::string_view get_prefix = "GET ";
constexpr std::size_t max_answer_bytes = 8192;  // the server's 101, as a client reads it

std::string close_payload(std::uint16_t code) {
    return {char(code >> 8), char(code & 0xff)};
}

}  // namespace

WebSocketTransport::WebSocketTransport(asio::io_context& context, std::unique_ptr<Transport> inner,
                                       ServerSide side)
    : context_(context),
      inner_(std::move(inner)),
      server_(true),
      state_(side.sniff ? State::detecting : State::upgrading),
      policy_(std::move(side.policy)) {}

WebSocketTransport::WebSocketTransport(asio::io_context& context, std::unique_ptr<Transport> inner,
                                       ClientSide side)
    : context_(context),
      inner_(std::move(inner)),
      server_(false),
      state_(State::requesting),
      key_(http::new_key()) {
    out_ = http::request(side.host, side.path, side.origin, key_);
}

WebSocketTransport::~WebSocketTransport() {
    if (frames_) wslay_frame_context_free(frames_);
}

// --- readiness ---

void WebSocketTransport::wait_readable(std::shared_ptr<TransportUser> user) {
    bool leftover = leftover_at_ < leftover_.size();
    bool ready = state_ == State::failed || (state_ == State::native && leftover) ||
                 (state_ == State::open &&
                  (more_buffered_ || carry_size_ > 0 || leftover || close_received_));
    // Input already read from the socket waits here, not there: the socket may stay quiet.
    if (ready)
        asio::post(context_, [user = std::move(user)] { user->on_readable({}); });
    else
        inner_->wait_readable(std::move(user));
}

void WebSocketTransport::wait_writable(std::shared_ptr<TransportUser> user) {
    inner_->wait_writable(std::move(user));
}

// --- reading ---

bool WebSocketTransport::ended(std::error_code& ec) const {
    if (state_ == State::failed)
        ec = std::make_error_code(std::errc::protocol_error);
    else if (state_ == State::closed)
        ec = asio::error::bad_descriptor;
    else
        return false;
    return true;
}

std::size_t WebSocketTransport::read_some(std::span<std::uint8_t> into, std::error_code& ec) {
    if (ended(ec)) return 0;
    switch (state_) {
        case State::open:
            return read_frames(into, ec);
        case State::native:
            if (leftover_at_ < leftover_.size()) {
                ec = {};
                return take_leftover(into);
            }
            return inner_->read_some(into, ec);
        default:
            return read_before_open(into, ec);
    }
}

void WebSocketTransport::fill_head(std::error_code& ec) {
    // Sniffing reads no more than it takes to tell: a native connection's bytes then go
    // straight to the loop's buffer.
    const std::size_t max = state_ == State::detecting ? get_prefix.size()
                            : server_                  ? policy_->max_request_bytes
                                                       : max_answer_bytes;
    std::array<std::uint8_t, 4096> chunk;
    ec = {};
    while (head_.size() < max) {
        auto n = inner_->read_some({chunk.data(), std::min(chunk.size(), max - head_.size())}, ec);
        head_.append(reinterpret_cast<const char*>(chunk.data()), n);
        if (ec) break;
    }
}

std::size_t WebSocketTransport::read_before_open(std::span<std::uint8_t> into,
                                                 std::error_code& ec) {
    if (state_ == State::requesting) {
        if (!flush_out(ec) && ec != asio::error::would_block) return 0;
        fill_head(ec);
        auto answer = http::read_response(head_, key_, max_answer_bytes);
        if (!answer) return fail(1002, answer.error().message, ec);
        if (!*answer) {
            if (!ec) ec = asio::error::would_block;
            return 0;
        }
        opened(**answer);
        return read_frames(into, ec);
    }

    if (state_ == State::detecting) {
        fill_head(ec);
        std::string_view seen = head_;
        bool decided =
            seen.size() >= get_prefix.size() || seen != get_prefix.substr(0, seen.size());
        if (!decided) {
            if (!ec) ec = asio::error::would_block;
            return 0;
        }
        if (seen.substr(0, get_prefix.size()) != get_prefix) {
            // A native connection: what was read is its first bytes.
            state_ = State::native;
            leftover_ = std::move(head_);
            head_ = {};
            out_ = std::move(early_);  // written before the connection was told apart
            early_ = {};
            std::error_code ignored;
            flush_out(ignored);
            ec = {};
            return take_leftover(into);
        }
        state_ = State::upgrading;
    }

    fill_head(ec);
    auto outcome = http::read_request(head_, *policy_, &head_scan_);
    using Outcome = http::RequestOutcome::State;
    if (outcome.state == Outcome::incomplete) {
        if (!ec) ec = asio::error::would_block;
        return 0;
    }
    if (outcome.state == Outcome::refused) return refuse(outcome.status, outcome.reason, ec);
    out_ = http::accept_response(outcome.upgrade);
    opened(outcome.size);
    return read_frames(into, ec);
}

std::size_t WebSocketTransport::refuse(int status, const std::string& reason, std::error_code& ec) {
    out_ = http::refusal_response(status, reason);
    std::error_code ignored;
    flush_out(ignored);
    // Closing a socket with unread input sends a reset, which can overtake the answer.
    std::array<std::uint8_t, 4096> discard;
    for (int i = 0; i < 16 && inner_->read_some(discard, ignored) > 0 && !ignored; ++i) {
    }
    return fail(0, "refused a WebSocket upgrade (" + std::to_string(status) + "): " + reason, ec);
}

void WebSocketTransport::opened(std::size_t head_size) {
    leftover_ = head_.substr(head_size);
    leftover_at_ = 0;
    head_ = {};
    wslay_frame_callbacks callbacks{&WebSocketTransport::on_send, &WebSocketTransport::on_recv,
                                    &WebSocketTransport::on_mask};
    if (wslay_frame_context_init(&frames_, &callbacks, this) != 0) throw std::bad_alloc();
    state_ = State::open;
    // One frame for what was written meanwhile, after the upgrade in out_: the socket has
    // taken nothing else yet.
    if (!early_.empty()) frame_into_out(WSLAY_BINARY_FRAME, early_);
    early_ = {};
    std::error_code ignored;
    flush_out(ignored);
}

std::size_t WebSocketTransport::take_leftover(std::span<std::uint8_t> into) {
    auto n = std::min(into.size(), leftover_.size() - leftover_at_);
    std::memcpy(into.data(), leftover_.data() + leftover_at_, n);
    leftover_at_ += n;
    if (leftover_at_ == leftover_.size()) {
        leftover_ = {};
        leftover_at_ = 0;
    }
    return n;
}

// --- writing ---

std::size_t WebSocketTransport::write_some(std::span<const asio::const_buffer> buffers,
                                           std::error_code& ec) {
    if (ended(ec)) return 0;
    switch (state_) {
        case State::open:
            if (close_sent_) {
                ec = asio::error::shut_down;
                return 0;
            }
            return write_frames(buffers, ec);
        case State::native:
            if (!flush_out(ec)) return 0;
            return inner_->write_some(buffers, ec);
        default:
            break;
    }
    // Before the upgrade is done: a client's request goes first, and what the channel writes
    // (its first handshake message) waits here until the connection is known to be open.
    if (state_ == State::requesting && !flush_out(ec)) return 0;
    std::size_t total = 0;
    for (const auto& b : buffers) total += b.size();
    if (early_.size() + total > max_early_bytes)
        return fail(0, "more than 64 KiB to send before the WebSocket upgrade completed", ec);
    for (const auto& b : buffers) early_.append(static_cast<const char*>(b.data()), b.size());
    ec = {};
    return total;
}

std::size_t WebSocketTransport::fail(std::uint16_t code, std::string why, std::error_code& ec) {
    failure_ = {CloseReason::websocket_error, std::move(why)};
    if (state_ == State::open) send_control(WSLAY_CONNECTION_CLOSE, close_payload(code));
    state_ = State::failed;
    ec = std::make_error_code(std::errc::protocol_error);
    return 0;
}

void WebSocketTransport::close() {
    if (state_ == State::closed) return;
    // Best effort: a close frame (unless one went, or a frame is half sent), and what is owed.
    if (state_ == State::open && !close_sent_)
        send_control(WSLAY_CONNECTION_CLOSE, close_payload(1000));
    std::error_code ignored;
    flush_out(ignored);
    state_ = State::closed;
    inner_->close();
}

}  // namespace hawser::detail
