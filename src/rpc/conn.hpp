// Conn: one live TCP connection — socket readiness, framing, the send queue, calls in flight
// each way, and dispatch to the command table.
// Ownership: created by a Listener or a Connector on its Loop, owned by the Host registry while
// open and by the async operations in flight; it dies when the last of them lets go, after
// close(). Other threads hold weak references (Connection, ReplySlot) and post to its loop.
// Thread affinity: every member function except the const snapshots runs on loop().
#pragma once

#include <any>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "rpc/host.hpp"
#include "rpc/loop.hpp"
#include "rpc/send_queue.hpp"
#include "wire/frame.hpp"
#include "wire/message.hpp"
#include "wire/secure_channel.hpp"

namespace hawser::detail {

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Completion of an outgoing call with the raw reply payload.
using RawCallback = std::function<void(Result<std::string>)>;

class Conn : public std::enable_shared_from_this<Conn> {
  public:
    // `remote` is the peer's address as taken when the socket was accepted or connected.
    Conn(Loop& loop, std::shared_ptr<Host> host, asio::ip::tcp::socket socket,
         asio::ip::tcp::endpoint remote, bool admitted_to_overflow = false);
    ~Conn();

    Loop& loop() const noexcept { return loop_; }
    Host& host() const noexcept { return *host_; }
    ConnectionId id() const noexcept { return id_; }
    bool is_open() const noexcept { return open_.load(std::memory_order_relaxed); }
    // Over its soft send limit: producers (broadcast, streams) should skip or pause. Any thread.
    bool congested() const noexcept { return congested_.load(std::memory_order_relaxed); }
    // Bytes handed to this connection from other threads and not yet applied on its loop are
    // bounded by the hard send limit: a producer faster than the loop is refused, not queued.
    // Any thread.
    bool reserve_post(std::size_t bytes) noexcept {
        auto before = posted_bytes_.fetch_add(bytes, std::memory_order_relaxed);
        if (before + bytes <= host_->limits.max_send_queue_bytes) return true;
        posted_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
        return false;
    }
    void release_post(std::size_t bytes) noexcept {
        posted_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    }
    const asio::ip::tcp::endpoint& remote() const noexcept { return remote_; }

    // Starts the handshake (the client speaks first). Once it completes the connection
    // registers with the host, fires on_connect and carries messages.
    void start();

    // Outgoing traffic. `id` comes from reserve_call_id() so callers on other threads know it.
    std::uint64_t reserve_call_id() noexcept {
        return next_call_id_.fetch_add(1, std::memory_order_relaxed);
    }
    void start_call(std::uint64_t id, Kind kind, std::string_view command, std::string payload,
                    const CallOptions& options, RawCallback done);
    void cancel_call(std::uint64_t id);
    void expire_call(std::uint64_t id);  // from the loop's deadline timer
    Result<void> send_direct(Kind kind, std::string_view command, std::string_view payload,
                             bool compress = true);
    // A message encoded once for many connections (broadcast): framed, or sealed, here.
    void send_prepared(std::span<const std::uint8_t> message);

    // The reply of an incoming call, from its ReplySlot.
    void finish_call(std::uint64_t id, Errc code, const std::string& payload_or_message,
                     bool compress);

    // Says goodbye, flushes, then closes (bounded by the shutdown timeout).
    void close_gracefully(CloseReason reason);
    // Server shutdown: no new calls; goodbye once the calls in flight have been answered.
    void begin_drain(std::chrono::steady_clock::time_point deadline);
    // Closes now: pending calls fail `disconnected`, hooks run, the registry forgets it.
    void close(CloseReason reason);

    void on_sweep(Clock::time_point now);

    // The peer's static public key, proven by the handshake: the client's (XX) on a server,
    // the server's on a client; null for anonymous (NK) clients and in plaintext. Set on the
    // loop before the connection is visible to any other thread, never changed after.
    const noise::Key* peer_static_key() const noexcept { return peer_static_.get(); }

    std::any& app_context() noexcept { return app_context_; }
    std::any& service_context() noexcept { return service_context_; }

