// The state of one big stream in its connection's StreamTable, each way, and StreamRef, what
// the application's handles (StreamSink, StreamSource, IncomingStream) point to.
// Ownership: Out and In belong to the table; a StreamRef is shared by the handles of one stream
// and tells the table when the last one goes.
// Thread affinity: Out and In on the connection's loop; StreamRef from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "hawser/streams.hpp"
#include "rpc/stream_feed.hpp"
#include "rpc/stream_table.hpp"

namespace hawser::detail {

struct StreamTable::Out {
    enum class State : std::uint8_t { opening, hashing, sending, ended };
    std::uint64_t id = 0;
    State state = State::opening;
    bool resumable = false, queued = false;
    bool handle = false;  // a StreamSink refers to it (until its last copy goes)
    std::optional<std::uint64_t> size;
    StreamOptions options;
    std::shared_ptr<StreamFeed> feed;
    SinkFeed* sink = nullptr;        // feed, when the application writes it
    std::uint64_t position = 0;      // the next byte to send
    std::uint64_t credit = 0;        // what the stream's window still lets out
    std::uint64_t acknowledged = 0;  // window the receiver gave back: bytes it consumed
    // A seekable feed is hashed behind what was sent, in the loop's background turns
    // (StreamTable::hash_turn), read again from the feed: the bytes before `hashed` are in
    // `hash`. A sink's bytes are hashed as they are sent (they are not kept).
    std::uint64_t hashed = 0;
    bool hash_queued = false;  // its id is in StreamTable::to_hash_
    ContentHasher hash;
    Clock::time_point accept_deadline;
    std::function<void(Result<void>)> accepted, done;
    // Cancels the stream on options.stop; destroyed with the stream, on the loop.
    std::unique_ptr<std::stop_callback<std::function<void()>>> on_stop;
    // Expires when the stream leaves the table: a prefix being hashed for it stops there.
    std::shared_ptr<const bool> in_table = std::make_shared<const bool>(true);
};

struct StreamTable::In {
    enum class State : std::uint8_t { offered, open, ended, failed };
    std::uint64_t id = 0;
    State state = State::offered;
    bool resumable = false;
    bool end_read = false;  // the reader was handed the end
    std::optional<std::uint64_t> size;
    std::uint64_t position = 0;  // bytes of the content received, from 0
    std::uint32_t window = 0;    // granted to this stream
    std::uint64_t left = 0;      // the peer may still send this much
    std::uint64_t unreturned = 0;
    std::size_t buffered = 0;  // bytes in chunks
    std::deque<std::string> chunks;
    // The last `unhashed` bytes of chunks are not in `hash` yet: they are hashed in the
    // loop's background turns (StreamTable::hash_turn), from chunks[hash_chunk] at
    // hash_offset on, and a chunk is read only once hashed.
    std::size_t unhashed = 0;
    std::size_t hash_chunk = 0, hash_offset = 0;
    bool hash_queued = false;  // its id is in StreamTable::to_hash_
    // The sender's hash, from its end, while the bytes before it wait for their hash turns:
    // the end counts as received (more data or a second end is a violation).
    std::optional<std::array<std::uint8_t, 32>> end_hash;
    ContentHasher hash;
    Error error;  // why it failed
    std::function<void(Result<std::string>)> reader;
};

class StreamRef {
  public:
    StreamRef(std::weak_ptr<Conn> conn, std::uint64_t id, std::uint64_t offset = 0)
        : conn_(std::move(conn)), id_(id), offset_(offset) {}
    ~StreamRef();
    StreamRef(const StreamRef&) = delete;
    StreamRef& operator=(const StreamRef&) = delete;

    std::uint64_t id() const noexcept { return id_; }
    std::uint64_t offset() const noexcept { return offset_.load(std::memory_order_acquire); }
    // An incoming stream is accepted or rejected once: the first caller, on any thread, wins.
    bool claim(std::uint64_t offset) noexcept {
        if (claimed_.exchange(true)) return false;
        offset_.store(offset, std::memory_order_release);
        return true;
    }
    std::weak_ptr<Conn> conn() const { return conn_; }
    // Runs op(StreamTable&) on the connection's loop (now, when already there); false when the
    // connection is gone.
    bool on_loop(std::function<void(StreamTable&)> op) const;

    static StreamSink sink(std::shared_ptr<StreamRef> ref) { return StreamSink(std::move(ref)); }

  private:
    std::weak_ptr<Conn> conn_;
    std::uint64_t id_;
    std::atomic<std::uint64_t> offset_;
    std::atomic<bool> claimed_{false};
};

// Library code that needs what an IncomingStream refers to (receive_file: its worker pool).
struct StreamAccess {
    static const std::shared_ptr<StreamRef>& ref(const IncomingStream& s) { return s.ref_; }
    static const std::shared_ptr<StreamRef>& ref(const StreamSource& s) { return s.ref_; }
};

}  // namespace hawser::detail
