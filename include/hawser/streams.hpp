// Big streams: data of any size on the same encrypted connection as calls, in either direction,
// many at once, flow-controlled by the receiver's windows (a sender never has more in flight
// than the receiver granted), interleaved with calls (which always go first), verified at the
// end by a BLAKE2b hash of the whole content, and resumable from an offset.
//
// Sending (Connection::open_stream / send_stream / send_file, in connection.hpp):
//   open_stream   a StreamSink the application writes into at the pace the receiver allows
//   send_stream   bytes in memory           both resumable: the receiver may accept from an
//   send_file     a file, read with pread   offset it already has
// Receiving: Commands::stream(name, handler) registers a handler that gets an IncomingStream
// and accepts it (a StreamSource to read from, at its own pace) or rejects it. receive_file()
// (files.hpp) stores one under a directory, resuming a partial file.
//
// Every operation takes a completion token (completion.hpp): a callback, use_task, use_wait.
// Callbacks run on the connection's IO thread. Handles are cheap to copy and safe to use from
// any thread; when the last copy of a sink or source is dropped before the stream is over, the
// stream is cancelled (the peer sees Errc::cancelled), as it is by StreamOptions::stop.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>

#include "hawser/completion.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"

namespace hawser {

class Connection;

namespace detail {
class Conn;
class StreamRef;
struct StreamAccess;
}  // namespace detail

// BLAKE2b-256 of a content fed in parts: what a stream's end carries. A receiver that resumes
// from an offset feeds it the bytes it already has (receive_file does). Not thread-safe.
class ContentHasher {
  public:
    ContentHasher();
    void update(std::span<const std::uint8_t> bytes);
    void update(std::string_view bytes) {
        update({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
    }
    std::uint64_t bytes() const noexcept { return bytes_; }  // fed so far
    std::array<std::uint8_t, 32> digest() const;             // of what was fed so far

  private:
    alignas(64) unsigned char state_[384];  // libsodium's crypto_generichash_state
    std::uint64_t bytes_ = 0;
};

struct StreamOptions {
    DataFrame metadata;                 // travels with the open: file name, content type, ...
    std::optional<std::uint64_t> size;  // the total, when known: the receiver holds the sender
                                        // to it (send_stream and send_file set it themselves)
    bool compress = false;  // per chunk, with the connection's codec: for compressible data
    // The content's BLAKE2b-256 (ContentHasher) when the application knows it already, as a
    // content-addressed store does: the sender then skips hashing (and, resuming, reading the
    // prefix); the receiver still checks every byte against it.
    std::optional<std::array<std::uint8_t, 32>> content_hash;
    // Bytes the receiver has taken, after each window it grants and at the end. IO thread.
    std::function<void(std::uint64_t acknowledged)> on_progress;
    // How long the receiver may take to accept; 0 = the connection's call timeout.
    std::chrono::milliseconds accept_timeout{0};
    // Cancels the stream when a stop is requested, from any thread, at any point until its
    // verdict: the receiver sees cancelled, and so does the completion (send_stream and
    // send_file have no handle to cancel with otherwise). A stop after the end went out may
    // find the receiver has kept the content already: cancelled then says only that this side
    // stopped waiting for the verdict.
    std::stop_token stop;
};

// The writing end of a stream this side opened.
class StreamSink {
  public:
    StreamSink() = default;
    std::uint64_t id() const noexcept;
    bool valid() const noexcept { return ref_ != nullptr; }

    // Queues `bytes`; completes once they are all handed to the connection, which is when the
    // receiver's windows allowed it. One write at a time: a second one before the first
    // completed fails with invalid_argument. From a thread other than the connection's IO
    // thread a write waits for the loop counted against Limits::max_send_queue_bytes, so one
    // larger than that fails with overloaded (write in parts).
    template <class Token = UseTask>
    auto write(std::string bytes, Token&& token = {}) const {
        return detail::complete<void>(
            [self = *this,
             bytes = std::move(bytes)](std::function<void(Result<void>)> done) mutable {
                self.start_write(std::move(bytes), std::move(done));
            },
            std::forward<Token>(token), "StreamSink::write");
    }
    // Ends the stream (after the last write) and completes when the receiver has verified the
    // whole content against its hash and kept it, or with the receiver's error.
    template <class Token = UseTask>
    auto finish(Token&& token = {}) const {
        return detail::complete<void>(
            [self = *this](std::function<void(Result<void>)> done) {
                self.start_finish(std::move(done));
            },
            std::forward<Token>(token), "StreamSink::finish");
    }
    // Abandons the stream: the receiver sees cancelled, pending operations here complete with it.
    void cancel() const;

  private:
    friend class detail::StreamRef;
    explicit StreamSink(std::shared_ptr<detail::StreamRef> ref) : ref_(std::move(ref)) {}
    void start_write(std::string bytes, std::function<void(Result<void>)> done) const;
    void start_finish(std::function<void(Result<void>)> done) const;
    std::shared_ptr<detail::StreamRef> ref_;
};

// The reading end of a stream the peer opened, once accepted.
class StreamSource {
  public:
    StreamSource() = default;
    std::uint64_t id() const noexcept;
    bool valid() const noexcept { return ref_ != nullptr; }
    std::uint64_t offset() const noexcept;  // where the content read starts (accept's offset)

    // The next bytes, in order; an empty string once the whole content arrived and its hash
    // matched. Errors: hash_mismatch, size_mismatch, cancelled (the sender gave up),
    // disconnected. Until it is read, data waits here, and the sender waits for the window.
    template <class Token = UseTask>
    auto read(Token&& token = {}) const {
        return detail::complete<std::string>(
            [self = *this](std::function<void(Result<std::string>)> done) {
                self.start_read(std::move(done));
            },
            std::forward<Token>(token), "StreamSource::read");
    }
    // The verdict the sender's finish() gets, after the end was read: ok (the default when the
    // last handle is dropped after the end) or an error of the application's (storage_error,
    // ...). Before the end it cancels the stream.
    void finish(Errc code = Errc::ok, std::string text = {}) const;
    void cancel() const { finish(Errc::cancelled, "the receiver cancelled the stream"); }

  private:
    friend class IncomingStream;
    friend struct detail::StreamAccess;
    explicit StreamSource(std::shared_ptr<detail::StreamRef> ref) : ref_(std::move(ref)) {}
    void start_read(std::function<void(Result<std::string>)> done) const;
    std::shared_ptr<detail::StreamRef> ref_;
};

// A stream the peer opened, as its handler sees it: accept it or reject it. Dropping it without
// either rejects it (not_allowed).
class IncomingStream {
  public:
    const std::string& name() const noexcept { return name_; }  // the handler's name
    const DataFrame& metadata() const noexcept { return metadata_; }
    std::optional<std::uint64_t> size() const noexcept { return size_; }
    bool resumable() const noexcept { return resumable_; }
    std::uint64_t id() const noexcept;
    Connection connection() const;

    // Takes the content from `offset` on (0 unless resumable(); at most size()), once. From an
    // offset, `prefix` must have been fed the `offset` bytes this side already has: the hash
    // at the end covers the whole content.
    Result<StreamSource> accept(std::uint64_t offset = 0, const ContentHasher* prefix = nullptr);
    void reject(Errc code, std::string text = {});

    // Library use: built by the connection when an open arrives.
    IncomingStream(std::shared_ptr<detail::StreamRef> ref, std::string name, DataFrame metadata,
                   std::optional<std::uint64_t> size, bool resumable)
        : ref_(std::move(ref)),
          id_(ref_id(ref_)),
          conn_(ref_conn(ref_)),
          name_(std::move(name)),
          metadata_(std::move(metadata)),
          size_(size),
          resumable_(resumable) {}

  private:
    friend struct detail::StreamAccess;
    static std::uint64_t ref_id(const std::shared_ptr<detail::StreamRef>& ref);
    static std::weak_ptr<detail::Conn> ref_conn(const std::shared_ptr<detail::StreamRef>& ref);
    std::shared_ptr<detail::StreamRef> ref_;  // until accepted or rejected
    std::uint64_t id_;
    std::weak_ptr<detail::Conn> conn_;
    std::string name_;
    DataFrame metadata_;
    std::optional<std::uint64_t> size_;
    bool resumable_;
};

}  // namespace hawser
