// WebSocketTransport: RFC 6455 under a Hawser connection, so that browsers speak the same
// protocol (docs/protocol.md, "WebSocket"). It wraps another Transport (TCP, or the in-memory
// pair in tests): first the HTTP upgrade (wire/http_upgrade), then Hawser's bytes travel as the
// payload of binary WebSocket frames, framed and unframed by wslay. Everything above the
// Channel is unchanged: to it this is a byte stream.
//
// A server side may also sniff: a connection whose first bytes are "GET " is upgraded, any
// other is native and passes straight through (the WebSocket port may be the native one).
//
// Bounds: the upgrade request by UpgradePolicy (and the connection's handshake timeout); what
// the channel writes before the upgrade is done, 64 KiB; bytes owed to the socket besides the
// channel's: the upgrade answer, or one control frame (a pong replaces the one before it while
// the socket is full) and a frame header. Received frames are streamed, never gathered, so a
// frame's size costs no memory; one read handles at most a bounded number of frames, so a
// flood of empty frames cannot hold the loop.
// Ownership: owned by its connection, owns the inner transport. Thread affinity: the
// connection's loop.
#pragma once

#include <sys/types.h>

#include <asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "rpc/transport.hpp"
#include "wire/http_upgrade.hpp"

struct wslay_frame_context;
struct wslay_frame_iocb;

namespace hawser::detail {

class WebSocketTransport final : public Transport {
  public:
    struct ServerSide {
        std::shared_ptr<const http::UpgradePolicy> policy;
        bool sniff = false;  // native connections too, told apart by their first bytes
    };
    struct ClientSide {
        std::string host;  // the Host header
        std::string path = "/";
        std::string origin;  // empty: none sent
    };
    WebSocketTransport(asio::io_context& context, std::unique_ptr<Transport> inner, ServerSide);
    WebSocketTransport(asio::io_context& context, std::unique_ptr<Transport> inner, ClientSide);
    ~WebSocketTransport() override;
    WebSocketTransport(const WebSocketTransport&) = delete;
    WebSocketTransport& operator=(const WebSocketTransport&) = delete;

    void wait_readable(std::shared_ptr<TransportUser> user) override;
    void wait_writable(std::shared_ptr<TransportUser> user) override;
    std::size_t read_some(std::span<std::uint8_t> into, std::error_code& ec) override;
    std::size_t write_some(std::span<const asio::const_buffer> buffers,
                           std::error_code& ec) override;
    void close() override;
    bool peer_gone() override { return inner_->peer_gone(); }
    // Bytes read but not handed up, or bytes in the socket (not more_buffered_: only "maybe").
    bool input_waiting() override {
        return carry_size_ > 0 || leftover_at_ < leftover_.size() || inner_->input_waiting();
    }
    Failure failure() const override { return failure_; }

    // Payload of one frame this side sends, at most; a longer write is several frames.
    static constexpr std::size_t max_frame_payload = 1u << 20;
    // What the channel may write before the upgrade completes (a handshake message).
    static constexpr std::size_t max_early_bytes = 64 * 1024;

  private:
    enum class State {
        detecting,   // server, sniffing: not yet known whether this is a WebSocket
        native,      // server, sniffing: not a WebSocket; bytes pass straight through
        upgrading,   // server: reading the upgrade request
        requesting,  // client: the request is sent or on its way, the answer not read yet
        open,        // frames both ways
        failed,      // refused or broke the protocol: failure() says why
        closed,
    };

    bool ended(std::error_code& ec) const;  // failed or closed: nothing moves (ec says which)

    // --- before frames ---
    void fill_head(std::error_code& ec);  // reads what has come into head_, up to its limit
    std::size_t read_before_open(std::span<std::uint8_t> into, std::error_code& ec);
    void opened(std::size_t head_size);  // the upgrade is done; frames from here on
    std::size_t take_leftover(std::span<std::uint8_t> into);

    // --- frames ---
    std::size_t read_frames(std::span<std::uint8_t> into, std::error_code& ec);
    // A chunk of a frame wslay has read; what it breaks, if anything (a close code and why).
    struct Violation {
        std::uint16_t code;  // 1002 protocol error, 1003 data this side does not take
        const char* why;
    };
    std::optional<Violation> on_chunk(const wslay_frame_iocb& chunk);
    std::size_t write_frames(std::span<const asio::const_buffer> buffers, std::error_code& ec);
    std::size_t write_unmasked(std::span<const asio::const_buffer> buffers, std::error_code& ec);
    std::size_t write_masked(std::span<const asio::const_buffer> buffers, std::error_code& ec);
    // A control message, sent once nothing else is owed and no data frame is half sent; a
    // newer one replaces one still waiting (a close is never replaced).
    void send_control(std::uint8_t opcode, std::string payload);
    // One whole frame, framed by wslay straight into out_.
    void frame_into_out(std::uint8_t opcode, std::string_view payload);
    // Writes out_ (and then a waiting control frame) to the inner transport: true once all of
    // it went.
    bool flush_out(std::error_code& ec);
    // Fails for good, with `why`; an open connection sends a close frame with `code` first.
    std::size_t fail(std::uint16_t code, std::string why, std::error_code& ec);
    // A refused upgrade: the HTTP answer, and the request's bytes read off so that closing
    // sends the answer rather than a reset.
    std::size_t refuse(int status, const std::string& reason, std::error_code& ec);

    static ssize_t on_send(const std::uint8_t* data, std::size_t size, int flags, void* self);
    static ssize_t on_recv(std::uint8_t* into, std::size_t size, int flags, void* self);
    static int on_mask(std::uint8_t* into, std::size_t size, void* self);

    asio::io_context& context_;
    std::unique_ptr<Transport> inner_;
    const bool server_;
    State state_;
    std::shared_ptr<const http::UpgradePolicy> policy_;  // server
    std::string key_;                                    // client: the Sec-WebSocket-Key sent
    wslay_frame_context* frames_ = nullptr;              // from open on

    std::string head_;             // the upgrade request or answer as read so far
    http::RequestScan head_scan_;  // how much of it the parser has looked at
    std::string leftover_;         // read before frames began (or while sniffing): served first
    std::size_t leftover_at_ = 0;
    std::string early_;  // what the channel wrote before the upgrade was done
    std::string out_;    // owed to the socket before any more frame bytes
    std::size_t out_at_ = 0;
    bool capture_ = false;  // on_send appends to out_ (a control frame, a frame header)

    // Sending: the frame under way.
    std::uint64_t tx_frame_ = 0, tx_left_ = 0;
    std::error_code tx_ec_;
    std::uint8_t control_opcode_ = 0;  // a control frame waiting for that frame to end (0: none)
    std::string control_payload_;
    bool close_sent_ = false;

    // Receiving: the frame under way.
    bool rx_in_frame_ = false, rx_in_message_ = false;
    std::uint8_t rx_opcode_ = 0;
    std::uint64_t rx_left_ = 0;
    std::string control_in_;  // a control frame's payload as it arrives (at most 125 bytes)
    const std::uint8_t* carry_ = nullptr;  // payload read but not handed up (in wslay's buffer)
    std::size_t carry_size_ = 0;
    bool more_buffered_ = false;  // the last read stopped with input possibly left unread
    bool close_received_ = false;
    std::error_code rx_ec_;  // what the inner transport said on the last read
    bool rx_read_ = false;   // whether wslay read from it

    Failure failure_;
};

}  // namespace hawser::detail