  private:
    enum class State : std::uint8_t { handshaking, open, draining, closing, closed };
    struct Handshaking {
        std::unique_ptr<ClientHandshake> client;
        std::unique_ptr<ServerHandshake> server;
        Clock::time_point started;
    };
    struct PendingCall {
        RawCallback done;
        Loop::Deadlines::iterator deadline;
    };

    void wait_readable();
    void on_readable(std::error_code ec);
    bool on_frame(std::span<const std::uint8_t> body);
    void on_handshake_frame(std::span<const std::uint8_t> body);
    void become_open();
    void refuse_client_key();  // server: closes with key_not_allowed after the handshake
    void seal_failed();        // closes with internal_error; the message is not sent
    void on_message(std::span<const std::uint8_t> body);
    void send_raw_frame(std::span<const std::uint8_t> body);
    void on_call(const MessageView& m);
    void on_direct(const MessageView& m);
    void on_reply(const MessageView& m);
    void direct_done();
    // Input stops while direct messages fill the per-connection limit; the frames of the last
    // read wait in the decoder.
    bool input_paused() const noexcept {
        return directs_in_flight_ >= host_->limits.max_pending_calls;
    }
    auto frame_sink() {
        return [this](std::span<const std::uint8_t> body) { return on_frame(body); };
    }
    // After feeding the decoder: closes on a framing error; false once closed.
    bool on_frames(FrameError err);
    template <class Run, class Fail>
    void dispatch(const Commands::Entry& entry, std::span<const std::uint8_t> payload, Run run,
                  Fail fail);
    void complete_call(std::uint64_t id, Result<std::string> result);
    void send_message(Kind kind, std::uint64_t id, std::string_view name,
                      std::span<const std::uint8_t> payload, bool compress = true);
    void send_coded(Kind kind, std::uint64_t id, std::uint16_t code, std::string_view text);
    // Changes the send queue through f, then reports its size to the host's counters and
    // checks the soft limit.
    template <class F>
    void change_queue(F&& f);
    // One write of what is queued; the error, if any, in ec.
    std::size_t write_queued(std::error_code& ec);
    void clear_queue();
    void schedule_flush();
    void flush();
    // Logs (rate-limited) why the peer broke the protocol, then goodbye_now.
    void protocol_close(CloseReason reason, std::string_view detail);
    // Sends a goodbye with the reason, tries one write, and closes without waiting.
    void goodbye_now(CloseReason reason, std::string_view detail);

    Loop& loop_;
    std::shared_ptr<Host> host_;
    asio::ip::tcp::socket socket_;
    asio::ip::tcp::endpoint remote_;
    ConnectionId id_;
    FrameDecoder decoder_;
    std::unique_ptr<Handshaking> handshake_;         // only until the handshake completes
    std::unique_ptr<SecureTransport> secure_;        // null in plaintext mode
    std::unique_ptr<const noise::Key> peer_static_;  // a pointer: most clients have none
    SendQueue out_;                                  // sealed frames not yet written
    Clock::time_point over_soft_since_{};            // when the queue went over its soft limit
    std::unordered_map<std::uint64_t, PendingCall> calls_;
    std::atomic<std::uint64_t> next_call_id_{1};
    Clock::time_point last_recv_;
    Clock::time_point last_ping_{};
    Clock::time_point deadline_{};          // for draining and closing states
    std::uint32_t handlers_in_flight_ = 0;  // calls dispatched and not yet answered
    std::uint32_t directs_in_flight_ = 0;   // direct messages queued or running on workers
    std::size_t worker_decode_bytes_ = 0;   // payload bytes waiting for a worker to decode them
    State state_ = State::handshaking;
    CloseReason reason_ = CloseReason::none;
    bool reading_ = false, writing_ = false, flush_posted_ = false;
    bool admitted_to_overflow_;  // where admission counted it (Admission::admit)
    std::atomic<bool> open_{false};
    std::atomic<bool> congested_{false};        // over the soft send limit
    std::atomic<std::size_t> posted_bytes_{0};  // see reserve_post
    std::any app_context_;
    std::any service_context_;
};

}  // namespace hawser::detail
