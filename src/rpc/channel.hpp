// Channel: the wire of one connection. Bytes read from the transport go through the frame
// decoder, the handshake and the secure transport and come out as whole plaintext messages;
// messages going down are sealed (or framed, in plaintext mode) into the send queue. Nothing
// above it knows whether the link is encrypted, and it knows nothing of sockets, loops or
// commands: time is passed in, so it is tested without either.
// Ownership: a member of its connection. Thread affinity: the connection's loop.
#pragma once

#include <cassert>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "hawser/error.hpp"
#include "rpc/counters.hpp"
#include "rpc/send_queue.hpp"
#include "wire/frame.hpp"
#include "wire/secure_channel.hpp"

namespace hawser::detail {

// What every channel of one Server or Client shares: immutable settings.
struct ChannelShared {
    FrameConfig frame;
    TransportOptions transport;
    std::size_t max_message;  // after reassembly and before decompression (max_frame_bytes)
};

// What a channel reports to its connection.
class ChannelUser {
  public:
    // The handshake completed; false refuses the peer (the connection closed itself) or stops
    // delivery (input paused: the rest waits for resume()).
    virtual bool on_established() = 0;
    // A whole message, valid during the call; false stops delivery (closed, or input paused:
    // the rest waits in the channel for resume()).
    virtual bool on_message(std::span<const std::uint8_t> message) = 0;
    // The peer broke the protocol. `goodbye`: tell it why; false when nothing from it can be
    // trusted any more (bad_mac). The channel delivers nothing more.
    virtual void on_wire_error(CloseReason reason, std::string_view detail, bool goodbye) = 0;

  protected:
    ~ChannelUser() = default;
};

class Channel {
  public:
    using Clock = std::chrono::steady_clock;

    // `counters`: the block of the loop this channel runs on.
    Channel(const ChannelShared& shared, LoopCounters& counters)
        : shared_(shared), counters_(counters) {}

    // The client speaks first: its hello is queued here.
    void start_client(ClientHandshake::Config config, Clock::time_point now);
    void start_server(bool plaintext, const noise::KeyPair& static_keys, Clock::time_point now);

    bool handshaking() const noexcept { return handshake_ != nullptr; }
    Clock::time_point handshake_started() const noexcept { return handshake_->started; }
    // The peer's static key proven by the handshake (see Conn::peer_static_key).
    const noise::Key* peer_static_key() const noexcept { return peer_static_.get(); }
    bool encrypted() const noexcept { return secure_ != nullptr; }
    // The figures of the loop this channel runs on.
    LoopCounters& counters() noexcept { return counters_; }

    // --- input ---
    // Who receives what the input side delivers, and the time.
    struct Input {
        ChannelUser& user;
        Clock::time_point now;
    };
    // Bytes read from the transport, decrypted in place; false once delivery stopped (closed,
    // failed or paused).
    bool feed(std::span<std::uint8_t> bytes, const Input& in);
    // Delivers what a pause held back; false if delivery stopped again.
    bool resume(const Input& in);
    // Input held back by a pause: frames not yet opened and messages opened but not delivered.
    std::size_t held_input() const noexcept {
        return decoder_.buffered() + (secure_ ? secure_->held() : 0);
    }

    // --- output ---
    // Queues one message: framed at once in plaintext mode; encrypted, it joins the piece
    // being filled, which is sealed when full or by seal(), so the messages of one loop turn
    // share one seal. False when it cannot be encrypted (the nonce space is spent): the
    // connection must close; the unsealed piece is dropped, never sent.
    // An encrypted message over write_slice is queued a slice at a time, each slice sealed,
    // with between_slices() called after each (to write what is sealed). between_slices()
    // returns false if the connection closed meanwhile: the rest of the message is dropped
    // and send() still returns true (nothing failed to seal).
    // The message may come in two parts, a head and a body, copied once into the piece.
    [[nodiscard]] bool send(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body,
                            Clock::time_point now,
                            const std::function<bool()>& between_slices = {});
    [[nodiscard]] bool send(std::span<const std::uint8_t> message, Clock::time_point now) {
        return send(message, {}, now);
    }
    static constexpr std::size_t write_slice = 256 * 1024;
    // One message of `header` and `size` payload bytes that fill(into, at) writes in place
    // (big-stream data: a file is read straight into the piece that is sealed). False as for
    // send().
    [[nodiscard]] bool send_filled(std::span<const std::uint8_t> header, std::size_t size,
                                   const SecureTransport::Fill& fill, Clock::time_point now);
    // One frame in clear: a goodbye before the handshake completes.
    void send_clear(std::span<const std::uint8_t> body);
    // Seals the piece being filled, in place in the send queue: before every write. False as
    // for send().
    [[nodiscard]] bool seal();
    // One gather write of what is queued and sealed through write_some(buffers) -> bytes
    // written. Call seal() first.
    template <class WriteSome>
    std::size_t write(WriteSome&& write_some) {
        assert(!secure_ || !secure_->piece_open());
        auto before = queue_figures();
        std::size_t n = out_.write(std::forward<WriteSome>(write_some));
        report(before);
        LoopCounters::add(counters_.bytes_out, n);
        return n;
    }
    std::size_t unsent() const noexcept { return out_.unsent(); }
    bool nothing_to_send() const noexcept { return out_.empty(); }
    void clear_output();

  private:
    struct Handshaking {
        std::unique_ptr<ClientHandshake> client;
        std::unique_ptr<ServerHandshake> server;
        Clock::time_point started;
    };
    struct QueueFigures {
        std::size_t unsent, allocated;
    };
    QueueFigures queue_figures() const noexcept { return {out_.unsent(), out_.allocated()}; }
    // Reports how the queue changed since `before` to the host's counters.
    void report(QueueFigures before) noexcept;
    // SendQueue::append, with the change reported.
    template <class Fill>
    void append(Fill&& fill, bool same_chunk = false) {
        auto before = queue_figures();
        out_.append(std::forward<Fill>(fill), same_chunk);
        report(before);
    }
    bool on_frame(std::span<std::uint8_t> body, const Input& in);
    bool on_handshake_frame(std::span<const std::uint8_t> body, const Input& in);
    bool on_transport_frame(std::span<std::uint8_t> body, const Input& in);
    // Hands the messages the secure transport has opened to the user; false when it stopped.
    bool deliver(const Input& in);
    // After the decoder ran: reports a framing error; false when delivery stopped.
    bool after_frames(FrameError err, bool delivering, ChannelUser& user);
    void queue_frame(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body = {});

    const ChannelShared& shared_;
    LoopCounters& counters_;
    FrameDecoder decoder_;
    std::unique_ptr<Handshaking> handshake_;         // only until the handshake completes
    std::unique_ptr<SecureTransport> secure_;        // null in plaintext mode
    std::unique_ptr<const noise::Key> peer_static_;  // a pointer: most clients have none
    SendQueue out_;                                  // frames not yet written
};

}  // namespace hawser::detail
