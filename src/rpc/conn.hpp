// Conn: the session of one connection, over its Transport (bytes) and its Channel (handshake,
// framing, encryption): the connection's state from handshake to close, dispatch of arriving
// messages by kind through the host's registry, the calls in flight each way, the send-queue
// limits, idle timeout and heartbeats.
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
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "rpc/call_table.hpp"
#include "rpc/channel.hpp"
#include "rpc/host.hpp"
#include "rpc/loop.hpp"
#include "rpc/stream_table.hpp"
#include "rpc/transport.hpp"
#include "wire/message.hpp"

namespace hawser::detail {

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

class Conn final : public std::enable_shared_from_this<Conn>,
                   private TransportUser,
                   private ChannelUser {
  public:
    // `remote` is the peer's address as taken when the socket was accepted or connected.
    Conn(Loop& loop, std::shared_ptr<Host> host, std::unique_ptr<Transport> transport,
         asio::ip::tcp::endpoint remote, bool admitted_to_overflow = false);
    ~Conn();

    Loop& loop() const noexcept { return loop_; }
    Host& host() const noexcept { return *host_; }
    ConnectionId id() const noexcept { return id_; }
    // The application's handle on this connection, made from the weak reference alone.
    Connection handle() { return Connection(weak_from_this(), id_); }
    bool is_open() const noexcept { return open_.load(std::memory_order_relaxed); }
    // Loop only.
    bool is_closed() const noexcept { return state_ == State::closed; }
    // Its next handshake step, in the loop's background turn: once the server's pace allows
    // (Host::pace_handshake), which a handshake waits for once. Loop only.
    void handshake_turn();
    // The peer ended its side (its FIN is in), seen without reading. Loop only.
    bool peer_gone() { return transport_->peer_gone(); }
    // In the server's pace queue (HandshakePacer), counted in the loop's handshakes_waiting
    // until it leaves the queue or closes, whichever comes first. Loop only.
    void set_waiting_for_pace(bool waiting) noexcept;
    // Open and not draining: new work (calls, streams) is taken. Loop only.
    bool serving() const noexcept { return state_ == State::open; }
    // Over its soft send limit: producers (broadcast, streams) should skip or pause. Any thread.
    bool congested() const noexcept { return congested_.load(std::memory_order_relaxed); }
    // Bytes handed to this connection from other threads and not yet applied on its loop are
    // bounded by the hard send limit: a producer faster than the loop is refused, not queued.
    // Each post counts its closure too, so that posts of empty messages are bounded as well.
    // Any thread.
    static constexpr std::size_t post_overhead = 128;
    bool reserve_post(std::size_t bytes) noexcept {
        bytes += post_overhead;
        auto before = posted_bytes_.fetch_add(bytes, std::memory_order_relaxed);
        // One post's overhead of slack: a message of the full limit still goes when nothing
        // waits.
        if (before + bytes <= host_->limits.max_send_queue_bytes + post_overhead) return true;
        posted_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
        return false;
    }
    void release_post(std::size_t bytes) noexcept {
        posted_bytes_.fetch_sub(bytes + post_overhead, std::memory_order_relaxed);
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
    bool cancel_call(std::uint64_t id);        // false if no such call is pending
    void expire_calls(Clock::time_point now);  // from the loop's deadline timer
    Result<void> send_direct(Kind kind, std::string_view command, std::string_view payload,
                             bool compress = true);
    // An encoded message, whole (a broadcast's, encoded once for many connections) or as a
    // header and its payload: framed, or sealed, here.
    void send_prepared(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body = {});
    // One message of any kind (kinds registered by other parts use this).
    void send_message(Kind kind, std::uint64_t id, std::string_view name,
                      std::span<const std::uint8_t> payload, bool compress = true);
    void send_coded(Kind kind, std::uint64_t id, std::uint16_t code, std::string_view text);
    // One big-stream data message whose `size` payload bytes fill() writes where they are
    // sealed (compressed: into a buffer first, then compressed).
    void send_stream_data(std::uint64_t id, std::size_t size, const SecureTransport::Fill& fill,
                          bool compress);

    // Big streams: the table, created on first use; null if none was ever needed.
    StreamTable& streams();
    StreamTable* streams_if_any() noexcept { return streams_.get(); }
    // Outgoing streams have data to send: the connection takes a turn in its loop's background
    // queue (Loop::post_background), one chunk per turn, behind IO on every connection.
    void wake_streams();
    // The send queue is short enough for another chunk of stream data (calls went first).
    bool stream_room() const noexcept;
    // Runs application code on this loop in a later turn (a stream's callback).
    void post_user(std::string_view what, std::function<void()> f);
    // A call refused before it reached this loop (its post budget was full): its callback runs
    // on the loop, as every call's does. Those waiting are gathered and run by one post, at most
    // max_refused_calls of them; past that (a producer that ignores refusals while the loop is
    // stuck) the callback runs at once, on the caller's thread. Any thread.
    static constexpr std::size_t max_refused_calls = 1024;
    void refuse_call(std::function<void()> callback);

    // The reply of an incoming call, from its ReplySlot.
    void finish_call(std::uint64_t id, Errc code, const std::string& payload_or_message,
                     bool compress);

    // Says goodbye (the reason's name, or `text`), flushes, then closes (bounded by the
    // shutdown timeout).
    void close_gracefully(CloseReason reason, std::string_view text = {});
    // Server shutdown: no new calls or streams; goodbye once the calls in flight have been
    // answered and the big streams either way are over (or at the deadline).
    void begin_drain(Clock::time_point deadline);
    bool draining() const noexcept { return state_ == State::draining; }
    // While draining: the goodbye, if nothing is in flight any more.
    void drain_if_idle();
    // Closes now: pending calls fail `disconnected`, hooks run, the registry forgets it.
    void close(CloseReason reason);
    // Connection::pause_reading and resume_reading.
    void pause_reading(bool paused);
    // Logs (rate-limited) why the peer broke the protocol, then goodbye_now.
    void protocol_close(CloseReason reason, std::string_view detail);

    // From the loop's sweep (which holds a reference) when a check may be due: closes what
    // timed out, sends a heartbeat if one is due, then schedules the next check.
    void on_sweep(Clock::time_point now);

    // The peer's static public key, proven by the handshake: the client's (XX) on a server,
    // the server's on a client; null for anonymous (NK) clients and in plaintext. Set on the
    // loop before the connection is visible to any other thread, never changed after.
    const noise::Key* peer_static_key() const noexcept { return channel_.peer_static_key(); }

    // When the handshake completed (the connection opened). Any thread once open.
    std::chrono::system_clock::time_point opened_at() const noexcept { return opened_at_; }
    // Why the transport failed, when it knows more than its error code (a refused WebSocket
    // upgrade); empty otherwise.
    std::string transport_failure() const { return transport_->failure().detail; }
    // The text of a redirect goodbye the peer sent (client side), empty for other closes.
    const std::string& redirect_text() const noexcept {
        static const std::string none;
        return rare_ ? rare_->redirect : none;
    }
    void set_redirect_text(std::string_view text) { rare().redirect = text; }

    std::any& app_context() noexcept { return rare().app; }
    std::any& service_context() noexcept { return rare().service; }

    // This connection's place in its loop's sweep list (Loop::attach). Loop only.
    Loop::SweepLink& sweep_link() noexcept { return sweep_link_; }

    // The message kinds every session speaks (registered by register_session_kinds).
    void on_call(const MessageView& m);
    bool admitted(bool public_access);  // the command table's gate (login), for calls and streams
    // Whether a call's handler runs now, on this thread (not on the worker pool, and no big
    // DataFrame to decode there first).
    bool runs_here(const Commands::Entry& entry, std::size_t size) const noexcept;
    // Whether its argument is decoded on this thread (not a DataFrame too big for it).
    bool decodes_here(const Commands::Entry& entry, std::size_t size) const noexcept;
    void on_direct(const MessageView& m);
    void on_reply(const MessageView& m);

  private:
    enum class State : std::uint8_t { handshaking, open, draining, closing, closed };
    // What most connections never need, created on first use so an idle one pays a pointer.
    struct Rare {
        std::any app, service;                // the contexts
        Clock::time_point over_soft_since{};  // when the queue went over its soft limit
        std::size_t worker_decode_bytes = 0;  // payload bytes waiting for a worker to decode
        std::string redirect;                 // a redirect goodbye's text
    };
    Rare& rare() {
        if (!rare_) rare_ = std::make_unique<Rare>();
        return *rare_;
    }

    // TransportUser
    void on_readable(std::error_code ec) override;
    void on_writable(std::error_code ec) override;
    // ChannelUser
    bool on_established() override;
    bool on_message(std::span<const std::uint8_t> body) override;
    void on_wire_error(CloseReason reason, std::string_view detail, bool goodbye) override;

    Channel::Input input() { return {*this, loop_.now()}; }
    // This connection as its transport's user, keeping it alive while a wait is pending.
    std::shared_ptr<TransportUser> transport_user() {
        return {shared_from_this(), static_cast<TransportUser*>(this)};
    }
    // Starts the channel: a client's first message, or a server's wait for one.
    void begin_handshake();
    void wait_readable();
    // Reads and handles the input that is ready, writes what it produced, and waits again.
    void take_input();
    // Reads what is ready (a few reads at most) and feeds it through the channel; false when
    // reading must not be re-armed now (closed, or input paused).
    bool read_input();
    void refuse_client_key();  // server: closes with key_not_allowed after the handshake
    void seal_failed();        // closes with internal_error; the message is not sent
    void transport_failed();   // closes with the reason the transport gives, logged
    void direct_done();
    // After a pause ends: delivers what the pause held back, then reads again.
    void resume_input();
    // Input stops while direct messages fill the per-connection limit, or while the application
    // paused reading; the frames of the last read wait in the channel.
    bool input_paused() const noexcept {
        return paused_by_user_ || directs_in_flight_ >= host_->limits.max_pending_calls;
    }
    template <class Run, class Fail>
    void dispatch(const Commands::Entry& entry, std::span<const std::uint8_t> payload, Run run,
                  Fail fail);
    void complete_call(std::uint64_t id, Result<std::string> result);
    // After the send queue changed: the soft limit (congested) and the hard limit (close).
    void check_queue();
    // One write of what is queued; the error, if any, in ec.
    std::size_t write_queued(std::error_code& ec);
    // One write of what is queued; false when no more can go now: the socket is full (the
    // rest waits for on_writable) or the connection closed.
    bool write_once();
    // Writes what is sealed now, mid-message (big messages); false if that closed it.
    bool write_early();
    void schedule_flush();
    void flush();
    void stream_turn();  // one chunk of stream data, written, then back in line if more
    // Sends a goodbye with the reason, tries one write, and closes without waiting.
    void goodbye_now(CloseReason reason, std::string_view detail);
    void check_timeouts(Clock::time_point now);
    // When the sweep should look at it next: the earliest time anything of it may be due.
    Clock::time_point next_check(Clock::time_point now) const;

    Loop& loop_;
    std::shared_ptr<Host> host_;
    std::unique_ptr<Transport> transport_;
    asio::ip::tcp::endpoint remote_;
    // Small fields next to the 28-byte address, where they fill what would be padding.
    std::uint32_t handlers_in_flight_ = 0;  // calls dispatched and not yet answered
    std::uint32_t directs_in_flight_ = 0;   // direct messages queued or running on workers
    State state_ = State::handshaking;
    CloseReason reason_ = CloseReason::none;
    bool reading_ = false, writing_ = false, flush_posted_ = false;
    bool paused_by_user_ = false;  // Connection::pause_reading
    // While input is delivered, sends only mark flush_wanted_: one write goes out when the
    // read is done, before reading is re-armed (no posted turn, no epoll round before it).
    bool in_input_ = false, flush_wanted_ = false;
    bool attached_ = false;          // in the loop's sweep set
    bool pump_queued_ = false;       // a stream turn is in the loop's background queue
    bool admitted_to_overflow_;      // where admission counted it (Admission::admit)
    bool begun_ = false;             // the channel has started (begin_handshake): it may send
    bool paced_ = false;             // its handshake had its turn at the server's pace
    bool waiting_for_pace_ = false;  // counted in handshakes_waiting
    std::atomic<bool> open_{false};
    std::atomic<bool> congested_{false};  // over the soft send limit
    ConnectionId id_;
    Channel channel_;
    std::unique_ptr<CallTable> calls_;      // created on the first outgoing call
    std::unique_ptr<StreamTable> streams_;  // created on the first big stream
    std::atomic<std::uint64_t> next_call_id_{1};
    Clock::time_point last_recv_;
    std::chrono::system_clock::time_point opened_at_{};
    // Draining or closing: when to give up. Open: when the last heartbeat ping went out.
    Clock::time_point deadline_{};
    Gate::Pass registered_;  // held while open: shutdown waits for it
    Loop::SweepLink sweep_link_;
    std::atomic<std::size_t> posted_bytes_{0};  // see reserve_post
    std::mutex refused_mu_;                     // see refuse_call
    std::vector<std::function<void()>> refused_;
    bool refused_posted_ = false;
    std::unique_ptr<Rare> rare_;
};

}  // namespace hawser::detail
