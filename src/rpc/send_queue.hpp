// SendQueue: the bytes of one connection sealed for the socket and not yet written, as a list of
// chunks freed as soon as they are written, so the memory held follows what is still unsent
// (a reader a little behind does not make the sender keep everything it ever sent). Idle, it
// holds no buffer at all.
// Thread affinity: owned by one connection and used on its loop only.
#pragma once

#include <array>
#include <asio/buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hawser::detail {

class SendQueue {
  public:
    // New frames go to a new chunk once the last one holds this much.
    static constexpr std::size_t chunk_bytes = 64 * 1024;

    // Appends through fill(std::vector<std::uint8_t>& out), which appends to `out`. With
    // `same_chunk` the bytes go to the last chunk however full it is: the caller is extending
    // something it left open there (the secure transport's open piece).
    template <class Fill>
    void append(Fill&& fill, bool same_chunk = false) {
        if (chunks_.empty() || (!same_chunk && chunks_.back().size() >= chunk_bytes))
            chunks_.emplace_back();
        auto& tail = chunks_.back();
        std::size_t before = tail.size(), capacity = tail.capacity();
        fill(tail);
        unsent_ += tail.size() - before;
        allocated_ += tail.capacity() - capacity;
    }

    // Writes what it can with one gather write: write(buffers) returns the bytes written.
    // Returns the bytes written.
    template <class Write>
    std::size_t write(Write&& write_some) {
        std::array<asio::const_buffer, 16> buffers;
        std::size_t n = 0;
        for (std::size_t i = 0; i < chunks_.size() && n < buffers.size(); ++i) {
            std::size_t skip = i == 0 ? offset_ : 0;
            buffers[n++] = asio::buffer(chunks_[i].data() + skip, chunks_[i].size() - skip);
        }
        std::size_t written = write_some(std::span(buffers.data(), n));
        consume(written);
        return written;
    }

    // Bytes in the last chunk, written or not.
    std::size_t tail_bytes() const noexcept { return chunks_.empty() ? 0 : chunks_.back().size(); }
    std::size_t unsent() const noexcept { return unsent_; }
    std::size_t allocated() const noexcept { return allocated_; }
    bool empty() const noexcept { return unsent_ == 0; }
    void clear() noexcept {
        std::vector<std::vector<std::uint8_t>>().swap(chunks_);
        offset_ = unsent_ = allocated_ = 0;
    }

  private:
    void consume(std::size_t n) {
        unsent_ -= n;
        std::size_t done = 0;  // chunks fully written
        while (n > 0) {
            auto& front = chunks_[done];
            std::size_t left = front.size() - offset_;
            if (n < left) {
                offset_ += n;
                break;
            }
            n -= left;
            offset_ = 0;
            allocated_ -= front.capacity();
            ++done;
        }
        chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(done));
        if (chunks_.empty()) {
            std::vector<std::vector<std::uint8_t>>().swap(chunks_);
            return;
        }
        // A big message makes a big chunk: once half of it is written, keep only the rest.
        auto& front = chunks_.front();
        if (offset_ > chunk_bytes && offset_ * 2 > front.size()) {
            std::vector<std::uint8_t> rest(front.begin() + static_cast<std::ptrdiff_t>(offset_),
                                           front.end());
            allocated_ += rest.capacity();
            allocated_ -= front.capacity();
            front.swap(rest);
            offset_ = 0;
        }
    }

    std::vector<std::vector<std::uint8_t>> chunks_;
    std::size_t offset_ = 0;  // bytes of the first chunk already written
    std::size_t unsent_ = 0, allocated_ = 0;
};

}  // namespace hawser::detail
