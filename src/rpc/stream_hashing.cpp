// StreamTable, hashing (see stream_table.hpp): each stream's BLAKE2b runs in the loop's background
// turns, stream_hash_turn_bytes a turn with a poll for IO between, one queue for both ways:
// what an incoming stream buffered, before its reader gets it and its end is checked, and what
// an outgoing one sent from a seekable feed, read again, before its end goes.
// Thread affinity: the connection's loop.
#include <algorithm>
#include <span>
#include <vector>

#include "rpc/conn.hpp"
#include "rpc/stream_state.hpp"
#include "rpc/stream_table.hpp"

namespace hawser::detail {

void StreamTable::queue_hash(std::uint64_t id, bool& queued) {
    if (!queued) {
        queued = true;
        to_hash_.push_back(id);
    }
    queue_hash_turn();
}

void StreamTable::queue_hash_turn() {
    if (hash_turn_queued_) return;
    hash_turn_queued_ = true;
    conn_.loop().post_background([weak = conn_.weak_from_this()] {
        if (auto conn = weak.lock())
            if (auto* table = conn->streams_if_any()) table->hash_turn();
    });
}

void StreamTable::hash_turn() {
    hash_turn_queued_ = false;
    // Streams that went or have nothing left meanwhile are passed over on the way to one.
    while (!to_hash_.empty()) {
        auto id = to_hash_.front();
        to_hash_.pop_front();
        if (mine(id) ? hash_out(id) : hash_in(id)) break;
    }
    if (!to_hash_.empty()) queue_hash_turn();
}

bool StreamTable::hash_in(std::uint64_t id) {
    auto* s = find_in(id);
    if (!s) return false;
    s->hash_queued = false;
    if (s->unhashed == 0) return false;  // failed meanwhile: its chunks were dropped
    hash_some(*s, conn_.host().limits.stream_hash_turn_bytes);
    if (s->unhashed > 0) {
        queue_hash(id, s->hash_queued);  // back in line, behind the others
    } else if (s->end_hash) {
        check_end(*s);
        return true;
    }
    deliver(*s);
    return true;
}

std::size_t StreamTable::unhashed_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& [id, s] : in_) n += s->unhashed;
    return n;
}

void StreamTable::hash_some(In& s, std::size_t budget) {
    while (budget > 0 && s.unhashed > 0) {
        const auto& chunk = s.chunks[s.hash_chunk];
        if (s.hash_offset == chunk.size()) {  // the unhashed bytes go on in the next chunk
            ++s.hash_chunk;
            s.hash_offset = 0;
            continue;
        }
        auto n = std::min(chunk.size() - s.hash_offset, budget);
        s.hash.update(std::string_view(chunk).substr(s.hash_offset, n));
        s.hash_offset += n;
        s.unhashed -= n;
        budget -= n;
    }
}

void StreamTable::drop_chunks(In& s) {
    s.chunks.clear();
    s.buffered = s.unhashed = s.hash_chunk = s.hash_offset = 0;
}

bool StreamTable::hashes_behind(const Out& s) {
    return !s.options.content_hash && s.feed->seekable();
}

bool StreamTable::hash_out(std::uint64_t id) {
    auto* s = find_out(id);
    if (!s) return false;
    s->hash_queued = false;
    if (s->hashed >= s->position) return false;
    auto n = std::size_t(std::min<std::uint64_t>(conn_.host().limits.stream_hash_turn_bytes,
                                                 s->position - s->hashed));
    thread_local std::vector<std::uint8_t> block;  // the loop thread's, reused by every turn
    if (block.size() < n) block.resize(n);
    auto bytes = std::span(block.data(), n);
    if (auto r = s->feed->fill(s->hashed, bytes); !r) {
        fail_out(id, r.error(), true);
        return true;
    }
    s->hash.update(bytes);
    s->hashed += n;
    if (s->hashed < s->position) queue_hash(id, s->hash_queued);
    wake(*s);  // it may send again, or its end
    return true;
}

}  // namespace hawser::detail
