// StreamFeed: where the bytes of an outgoing big stream come from: memory, a file (read with
// pread straight into the piece being sealed) or a StreamSink the application writes into.
// Ownership: shared by the stream's entry in its connection's StreamTable and, while the prefix
// of a resumed stream is hashed, by that worker job.
// Thread affinity: the connection's loop; a seekable feed is also read on a worker while its
// stream waits for the prefix hash (the loop does not touch it then).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "hawser/error.hpp"

namespace hawser::detail {

class StreamFeed {
  public:
    virtual ~StreamFeed() = default;
    // Bytes from `position` on that can be filled now.
    virtual std::uint64_t ready(std::uint64_t position) const = 0;
    // True once nothing will follow `position`: the end may be sent there.
    virtual bool ended(std::uint64_t position) const = 0;
    // Writes the bytes [position, position + into.size()) to `into`; ready() said they exist.
    // On failure `into` still gets filled (with zeros) and the stream is reset by the caller.
    virtual Result<void> fill(std::uint64_t position, std::span<std::uint8_t> into) = 0;
    // Can fill from any position (a resumed stream reads its prefix to hash it).
    virtual bool seekable() const noexcept { return false; }
    // Bytes up to `position` were handed to the connection (a sink completes its write).
    virtual void sent(std::uint64_t /*position*/) {}
};

// The content in memory.
class MemoryFeed final : public StreamFeed {
  public:
    explicit MemoryFeed(std::string content) : content_(std::move(content)) {}
    std::uint64_t size() const noexcept { return content_.size(); }
    std::uint64_t ready(std::uint64_t position) const override {
        return content_.size() - position;
    }
    bool ended(std::uint64_t position) const override { return position == content_.size(); }
    Result<void> fill(std::uint64_t position, std::span<std::uint8_t> into) override;
    bool seekable() const noexcept override { return true; }

  private:
    std::string content_;
};

// A regular file, read with pread: no copy between the read and the seal.
class FileFeed final : public StreamFeed {
  public:
    // Opens `path` for reading; the size is taken now and a file that shrinks later fails.
    static Result<std::shared_ptr<FileFeed>> open(const std::string& path);
    ~FileFeed() override;
    std::uint64_t size() const noexcept { return size_; }
    std::uint64_t ready(std::uint64_t position) const override { return size_ - position; }
    bool ended(std::uint64_t position) const override { return position == size_; }
    Result<void> fill(std::uint64_t position, std::span<std::uint8_t> into) override;
    bool seekable() const noexcept override { return true; }

    FileFeed(int fd, std::uint64_t size, std::string path)
        : fd_(fd), size_(size), path_(std::move(path)) {}

  private:
    int fd_;
    std::uint64_t size_;
    std::string path_;
};

// What the application writes through a StreamSink: one write at a time.
class SinkFeed final : public StreamFeed {
  public:
    using Done = std::function<void(Result<void>)>;
    bool busy() const noexcept { return done_ != nullptr; }  // a write is pending
    // The next write, at stream position `position`; not while busy() or finished().
    void write(std::string bytes, Done done, std::uint64_t position);
    void finish() noexcept { finished_ = true; }
    bool finished() const noexcept { return finished_; }
    // The pending write's completion, taken to fail it (the stream ended early).
    Done take_pending() {
        pending_.clear();
        return std::exchange(done_, nullptr);
    }

    std::uint64_t ready(std::uint64_t position) const override {
        return base_ + pending_.size() - position;
    }
    bool ended(std::uint64_t position) const override {
        return finished_ && position == base_ + pending_.size();
    }
    Result<void> fill(std::uint64_t position, std::span<std::uint8_t> into) override;
    void sent(std::uint64_t position) override;
    // A completed write, for the table to run as application code.
    Done take_completed() { return std::exchange(completed_, nullptr); }

  private:
    std::string pending_;
    std::uint64_t base_ = 0;  // the stream position of pending_'s first byte
    Done done_, completed_;
    bool finished_ = false;
};

}  // namespace hawser::detail
