// StreamTable, sending (see stream_table.hpp): opens, the resumed prefix's hash on a worker,
// and the pump that hands data to the connection round-robin while its send queue is short.
// Thread affinity: the connection's loop (the prefix hash job: a worker).
#include <algorithm>

#include "rpc/conn.hpp"
#include "rpc/stream_state.hpp"
#include "rpc/stream_table.hpp"

namespace hawser::detail {

Result<std::uint64_t> StreamTable::open(Outgoing outgoing) {
    if (outgoing.name.empty() || outgoing.name.size() > max_command_name)
        return Error{Errc::invalid_argument, "stream names are 1 to 255 bytes"};
    if (out_.size() >= conn_.host().limits.max_outgoing_streams)
        return Error{Errc::limit_exceeded, "too many streams open on this connection"};
    auto s = std::make_unique<Out>();
    s->id = next_id_;
    next_id_ += 2;
    s->resumable = outgoing.resumable;
    s->size = outgoing.options.size;
    s->feed = std::move(outgoing.feed);
    s->sink = dynamic_cast<SinkFeed*>(s->feed.get());
    s->accepted = std::move(outgoing.accepted);
    s->done = std::move(outgoing.done);
    auto timeout = outgoing.options.accept_timeout.count() > 0 ? outgoing.options.accept_timeout
                                                               : conn_.host().timeouts.call;
    s->accept_deadline = conn_.loop().now() + timeout;
    std::vector<std::uint8_t> payload;
    encode_stream_open(payload, {s->size.value_or(unknown_stream_size), s->resumable,
                                 as_bytes(outgoing.options.metadata.bytes())});
    s->options = std::move(outgoing.options);
    s->options.metadata = {};  // sent; not kept
    auto id = s->id;
    out_.emplace(id, std::move(s));
    conn_.send_message(kind_stream_open, id, outgoing.name, payload, false);
    return id;
}

void StreamTable::start_sending(Out& s, std::uint64_t offset) {
    if (offset == 0) {
        s.state = Out::State::sending;
        return wake(s);
    }
    // The end's hash covers the whole content: the bytes the receiver has are read and hashed
    // on a worker, not on this loop.
    s.state = Out::State::hashing;
    auto conn = std::weak_ptr<Conn>(conn_.shared_from_this());
    bool posted =
        conn_.host().runtime.workers().try_post(0, [conn, id = s.id, feed = s.feed, offset] {
            Result<ContentHasher> result = ContentHasher();
            std::vector<std::uint8_t> block(256 * 1024);
            for (std::uint64_t at = 0; at < offset && result;) {
                auto n = std::size_t(std::min<std::uint64_t>(block.size(), offset - at));
                auto span = std::span(block.data(), n);
                if (auto r = feed->fill(at, span); !r)
                    result = r.error();
                else
                    result->update(span);
                at += n;
            }
            if (auto c = conn.lock())
                c->loop().post([conn, id, result = std::move(result)]() mutable {
                    if (auto c = conn.lock())
                        if (auto* table = c->streams_if_any())
                            table->prefix_hashed(id, std::move(result));
                });
        });
    if (!posted) fail_out(s.id, Error{Errc::overloaded, "the worker pool is full"}, true);
}

void StreamTable::prefix_hashed(std::uint64_t id, Result<ContentHasher> hash) {
    auto* s = find_out(id);
    if (!s || s->state != Out::State::hashing) return;
    if (!hash) return fail_out(id, hash.error(), true);
    s->hash = *hash;
    s->position = hash->bytes();
    s->state = Out::State::sending;
    wake(*s);
}

void StreamTable::write(std::uint64_t id, std::string bytes,
                        std::function<void(Result<void>)> done) {
    auto* s = find_out(id);
    if (!s || !s->sink)
        return post([done = std::move(done)] {
            done(Error{Errc::cancelled, "the stream is over"});
        });
    if (s->sink->busy() || s->sink->finished())
        return post([done = std::move(done), finished = s->sink->finished()] {
            done(Error{Errc::invalid_argument,
                       finished ? "write after finish()" : "a write is already pending"});
        });
    s->sink->write(std::move(bytes), std::move(done), s->position);
    if (auto completed = s->sink->take_completed())
        post([completed = std::move(completed)] { completed(Result<void>{}); });
    wake(*s);
}

void StreamTable::finish(std::uint64_t id, std::function<void(Result<void>)> done) {
    auto* s = find_out(id);
    if (!s || !s->sink || s->sink->finished() || s->done)
        return post([done = std::move(done)] {
            done(Error{Errc::invalid_argument, "the stream is over or already finishing"});
        });
    s->sink->finish();
    s->done = std::move(done);
    wake(*s);
}

void StreamTable::cancel(std::uint64_t id) {
    fail_out(id, Error{Errc::cancelled, "the sender cancelled the stream"}, true);
}

bool StreamTable::can_progress(const Out& s) const {
    if (s.state != Out::State::sending) return false;
    auto ready = s.feed->ready(s.position);
    if (ready == 0) return s.feed->ended(s.position);
    return s.credit > 0 && send_credit_ > 0;
}

void StreamTable::wake(Out& s) {
    if (s.queued || !can_progress(s)) return;
    s.queued = true;
    ready_.push_back(s.id);
    conn_.wake_streams();
}

void StreamTable::pump() {
    if (pumping_) return;
    pumping_ = true;
    while (!ready_.empty() && conn_.stream_room()) {
        auto id = ready_.front();
        ready_.pop_front();
        auto* s = find_out(id);
        if (!s) continue;
        s->queued = false;
        send_some(*s);
        if (auto* again = find_out(id)) wake(*again);  // to the back of the line
    }
    pumping_ = false;
}

void StreamTable::send_some(Out& s) {
    if (!can_progress(s)) return;
    auto ready = s.feed->ready(s.position);
    if (ready == 0) {
        if (s.size && s.position != *s.size)
            return fail_out(
                s.id,
                Error{Errc::size_mismatch, "the stream was given " + std::to_string(s.position) +
                                               " of " + std::to_string(*s.size) + " bytes"},
                true);
        auto digest = s.hash.digest();
        s.state = Out::State::ended;
        conn_.send_message(kind_stream_end, s.id, {}, digest, false);
        return;
    }
    if (s.size && s.position + ready > *s.size)
        return fail_out(s.id, Error{Errc::size_mismatch, "more bytes than the stream's size"},
                        true);
    auto n = std::size_t(std::min<std::uint64_t>(
        {ready, s.credit, send_credit_, conn_.host().limits.stream_chunk_bytes}));
    Result<void> filled;
    conn_.send_stream_data(
        s.id, n,
        [&](std::span<std::uint8_t> into, std::uint64_t at) {
            if (filled) filled = s.feed->fill(s.position + at, into);
            s.hash.update(into);
        },
        s.options.compress);
    s.position += n;
    s.credit -= n;
    send_credit_ -= n;
    if (!filled) return fail_out(s.id, filled.error(), true);
    s.feed->sent(s.position);
    if (s.sink)
        if (auto completed = s.sink->take_completed())
            post([completed = std::move(completed)] { completed(Result<void>{}); });
}

}  // namespace hawser::detail
