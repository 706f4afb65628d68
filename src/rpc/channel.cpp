// Channel (see channel.hpp): the handshake, framing and the secure transport of one connection.
// Thread affinity: the connection's loop.
#include "rpc/channel.hpp"

#include <cstring>

namespace hawser::detail {

void Channel::start_client(ClientHandshake::Config config, Clock::time_point now) {
    handshake_ = std::make_unique<Handshaking>();
    handshake_->started = now;
    handshake_->client = std::make_unique<ClientHandshake>(std::move(config));
    queue_frame(handshake_->client->hello());
}

void Channel::start_server(bool plaintext, const noise::KeyPair& static_keys,
                           Clock::time_point now) {
    handshake_ = std::make_unique<Handshaking>();
    handshake_->started = now;
    handshake_->server =
        std::make_unique<ServerHandshake>(shared_.frame.mark, plaintext, static_keys);
}

// --- input ---

bool Channel::feed(std::span<std::uint8_t> bytes, const Input& in) {
    bool delivering = true;
    auto err = decoder_.feed(bytes, shared_.frame, [&](std::span<std::uint8_t> body) {
        return delivering = on_frame(body, in);
    });
    return after_frames(err, delivering, in.user);
}

bool Channel::resume(const Input& in) {
    // First the messages of a piece opened before the pause, then the frames after it.
    if (secure_ && secure_->held() && !deliver(in)) return false;
    bool delivering = true;
    auto err = decoder_.resume(shared_.frame, [&](std::span<std::uint8_t> body) {
        return delivering = on_frame(body, in);
    });
    return after_frames(err, delivering, in.user);
}

bool Channel::after_frames(FrameError err, bool delivering, ChannelUser& user) {
    if (!delivering) return false;
    if (err == FrameError::bad_mark) {
        user.on_wire_error(CloseReason::bad_mark, "wrong protocol mark", true);
        return false;
    }
    if (err == FrameError::too_large) {
        user.on_wire_error(CloseReason::frame_too_large, "frame over the size limit", true);
        return false;
    }
    return true;
}

bool Channel::on_frame(std::span<std::uint8_t> body, const Input& in) {
    LoopCounters::add(counters_.frames_in);
    if (handshake_) return on_handshake_frame(body, in);
    if (!secure_) return in.user.on_message(body);
    return on_transport_frame(body, in);
}

bool Channel::on_handshake_frame(std::span<const std::uint8_t> body, const Input& in) {
    auto step = handshake_->client ? handshake_->client->on_frame(body)
                                   : handshake_->server->on_frame(body);
    if (!step) {
        in.user.on_wire_error(CloseReason::handshake_failed, step.error().message, true);
        return false;
    }
    if (!step->reply.empty()) queue_frame(step->reply);
    if (!step->done) return true;
    std::optional<noise::Key> peer;
    if (handshake_->client) {
        secure_ = handshake_->client->transport(in.now);
        peer = handshake_->client->server_key();
    } else {
        secure_ = handshake_->server->transport(in.now);
        peer = handshake_->server->client_key();
    }
    if (peer && secure_) peer_static_ = std::make_unique<const noise::Key>(*peer);
    handshake_.reset();
    return in.user.on_established();
}

bool Channel::on_transport_frame(std::span<std::uint8_t> body, const Input& in) {
    auto rekeys = secure_->rekeys();
    auto opened = secure_->open(body);
    if (secure_->rekeys() != rekeys) LoopCounters::add(counters_.rekeys);
    if (opened == SecureTransport::Opened::bad_mac) {
        in.user.on_wire_error(CloseReason::bad_mac, "a message failed authentication", false);
        return false;
    }
    if (opened == SecureTransport::Opened::malformed) {
        in.user.on_wire_error(CloseReason::malformed, "malformed transport message", true);
        return false;
    }
    return deliver(in);
}

bool Channel::deliver(const Input& in) {
    for (;;) {
        std::span<const std::uint8_t> message;
        switch (secure_->next(shared_.max_message, message)) {
            case SecureTransport::Next::need_more:
                return true;
            case SecureTransport::Next::too_large:
                in.user.on_wire_error(CloseReason::too_large, "message over the size limit", true);
                return false;
            case SecureTransport::Next::message:
                if (in.user.on_message(message)) continue;
                // Paused or closed: the rest of the piece lives in the buffer being read into.
                secure_->hold();
                return false;
        }
    }
}

// --- output ---

bool Channel::send(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body,
                   Clock::time_point now, const std::function<bool()>& between_slices) {
    if (!secure_) {
        queue_frame(head, body);  // plaintext: one frame per message
        return true;
    }
    auto size = head.size() + body.size();
    // A piece left open in a full chunk (the end of a big message) is sealed as it is, so the
    // chunk is not grown, and copied, for the messages after it.
    if (secure_->piece_open() && out_.tail_bytes() >= SendQueue::chunk_bytes && !seal())
        return false;
    auto rekeys = secure_->rekeys();
    auto sealed = secure_->pieces_sealed();
    auto count_sealed = [&] {  // pieces add() sealed because they filled
        LoopCounters::add(counters_.frames_out, secure_->pieces_sealed() - sealed);
        sealed = secure_->pieces_sealed();
    };
    bool ok = true;
    auto add = [&](auto&& step) {
        append([&](std::vector<std::uint8_t>& out) { ok = step(out); }, secure_->piece_open());
    };
    const auto& mark = shared_.frame.mark;
    if (!between_slices || size <= write_slice) {
        add([&](auto& out) {
            return secure_->begin_record(size, out, mark, shared_.transport, now) &&
                   secure_->add_to_record(head, body, out, mark);
        });
    } else {
        // A big message is sealed a slice at a time and each slice offered to the transport,
        // so the peer opens the first while this side seals the next. Slices are cut from the
        // head and the body as if they were one.
        add([&](auto& out) {
            return secure_->begin_record(size, out, mark, shared_.transport, now);
        });
        auto slice = [&](std::span<const std::uint8_t>& from, std::size_t most) {
            auto part = from.first(std::min(most, from.size()));
            from = from.subspan(part.size());
            return part;
        };
        while (ok) {
            auto first = slice(head, write_slice);
            auto second = slice(body, write_slice - first.size());
            add([&](auto& out) { return secure_->add_to_record(first, second, out, mark); });
            if (!ok) break;
            // Each slice ends its piece, so the next slice starts a chunk of its own instead of
            // growing this one, even when the socket is full and nothing is written meanwhile.
            count_sealed();
            ok = seal();  // counts its own piece
            sealed = secure_->pieces_sealed();
            if (!ok || (head.empty() && body.empty())) break;
            if (!between_slices()) break;  // it closed meanwhile: the rest is dropped
        }
    }
    if (secure_->rekeys() != rekeys) LoopCounters::add(counters_.rekeys);
    count_sealed();
    return ok;
}

bool Channel::send_filled(std::span<const std::uint8_t> header, std::size_t size,
                          const SecureTransport::Fill& fill, Clock::time_point now) {
    if (!secure_) {
        append([&](std::vector<std::uint8_t>& out) {
            append_frame(out, shared_.frame.mark, header.size() + size, [&](std::uint8_t* p) {
                std::memcpy(p, header.data(), header.size());
                fill(std::span<std::uint8_t>(p + header.size(), size), 0);
            });
        });
        LoopCounters::add(counters_.frames_out);
        return true;
    }
    if (secure_->piece_open() && out_.tail_bytes() >= SendQueue::chunk_bytes && !seal())
        return false;
    auto rekeys = secure_->rekeys();
    auto sealed = secure_->pieces_sealed();
    bool ok = true;
    const auto& mark = shared_.frame.mark;
    append(
        [&](std::vector<std::uint8_t>& out) {
            ok = secure_->begin_record(header.size() + size, out, mark, shared_.transport, now) &&
                 secure_->add_to_record(header, out, mark) &&
                 secure_->add_filled(size, out, mark, fill);
        },
        secure_->piece_open());
    if (secure_->rekeys() != rekeys) LoopCounters::add(counters_.rekeys);
    LoopCounters::add(counters_.frames_out, secure_->pieces_sealed() - sealed);
    return ok;
}

bool Channel::seal() {
    if (!secure_ || !secure_->piece_open()) return true;
    bool sealed = true;
    append(
        [&](std::vector<std::uint8_t>& out) {
            sealed = secure_->seal_open(out, shared_.frame.mark);
        },
        true);
    if (sealed) LoopCounters::add(counters_.frames_out);
    return sealed;
}

void Channel::send_clear(std::span<const std::uint8_t> body) {
    queue_frame(body);
}

void Channel::queue_frame(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body) {
    append([&](std::vector<std::uint8_t>& out) {
        append_frame(out, shared_.frame.mark, head.size() + body.size(), [&](std::uint8_t* p) {
            if (!head.empty()) std::memcpy(p, head.data(), head.size());
            if (!body.empty()) std::memcpy(p + head.size(), body.data(), body.size());
        });
    });
    LoopCounters::add(counters_.frames_out);
}

void Channel::clear_output() {
    auto before = queue_figures();
    out_.clear();
    if (secure_) secure_->forget_open();
    report(before);
}

void Channel::report(QueueFigures before) noexcept {
    // Unsigned wrap-around makes these the signed differences.
    LoopCounters::add(counters_.send_queue_bytes, out_.unsent() - before.unsent);
    LoopCounters::add(counters_.send_buffer_bytes, out_.allocated() - before.allocated);
}

}  // namespace hawser::detail
