// StreamTable: the big streams of one connection, both ways (docs/protocol.md, "Big streams").
// Outgoing streams wait for the receiver's accept, send data as its windows allow, round-robin
// between them and only when the send queue is short (calls always go first), then the end
// with the content's hash, and complete when the receiver's verdict comes. Incoming streams go
// to their handler, buffer at most the window granted until the application reads, hash what
// arrived, and check the size and the hash at the end. Bad input from the peer closes the
// connection (protocol_error) or resets that one stream.
// Calls go first both ways. The sender puts at most one chunk ahead of a call; the receiver
// only decrypts and buffers stream data as it reads it. Hashing, the costliest step (BLAKE2b is
// slower here than the cipher), happens on each side in background turns of its own, a few KiB
// each with a poll for IO between, so a call waits for at most one of them.
// Ownership: created by its connection on first use, owned by it. Application callbacks are
// posted to the loop, never run inside the table's own calls.
// Thread affinity: the connection's loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "hawser/options.hpp"
#include "hawser/streams.hpp"
#include "rpc/stream_feed.hpp"
#include "wire/message.hpp"
#include "wire/stream_messages.hpp"

namespace hawser::detail {

class Conn;

class StreamTable {
  public:
    using Clock = std::chrono::steady_clock;
    explicit StreamTable(Conn& conn);
    ~StreamTable();

    // What is wrong with the stream settings in `limits`, or empty (servers and clients refuse
    // to start with bad ones).
    static std::string check_limits(const Limits& limits);

    // --- this side sends ---
    struct Outgoing {
        std::string name;
        StreamOptions options;
        std::shared_ptr<StreamFeed> feed;
        bool resumable = false;
        // Sinks: the stream was accepted (ok) or refused. Others leave it empty: a refusal
        // goes to `done`.
        std::function<void(Result<void>)> accepted;
        std::function<void(Result<void>)> done;  // the receiver's verdict
    };
    // Opens a stream; its id, or the error (the callbacks are not called then).
    Result<std::uint64_t> open(Outgoing outgoing);
    void write(std::uint64_t id, std::string bytes, std::function<void(Result<void>)> done);
    void finish(std::uint64_t id, std::function<void(Result<void>)> done);
    void cancel(std::uint64_t id);
    // Hands one chunk (or the end) of the next stream in line to the connection, if it has
    // room (Conn::stream_room); the stream goes to the back of the line.
    void pump();
    bool has_ready() const noexcept { return !ready_.empty(); }
    // No stream either way (a draining connection waits for that).
    bool empty() const noexcept { return out_.empty() && in_.empty(); }

    // --- the peer sends ---
    void accept(std::uint64_t id, std::uint64_t offset, const ContentHasher* prefix);
    void read(std::uint64_t id, std::function<void(Result<std::string>)> done);
    // The verified BLAKE2b-256 of an incoming stream whose end was read; nullopt before.
    std::optional<std::array<std::uint8_t, 32>> content_hash(std::uint64_t id);
    // Bytes of incoming streams buffered and not hashed yet (their hash turns are queued).
    std::size_t unhashed_bytes() const noexcept;
    // The application's verdict, or a reject before accept, or a cancel.
    void finish_incoming(std::uint64_t id, Errc code, std::string_view text);

    // The last handle of stream `id` went away.
    void abandon(std::uint64_t id);

    // --- messages (stream kinds registered in stream_kinds.cpp) ---
    void on_open(const MessageView& m);
    void on_accept(const MessageView& m);
    void on_data(const MessageView& m);
    void on_window(const MessageView& m);
    void on_end(const MessageView& m);
    void on_reset(const MessageView& m);

    // Hashes a few KiB of the next stream in line (a background turn of the loop): an incoming
    // stream's buffered data, then handed to a waiting reader, or what an outgoing one sent.
    void hash_turn();
    // A resumed stream's prefix was hashed on a worker.
    void prefix_hashed(std::uint64_t id, Result<ContentHasher> hash);
    void on_sweep(Clock::time_point now);
    // The connection closed: every pending operation completes with `why`.
    void fail_all(const Error& why);

  private:
    struct Out;
    struct In;

    Out* find_out(std::uint64_t id);
    In* find_in(std::uint64_t id);
    bool mine(std::uint64_t id) const noexcept { return (id & 1) == (next_id_ & 1); }
    // A message names a stream it may not: the connection closes.
    void violation(std::string_view what);
    void post(std::function<void()> f);
    void send_reset(std::uint64_t id, Errc code, std::string_view text);
    void send_credit(std::uint64_t id, std::uint32_t credit);
    // A stream left the table: a draining connection may be done (checked on the next turn,
    // not inside the table's own call).
    void stream_gone();

    // Outgoing
    void wake(Out& s);
    bool can_progress(const Out& s) const;
    void send_some(Out& s);
    void start_sending(Out& s, std::uint64_t offset);
    // Why a sink's stream is over: what ended it, for the writes and finish() that come later.
    Error why_over(std::uint64_t id) const;
    // Ends an outgoing stream with an error: its callbacks fail, the entry goes.
    void fail_out(std::uint64_t id, const Error& error, bool tell_peer);

    // Hash turns, both ways: `queued` is the stream's flag that it is in to_hash_.
    void queue_hash(std::uint64_t id, bool& queued);
    void queue_hash_turn();
    // One turn's hashing of that stream; false when there was nothing to hash.
    bool hash_in(std::uint64_t id);
    bool hash_out(std::uint64_t id);

    // Outgoing
    static bool hashes_behind(const Out& s);  // a seekable feed without a known hash

    // Incoming
    // Hashes up to `budget` of the stream's unhashed bytes, oldest first.
    static void hash_some(In& s, std::size_t budget);
    // Everything is hashed and the end came: the verdict on the sender's hash.
    void check_end(In& s);
    static void drop_chunks(In& s);  // a failed stream's buffer goes
    void deliver(In& s);
    void fail_in(In& s, Errc code, std::string text);  // resets the peer, keeps the error
    void erase_in(std::uint64_t id);
    void consumed(In& s, std::size_t n);  // the application took n bytes: credit back
    void connection_consumed(std::size_t n);

    Conn& conn_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Out>> out_;
    std::unordered_map<std::uint64_t, std::unique_ptr<In>> in_;
    std::deque<std::uint64_t> ready_;    // outgoing streams that can send, in turn
    std::deque<std::uint64_t> to_hash_;  // streams with bytes to hash, either way, in turn
    bool hash_turn_queued_ = false;
    // Sinks whose stream failed, until their handles go (one entry per live handle at most).
    std::unordered_map<std::uint64_t, Error> failed_sinks_;
    std::uint64_t next_id_;            // client: odd ids, server: even
    std::uint64_t highest_in_id_ = 0;  // the peer's highest stream id so far
    // Sending: what the peer's connection window lets out.
    std::uint64_t send_credit_ = 0;
    // Receiving: what the peer may still send on the connection before more is granted, and
    // what arrived and was not granted back yet. The connection's window bounds bytes on the
    // wire and is given back as data arrives; the streams' windows bound what is buffered
    // (given back as the application reads), so one unread stream never blocks the others.
    std::uint64_t recv_left_ = 0, recv_unreturned_ = 0;
    bool granted_ = false;  // the first connection window went out
};

}  // namespace hawser::detail
