// StreamTable, sending (see stream_table.hpp): opens, the resumed prefix's hash on a worker,
// and the pump that hands data to the connection round-robin while its send queue is short.
// Thread affinity: the connection's loop (the prefix hash job: a worker).
#include <algorithm>
#include <span>
#include <vector>

#include "rpc/conn.hpp"
#include "rpc/stream_state.hpp"
#include "rpc/stream_table.hpp"

namespace hawser::detail {

namespace {
// How far sending may run ahead of a feed's hash, in chunks: enough that the two take turns
// without waiting for each other.
constexpr std::uint64_t max_hash_lag_chunks = 4;
}  // namespace

Result<std::uint64_t> StreamTable::open(Outgoing outgoing) {
    if (outgoing.name.empty() || outgoing.name.size() > max_command_name)
        return Error{Errc::invalid_argument, "stream names are 1 to 255 bytes"};
    if (outgoing.options.stop.stop_requested())
        return Error{Errc::cancelled, "the stream was stopped before it opened"};
    if (!conn_.serving())  // as outgoing calls are: a draining connection only finishes work
        return conn_.draining() ? Error{Errc::shutting_down, "the connection is shutting down"}
                                : Error{Errc::disconnected, "the connection is closing"};
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
    // A receiver that resumes reads what it has first to hash it: a resumable stream waits
    // longer for its accept by default.
    auto timeout = outgoing.options.accept_timeout;
    if (timeout.count() <= 0)
        timeout = outgoing.resumable ? std::max<std::chrono::milliseconds>(
                                           conn_.host().timeouts.call, std::chrono::minutes(5))
                                     : conn_.host().timeouts.call;
    s->accept_deadline = conn_.loop().now_exact() + timeout;
    std::vector<std::uint8_t> payload;
    encode_stream_open(payload, {s->size.value_or(unknown_stream_size), s->resumable,
                                 as_bytes(outgoing.options.metadata.bytes())});
    s->options = std::move(outgoing.options);
    s->options.metadata = {};  // sent; not kept
    auto id = s->id;
    if (s->options.stop.stop_possible()) {
        // Runs on the thread that asks for the stop: the cancel waits for the loop, which gets
        // the only strong reference taken here (the connection is never released elsewhere).
        std::function<void()> cancel = [weak = conn_.weak_from_this(), id] {
            if (auto conn = weak.lock()) {
                auto& loop = conn->loop();
                loop.post([conn = std::move(conn), id] {
                    if (auto* table = conn->streams_if_any()) table->cancel(id);
                });
            }
        };
        s->on_stop = std::make_unique<std::stop_callback<std::function<void()>>>(s->options.stop,
                                                                                 std::move(cancel));
    }
    out_.emplace(id, std::move(s));
    conn_.send_message(kind_stream_open, id, outgoing.name, payload, false);
    return id;
}

void StreamTable::start_sending(Out& s, std::uint64_t offset) {
    if (offset == 0 || s.options.content_hash) {
        s.position = offset;
        s.state = Out::State::sending;
        return wake(s);
    }
    // The end's hash covers the whole content: the bytes the receiver has are read and hashed
    // on a worker, not on this loop. Such hashes take long jobs' places (half the workers), as
    // the receiver's do: peers that ask for resumes and drop them cannot hold every worker.
    auto& workers = conn_.host().runtime.workers();
    if (!workers.try_start_long_job())
        return fail_out(s.id, Error{Errc::overloaded, "too many resumed streams are being hashed"},
                        true);
    s.state = Out::State::hashing;
    // The job holds the connection and hands it back to its loop: never released elsewhere.
    // It stops reading once the stream has left the table (reset, cancelled, closed).
    auto job = [conn = conn_.shared_from_this(), id = s.id, feed = s.feed, offset,
                stop = s.options.stop, in_table = std::weak_ptr<const bool>(s.in_table),
                &workers]() mutable {
        WorkerPool::LongJobPlace place{workers};
        Result<ContentHasher> result = ContentHasher();
        std::vector<std::uint8_t> block(256 * 1024);
        for (std::uint64_t at = 0; at < offset && result;) {
            if (stop.stop_requested() || in_table.expired()) {  // not worth reading on
                result = Error{Errc::cancelled, "the stream ended"};
                break;
            }
            auto n = std::size_t(std::min<std::uint64_t>(block.size(), offset - at));
            auto span = std::span(block.data(), n);
            if (auto r = feed->fill(at, span); !r)
                result = r.error();
            else
                result->update(span);
            at += n;
        }
        auto& loop = conn->loop();
        loop.post([conn = std::move(conn), id, result = std::move(result)]() mutable {
            if (auto* table = conn->streams_if_any()) table->prefix_hashed(id, std::move(result));
        });
    };
    if (!workers.try_post(0, std::move(job))) {  // dropped unrun: its place comes back here
        workers.end_long_job();
        fail_out(s.id, Error{Errc::overloaded, "the worker pool is full"}, true);
    }
}

void StreamTable::prefix_hashed(std::uint64_t id, Result<ContentHasher> hash) {
    auto* s = find_out(id);
    if (!s || s->state != Out::State::hashing) return;
    if (!hash) return fail_out(id, hash.error(), true);
    s->hash = *hash;
    s->position = s->hashed = hash->bytes();
    s->state = Out::State::sending;
    wake(*s);
}

void StreamTable::write(std::uint64_t id, std::string bytes,
                        std::function<void(Result<void>)> done) {
    auto* s = find_out(id);
    if (!s || !s->sink) return post([done = std::move(done), e = why_over(id)] { done(e); });
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
    if (!s || !s->sink) return post([done = std::move(done), e = why_over(id)] { done(e); });
    if (s->sink->finished() || s->done)
        return post([done = std::move(done)] {
            done(Error{Errc::invalid_argument, "finish() was called already"});
        });
    s->sink->finish();
    s->done = std::move(done);
    wake(*s);
}

Error StreamTable::why_over(std::uint64_t id) const {
    auto it = failed_sinks_.find(id);
    return it != failed_sinks_.end() ? it->second
                                     : Error{Errc::invalid_argument, "the stream is over"};
}

void StreamTable::cancel(std::uint64_t id) {
    fail_out(id, Error{Errc::cancelled, "the sender cancelled the stream"}, true);
}

bool StreamTable::can_progress(const Out& s) const {
    if (s.state != Out::State::sending) return false;
    auto ready = s.feed->ready(s.position);
    if (ready == 0)  // the end, once the hash has caught up
        return s.feed->ended(s.position) && (!hashes_behind(s) || s.hashed == s.position);
    // The hash stays within a few chunks of what was sent: a file's bytes are read again while
    // the page cache still has them, and the end does not wait long for it.
    if (hashes_behind(s) &&
        s.position - s.hashed >=
            max_hash_lag_chunks * std::uint64_t(conn_.host().limits.stream_chunk_bytes))
        return false;
    return s.credit > 0 && send_credit_ > 0;
}

void StreamTable::wake(Out& s) {
    if (s.queued || !can_progress(s)) return;
    s.queued = true;
    ready_.push_back(s.id);
    conn_.wake_streams();
}

void StreamTable::pump() {
    // One chunk per turn, whatever it compresses to: the turn's cost is bounded.
    while (!ready_.empty() && conn_.stream_room()) {
        auto id = ready_.front();
        ready_.pop_front();
        auto* s = find_out(id);
        if (!s) continue;  // ended meanwhile
        s->queued = false;
        send_some(*s);
        if (auto* again = find_out(id)) wake(*again);  // to the back of the line
        return;
    }
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
        auto digest = s.options.content_hash ? *s.options.content_hash : s.hash.digest();
        s.state = Out::State::ended;
        conn_.send_message(kind_stream_end, s.id, {}, digest, false);
        return;
    }
    if (s.size && s.position + ready > *s.size)
        return fail_out(s.id, Error{Errc::size_mismatch, "more bytes than the stream's size"},
                        true);
    auto n = std::size_t(std::min<std::uint64_t>(
        {ready, s.credit, send_credit_, conn_.host().limits.stream_chunk_bytes}));
    // Accounted before sending: sending may close the connection, which frees `s`.
    auto id = s.id;
    auto base = s.position;
    s.position += n;
    s.credit -= n;
    send_credit_ -= n;
    Result<void> filled;
    bool hash_now = !s.options.content_hash && !hashes_behind(s);
    conn_.send_stream_data(
        id, n,
        [&](std::span<std::uint8_t> into, std::uint64_t at) {  // runs before any close
            if (filled) filled = s.feed->fill(base + at, into);
            if (hash_now) s.hash.update(into);
        },
        s.options.compress);
    auto* again = find_out(id);
    if (!again) return;
    if (!filled) return fail_out(id, filled.error(), true);
    if (hashes_behind(*again)) queue_hash(id, again->hash_queued);
    again->feed->sent(again->position);
    if (again->sink)
        if (auto completed = again->sink->take_completed())
            post([completed = std::move(completed)] { completed(Result<void>{}); });
}

}  // namespace hawser::detail
