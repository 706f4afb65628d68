// Framing: mark(4) | length(4, big-endian) | body | mark(4). Incremental, bounded decoder.
// Pure code: no sockets, no threads; one decoder per connection, used by its IO thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "hawser/options.hpp"

namespace hawser::detail {

inline constexpr std::size_t frame_head_bytes = 8;
inline constexpr std::size_t frame_tail_bytes = 4;
inline constexpr std::size_t frame_overhead = frame_head_bytes + frame_tail_bytes;

struct FrameConfig {
    ProtocolMark mark;
    std::uint32_t max_body = 16u << 20;
};

enum class FrameError { none, bad_mark, too_large };

inline void put_u32(std::uint8_t* p, std::uint32_t v) {
    p[0] = std::uint8_t(v >> 24), p[1] = std::uint8_t(v >> 16), p[2] = std::uint8_t(v >> 8),
    p[3] = std::uint8_t(v);
}
inline std::uint32_t get_u32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

// Reassembles frames from arbitrary read boundaries. Holds only the bytes of an unfinished frame,
// and nothing at all between frames, so an idle connection costs no buffer. A reader that pauses
// (on_frame returns false) leaves the rest of the input held here until resume().
class FrameDecoder {
  public:
    // Calls on_frame(std::span<uint8_t> body) for each complete frame, in order (the body is
    // mutable: the secure transport decrypts it in place); on_frame
    // returns false to stop (the connection closed or paused its input): the input not yet
    // delivered is kept for resume(). Returns the first framing error, if any; after an error
    // the decoder must not be fed again. Not to be fed while it holds frames (held_frames()).
    template <class OnFrame>
    FrameError feed(std::span<std::uint8_t> in, const FrameConfig& cfg, OnFrame&& on_frame);
    // Delivers what a pause held back, as feed() does.
    template <class OnFrame>
    FrameError resume(const FrameConfig& cfg, OnFrame&& on_frame) {
        std::vector<std::uint8_t> held;
        if (partial_) held.swap(*partial_);
        partial_.reset();
        return feed_whole(held, cfg, on_frame);
    }

    std::size_t buffered() const noexcept { return partial_ ? partial_->size() : 0; }

  private:
    // Checks what is known of a frame's head; `n` bytes of it are available.
    static FrameError check_head(const std::uint8_t* p, std::size_t n, const FrameConfig& cfg);
    static bool tail_ok(const std::uint8_t* frame, std::uint32_t body, const FrameConfig& cfg) {
        return std::memcmp(frame + frame_head_bytes + body, cfg.mark.tail.data(), 4) == 0;
    }
    // Whole frames straight from `in`, no copy; keeps what is left.
    template <class OnFrame>
    FrameError feed_whole(std::span<std::uint8_t> in, const FrameConfig& cfg, OnFrame& on_frame);
    void keep(std::span<const std::uint8_t> rest) {
        if (!partial_) partial_ = std::make_unique<std::vector<std::uint8_t>>();
        partial_->assign(rest.begin(), rest.end());
    }

    // The bytes of an unfinished frame; a pointer, so an idle connection pays 8 bytes, not 24.
    std::unique_ptr<std::vector<std::uint8_t>> partial_;
};

inline FrameError FrameDecoder::check_head(const std::uint8_t* p, std::size_t n,
                                           const FrameConfig& cfg) {
    if (std::memcmp(p, cfg.mark.head.data(), n < 4 ? n : 4) != 0) return FrameError::bad_mark;
    if (n >= frame_head_bytes && get_u32(p + 4) > cfg.max_body) return FrameError::too_large;
    return FrameError::none;
}

template <class OnFrame>
FrameError FrameDecoder::feed(std::span<std::uint8_t> in, const FrameConfig& cfg,
                              OnFrame&& on_frame) {
    // Finish a frame started in an earlier read first.
    if (partial_ && !partial_->empty()) {
        auto& p = *partial_;
        if (p.size() < frame_head_bytes) {
            std::size_t take = std::min(frame_head_bytes - p.size(), in.size());
            p.insert(p.end(), in.begin(), in.begin() + take);
            in = in.subspan(take);
            if (auto e = check_head(p.data(), p.size(), cfg); e != FrameError::none) return e;
            if (p.size() < frame_head_bytes) return FrameError::none;
        }
        std::uint32_t body = get_u32(p.data() + 4);
        std::size_t need = frame_head_bytes + body + frame_tail_bytes;
        // Grows with the bytes that arrive, never straight to the length announced.
        std::size_t take = std::min(need - p.size(), in.size());
        if (p.size() + take > p.capacity())
            p.reserve(std::min(need, std::max(p.size() + take, 2 * p.capacity())));
        p.insert(p.end(), in.begin(), in.begin() + take);
        in = in.subspan(take);
        if (p.size() < need) return FrameError::none;
        if (!tail_ok(p.data(), body, cfg)) return FrameError::bad_mark;
        std::vector<std::uint8_t> frame;
        frame.swap(p);  // releases the buffer before the handler runs
        partial_.reset();
        if (!on_frame(std::span<std::uint8_t>(frame.data() + frame_head_bytes, body))) {
            if (!in.empty()) keep(in);
            return FrameError::none;
        }
    }
    return feed_whole(in, cfg, on_frame);
}

template <class OnFrame>
FrameError FrameDecoder::feed_whole(std::span<std::uint8_t> in, const FrameConfig& cfg,
                                    OnFrame& on_frame) {
    while (!in.empty()) {
        if (auto e = check_head(in.data(), in.size(), cfg); e != FrameError::none) return e;
        if (in.size() < frame_head_bytes) break;
        std::uint32_t body = get_u32(in.data() + 4);
        std::size_t need = frame_head_bytes + body + frame_tail_bytes;
        if (in.size() < need) break;
        if (!tail_ok(in.data(), body, cfg)) return FrameError::bad_mark;
        bool go_on = on_frame(in.subspan(frame_head_bytes, body));
        in = in.subspan(need);
        if (!go_on) break;
    }
    if (!in.empty())
        keep(in);
    else
        partial_.reset();
    return FrameError::none;
}

// Appends one frame holding `body_size` bytes written by fill(uint8_t* body) to `out`.
template <class Fill>
void append_frame(std::vector<std::uint8_t>& out, const ProtocolMark& mark, std::size_t body_size,
                  Fill&& fill) {
    std::size_t at = out.size();
    out.resize(at + frame_overhead + body_size);
    std::uint8_t* p = out.data() + at;
    std::memcpy(p, mark.head.data(), 4);
    put_u32(p + 4, static_cast<std::uint32_t>(body_size));
    fill(p + frame_head_bytes);
    std::memcpy(p + frame_head_bytes + body_size, mark.tail.data(), 4);
}

}  // namespace hawser::detail
