// SecureTransport: the encrypted message stream of one connection once its handshake is done
// (docs/protocol.md, "Transport"). Outgoing messages become records (u32 length | message)
// appended to an open piece at the end of the caller's buffer; a piece is sealed into one Noise
// transport message, in place, when it fills or just before the buffer is written, so all the
// messages of one loop turn cost one seal and no copy between seal and write. Incoming frame
// bodies are decrypted in place and split back into messages; a message that spans pieces is
// reassembled, bounded by the caller's limit and by the bytes actually received.
// Pure code: one per connection, on its IO thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "hawser/options.hpp"
#include "wire/noise.hpp"

namespace hawser::detail {

class SecureTransport {
  public:
    using Clock = std::chrono::steady_clock;
    // Plaintext of one transport message: type(1) | data. Its data is at most this long.
    static constexpr std::size_t max_piece = noise::max_message - noise::tag_len - 1;
    static constexpr std::uint8_t piece_data = 0, piece_rekey = 2;
    static constexpr std::size_t record_header = 4;

    SecureTransport(noise::CipherState send, noise::CipherState recv, Clock::time_point now)
        : send_(send), recv_(recv), last_rekey_(now) {}

    // --- sending ---
    // Appends `message` as one record to the open piece at the end of `out` (opening one there
    // if none is open), sealing each piece it fills; rekeys first when the policy says so.
    // Until seal_open() the last piece is plaintext: `out` must not be written before it.
    // False when encryption failed (the nonce space is spent): every byte from the start of the
    // failed piece on is removed, and the connection must close, for nothing more can be sealed.
    [[nodiscard]] bool add(std::span<const std::uint8_t> message, std::vector<std::uint8_t>& out,
                           const ProtocolMark& mark, const TransportOptions& policy,
                           Clock::time_point now);
    // The same, for a record handed over in parts (a big message written as it is sealed):
    // begin_record() with the whole size, then add_to_record() until that many bytes went in,
    // with nothing else added in between. The parts may go to different buffers, each sealed
    // with seal_open() before the next part goes to another one.
    [[nodiscard]] bool begin_record(std::size_t size, std::vector<std::uint8_t>& out,
                                    const ProtocolMark& mark, const TransportOptions& policy,
                                    Clock::time_point now);
    [[nodiscard]] bool add_to_record(std::span<const std::uint8_t> data,
                                     std::vector<std::uint8_t>& out, const ProtocolMark& mark) {
        return add_to_record(data, {}, out, mark);
    }
    // Two parts at once (a header and its payload), with one growth of `out` for both.
    [[nodiscard]] bool add_to_record(std::span<const std::uint8_t> first,
                                     std::span<const std::uint8_t> second,
                                     std::vector<std::uint8_t>& out, const ProtocolMark& mark);
    // add_to_record() for `size` bytes that fill(into, at) writes straight into the piece
    // (`at`: how many of the `size` came before `into`): a file read lands where it is sealed.
    using Fill = std::function<void(std::span<std::uint8_t> into, std::size_t at)>;
    [[nodiscard]] bool add_filled(std::size_t size, std::vector<std::uint8_t>& out,
                                  const ProtocolMark& mark, const Fill& fill);
    // Seals the open piece, if any, at the end of `out`. False as for add().
    [[nodiscard]] bool seal_open(std::vector<std::uint8_t>& out, const ProtocolMark& mark);
    bool piece_open() const noexcept { return open_at_ != closed; }
    // The buffer holding the open piece was discarded (the connection is closing).
    void forget_open() noexcept { open_at_ = closed; }

    // --- receiving ---
    enum class Opened { ok, bad_mac, malformed };
    // Decrypts one frame body in place. Its messages then come out of next(), valid until the
    // body's buffer is reused: call next() until need_more, or hold() the rest. Must not be
    // called while next() still has bytes to hand out.
    Opened open(std::span<std::uint8_t> body);
    enum class Next { message, need_more, too_large };
    // The next whole message, valid until the next call to next() or open().
    Next next(std::size_t max_message, std::span<const std::uint8_t>& message);
    // Copies what next() has not yet handed out into this transport's own buffer: the reader
    // paused and the buffer open() decrypted into is about to be reused.
    void hold();
    std::size_t held() const noexcept { return pending_.size(); }

    std::uint32_t rekeys() const noexcept { return rekeys_; }
    std::uint32_t pieces_sealed() const noexcept { return sealed_; }  // wraps; for statistics
    // Tests only: pretend n more messages went out since the last rekey.
    void count_sent_for_test(std::uint64_t n) noexcept { sent_since_rekey_ += n; }

  private:
    static constexpr std::size_t closed = ~std::size_t{0};
    bool append(std::span<const std::uint8_t> data, std::vector<std::uint8_t>& out,
                const ProtocolMark& mark);
    void open_piece(std::vector<std::uint8_t>& out, const ProtocolMark& mark, std::uint8_t type);
    bool fail(std::vector<std::uint8_t>& out);

    // Receiving state that only exists while a record spans pieces or a paused reader holds
    // the rest of a piece, so an idle connection does not pay for it.
    struct Spill {
        std::vector<std::uint8_t> held;     // the rest of a piece, copied out on hold()
        std::vector<std::uint8_t> partial;  // the body of a record that spans pieces
        bool assembled = false;             // partial is a whole message, handed out
    };

    noise::CipherState send_, recv_;
    Clock::time_point last_rekey_;
    // As wide as TransportOptions::rekey_messages: a narrower counter wraps before reaching it.
    std::uint64_t sent_since_rekey_ = 0;
    // Sending: where the open piece's frame starts in the caller's buffer, or `closed`.
    std::size_t open_at_ = closed;
    // Receiving: the decrypted data not yet handed out (in the caller's buffer, or held).
    std::span<const std::uint8_t> pending_;
    std::unique_ptr<Spill> spill_;
    std::uint32_t rekeys_ = 0;       // both ways, for the statistics
    std::uint32_t sealed_ = 0;       // pieces sealed, for the statistics
    std::uint32_t record_left_ = 0;  // body bytes of the current record still to come
    std::uint8_t header_[record_header]{};
    std::uint8_t header_have_ = 0;  // bytes of the current record's length read so far
    bool pending_held_ = false;     // pending_ points into spill_->held
    bool failed_ = false;           // a seal failed: nothing more is sent
};

}  // namespace hawser::detail
