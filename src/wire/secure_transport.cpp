// SecureTransport (see secure_transport.hpp). Thread affinity: the connection's loop.
#include "wire/secure_transport.hpp"

#include <algorithm>
#include <cstring>

#include "wire/frame.hpp"

namespace hawser::detail {

namespace {
// Bytes of a piece's frame before its data: the frame head and the type byte.
constexpr std::size_t piece_head = frame_head_bytes + 1;

template <class T>
void release(std::vector<T>& v) {
    if (v.capacity() != 0) std::vector<T>().swap(v);
}
}  // namespace

// --- sending ---

bool SecureTransport::add(std::span<const std::uint8_t> message, std::vector<std::uint8_t>& out,
                          const ProtocolMark& mark, const TransportOptions& policy,
                          Clock::time_point now) {
    return begin_record(message.size(), out, mark, policy, now) &&
           add_to_record(message, out, mark);
}

bool SecureTransport::begin_record(std::size_t size, std::vector<std::uint8_t>& out,
                                   const ProtocolMark& mark, const TransportOptions& policy,
                                   Clock::time_point now) {
    if (failed_) return false;
    if (sent_since_rekey_ >= policy.rekey_messages ||
        (policy.rekey_interval.count() > 0 && now - last_rekey_ >= policy.rekey_interval)) {
        // Everything before the rekey piece goes under the old key; the peer rekeys its
        // receiving side on reading it.
        if (!seal_open(out, mark)) return false;
        open_piece(out, mark, piece_rekey);
        if (!seal_open(out, mark)) return false;
        send_.rekey();
        last_rekey_ = now;
        sent_since_rekey_ = 0;
        ++rekeys_;
    }
    ++sent_since_rekey_;
    std::uint8_t header[record_header];
    put_u32(header, static_cast<std::uint32_t>(size));
    return append(header, out, mark);
}

bool SecureTransport::add_to_record(std::span<const std::uint8_t> first,
                                    std::span<const std::uint8_t> second,
                                    std::vector<std::uint8_t>& out, const ProtocolMark& mark) {
    if (failed_) return false;
    // One growth for all of it, not one per piece.
    std::size_t size = first.size() + second.size();
    std::size_t need = size + (size / max_piece + 2) * (frame_overhead + 1 + noise::tag_len);
    if (out.capacity() - out.size() < need)
        out.reserve(std::max(out.size() + need, out.capacity() + out.capacity() / 2));
    return append(first, out, mark) && append(second, out, mark);
}

bool SecureTransport::add_filled(std::size_t size, std::vector<std::uint8_t>& out,
                                 const ProtocolMark& mark, const Fill& fill) {
    if (failed_) return false;
    std::size_t need = size + (size / max_piece + 2) * (frame_overhead + 1 + noise::tag_len);
    if (out.capacity() - out.size() < need)
        out.reserve(std::max(out.size() + need, out.capacity() + out.capacity() / 2));
    for (std::size_t at = 0; at < size;) {
        if (!piece_open()) open_piece(out, mark, piece_data);
        std::size_t room = max_piece - (out.size() - open_at_ - piece_head);
        std::size_t take = std::min(room, size - at);
        std::size_t end = out.size();
        out.resize(end + take);
        fill(std::span<std::uint8_t>(out.data() + end, take), at);
        at += take;
        if (take == room && !seal_open(out, mark)) return false;
    }
    return true;
}

bool SecureTransport::append(std::span<const std::uint8_t> data, std::vector<std::uint8_t>& out,
                             const ProtocolMark& mark) {
    while (!data.empty()) {
        if (!piece_open()) open_piece(out, mark, piece_data);
        std::size_t room = max_piece - (out.size() - open_at_ - piece_head);
        std::size_t take = std::min(room, data.size());
        out.insert(out.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
        data = data.subspan(take);
        if (take == room && !seal_open(out, mark)) return false;
    }
    return true;
}

void SecureTransport::open_piece(std::vector<std::uint8_t>& out, const ProtocolMark& mark,
                                 std::uint8_t type) {
    open_at_ = out.size();
    out.resize(open_at_ + piece_head);
    std::memcpy(out.data() + open_at_, mark.head.data(), 4);
    out[open_at_ + frame_head_bytes] = type;  // the length is written when it is sealed
}

bool SecureTransport::seal_open(std::vector<std::uint8_t>& out, const ProtocolMark& mark) {
    if (failed_) return fail(out);
    if (!piece_open()) return true;
    std::size_t plain = out.size() - open_at_ - frame_head_bytes;  // type and data
    out.resize(out.size() + noise::tag_len);
    std::uint8_t* body = out.data() + open_at_ + frame_head_bytes;
    put_u32(body - 4, static_cast<std::uint32_t>(plain + noise::tag_len));
    // In place: both AEAD libraries allow the ciphertext to overwrite the plaintext.
    if (!send_.encrypt_with_ad({}, std::span<const std::uint8_t>(body, plain), body))
        return fail(out);
    out.insert(out.end(), mark.tail.begin(), mark.tail.end());
    open_at_ = closed;
    ++sealed_;
    return true;
}

bool SecureTransport::fail(std::vector<std::uint8_t>& out) {
    // The open piece holds plaintext: none of it may reach the wire.
    if (piece_open()) out.resize(open_at_);
    open_at_ = closed;
    failed_ = true;
    return false;
}

// --- receiving ---

SecureTransport::Opened SecureTransport::open(std::span<std::uint8_t> body) {
    if (body.size() < 1 + noise::tag_len || body.size() > noise::max_message)
        return Opened::malformed;
    if (!recv_.decrypt_with_ad({}, body, body.data())) return Opened::bad_mac;
    auto data = std::span<const std::uint8_t>(body.data() + 1, body.size() - 1 - noise::tag_len);
    switch (body[0]) {
        case piece_data:
            pending_ = data;
            pending_held_ = false;
            return Opened::ok;
        case piece_rekey:
            if (!data.empty()) return Opened::malformed;
            recv_.rekey();
            ++rekeys_;
            return Opened::ok;
        default:
            return Opened::malformed;
    }
}

SecureTransport::Next SecureTransport::next(std::size_t max_message,
                                            std::span<const std::uint8_t>& message) {
    if (spill_ && spill_->assembled) {  // handed out by the last call: done with it
        release(spill_->partial);
        spill_->assembled = false;
    }
    while (!pending_.empty()) {
        if (header_have_ < record_header) {
            std::size_t take = std::min<std::size_t>(record_header - header_have_, pending_.size());
            std::memcpy(header_ + header_have_, pending_.data(), take);
            header_have_ = static_cast<std::uint8_t>(header_have_ + take);
            pending_ = pending_.subspan(take);
            if (header_have_ < record_header) break;
            record_left_ = get_u32(header_);
            if (record_left_ > max_message) return Next::too_large;
        }
        bool collecting = spill_ && !spill_->partial.empty();
        if (!collecting && record_left_ <= pending_.size()) {
            // The whole record is here: handed out where it lies, no copy.
            message = pending_.first(record_left_);
            pending_ = pending_.subspan(record_left_);
            header_have_ = 0;
            return Next::message;
        }
        // It spans pieces: collect it, growing only by the bytes that arrived.
        if (!spill_) spill_ = std::make_unique<Spill>();
        auto& partial = spill_->partial;
        std::size_t take = std::min<std::size_t>(record_left_, pending_.size());
        if (partial.size() + take > partial.capacity())  // doubling, but never past the record
            partial.reserve(
                std::min<std::size_t>(std::max(partial.size() + take, 2 * partial.capacity()),
                                      partial.size() + record_left_));
        partial.insert(partial.end(), pending_.begin(),
                       pending_.begin() + static_cast<std::ptrdiff_t>(take));
        pending_ = pending_.subspan(take);
        record_left_ -= static_cast<std::uint32_t>(take);
        if (record_left_ == 0) {
            spill_->assembled = true;
            header_have_ = 0;
            message = spill_->partial;
            return Next::message;
        }
    }
    pending_ = {};
    pending_held_ = false;
    if (spill_) {
        release(spill_->held);
        if (spill_->partial.empty()) spill_.reset();
    }
    return Next::need_more;
}

void SecureTransport::hold() {
    if (spill_ && spill_->assembled) {
        release(spill_->partial);
        spill_->assembled = false;
    }
    if (pending_.empty() || pending_held_) return;  // nothing left, or already held
    if (!spill_) spill_ = std::make_unique<Spill>();
    spill_->held.assign(pending_.begin(), pending_.end());
    pending_ = spill_->held;
    pending_held_ = true;
}

}  // namespace hawser::detail
