// StreamTable, the states and the messages that arrive (see stream_table.hpp); sending is in
// stream_sending.cpp, hashing in stream_hashing.cpp. Thread affinity: the connection's loop.
#include "rpc/stream_table.hpp"

#include <algorithm>

#include "rpc/conn.hpp"
#include "rpc/stream_state.hpp"

namespace hawser::detail {

namespace {
// Buffered data that arrived in small messages is joined up to this size.
constexpr std::size_t max_joined_chunk = 64 * 1024;
}  // namespace

StreamTable::StreamTable(Conn& conn) : conn_(conn), next_id_(conn.host().is_client ? 1 : 2) {}
StreamTable::~StreamTable() = default;

std::string StreamTable::check_limits(const Limits& l) {
    if (l.stream_chunk_bytes < 1 || l.stream_chunk_bytes > (1u << 20) ||
        l.stream_chunk_bytes + max_message_header > l.max_frame_bytes)
        return "stream_chunk_bytes must be 1 byte to 1 MiB, and a chunk must fit in a frame";
    if (l.stream_hash_turn_bytes < 1024 || l.stream_hash_turn_bytes > (1u << 20))
        return "stream_hash_turn_bytes must be 1 KiB to 1 MiB";
    if (l.stream_window_bytes < 1024 || l.stream_window_bytes > max_stream_credit)
        return "stream_window_bytes must be 1 KiB to 2 GiB";
    if (l.stream_connection_window_bytes < 1024 ||
        l.stream_connection_window_bytes > max_stream_credit)
        return "stream_connection_window_bytes must be 1 KiB to 2 GiB";
    return {};
}

StreamTable::Out* StreamTable::find_out(std::uint64_t id) {
    auto it = out_.find(id);
    return it == out_.end() ? nullptr : it->second.get();
}

StreamTable::In* StreamTable::find_in(std::uint64_t id) {
    auto it = in_.find(id);
    return it == in_.end() ? nullptr : it->second.get();
}

void StreamTable::violation(std::string_view what) {
    conn_.protocol_close(CloseReason::protocol_error, what);
}

void StreamTable::post(std::function<void()> f) {
    conn_.post_user("stream callback", std::move(f));
}

void StreamTable::send_reset(std::uint64_t id, Errc code, std::string_view text) {
    conn_.send_coded(kind_stream_reset, id, std::uint16_t(code), text);
}

void StreamTable::stream_gone() {
    if (conn_.draining())
        conn_.loop().post([conn = conn_.shared_from_this()] { conn->drain_if_idle(); });
}

void StreamTable::send_credit(std::uint64_t id, std::uint32_t credit) {
    std::vector<std::uint8_t> payload;
    encode_stream_credit(payload, credit);
    conn_.send_message(kind_stream_window, id, {}, payload, false);
}

// --- the peer opens, this side accepts and reads ---

void StreamTable::on_open(const MessageView& m) {
    auto open = parse_stream_open(m.payload);
    if (!open || m.name.empty()) return violation("malformed stream open");
    if (mine(m.id) || m.id <= highest_in_id_)
        return violation("stream open with an id the peer may not use");
    highest_in_id_ = m.id;
    const auto& limits = conn_.host().limits;
    if (!conn_.serving()) return send_reset(m.id, Errc::shutting_down, "the peer is shutting down");
    if (in_.size() >= limits.max_incoming_streams)
        return send_reset(m.id, Errc::limit_exceeded, "too many streams open on this connection");
    auto* entry = conn_.host().commands.find_stream(m.name);
    if (!entry)
        return send_reset(m.id, Errc::unknown_command,
                          "no stream handler '" + std::string(m.name) + "'");
    if (!conn_.admitted(entry->public_access))
        return send_reset(m.id, Errc::unauthenticated,
                          "stream '" + std::string(m.name) + "' needs a logged-in session");
    auto metadata =
        DataFrame::decode(std::string_view(reinterpret_cast<const char*>(open->metadata.data()),
                                           open->metadata.size()),
                          limits.dataframe);
    if (!metadata) return send_reset(m.id, metadata.error().code, metadata.error().message);
    auto s = std::make_unique<In>();
    s->id = m.id;
    if (open->size != unknown_stream_size) s->size = open->size;
    s->resumable = open->resumable;
    in_.emplace(m.id, std::move(s));
    auto ref = std::make_shared<StreamRef>(conn_.shared_from_this(), m.id);
    IncomingStream incoming(
        std::move(ref), std::string(m.name), std::move(*metadata),
        open->size == unknown_stream_size ? std::nullopt : std::optional<std::uint64_t>(open->size),
        open->resumable);
    Request request{Connection(conn_.shared_from_this()), entry->name};
    conn_.host().run_user("stream handler", [&] { entry->handler(request, std::move(incoming)); });
}

void StreamTable::accept(std::uint64_t id, std::uint64_t offset, const ContentHasher* prefix) {
    auto* s = find_in(id);
    if (!s || s->state != In::State::offered) return;  // cancelled, or closed meanwhile
    const auto& limits = conn_.host().limits;
    s->state = In::State::open;
    s->position = offset;
    if (prefix) s->hash = *prefix;
    s->window = std::min(limits.stream_window_bytes, max_stream_credit);
    s->left = s->window;
    if (!granted_) {  // the connection's window, granted with the first stream accepted
        granted_ = true;
        auto window = std::min(limits.stream_connection_window_bytes, max_stream_credit);
        recv_left_ = window;
        send_credit(0, window);
    }
    std::vector<std::uint8_t> payload;
    encode_stream_accept(payload, {offset, s->window});
    conn_.send_message(kind_stream_accept, id, {}, payload, false);
}

void StreamTable::on_data(const MessageView& m) {
    auto n = m.payload.size();
    if (n == 0 || mine(m.id) || m.id > highest_in_id_)
        return violation("stream data for a stream the peer never opened");
    if (n > recv_left_) return violation("stream data past the connection's window");
    recv_left_ -= n;
    connection_consumed(n);
    auto* s = find_in(m.id);
    if (!s || s->state == In::State::failed) return;  // reset here while the data was in flight
    if (s->state == In::State::offered) return violation("stream data before the accept");
    if (s->state == In::State::ended || s->end_hash) return violation("stream data after the end");
    if (n > s->left) return violation("stream data past the stream's window");
    s->left -= n;
    if (s->size && s->position + n > *s->size)
        return fail_in(*s, Errc::size_mismatch, "more bytes than the stream's declared size");
    s->position += n;
    s->buffered += n;
    s->unhashed += n;
    // Small messages join the last chunk: what is buffered costs its bytes, not a string each.
    auto bytes = std::string_view(reinterpret_cast<const char*>(m.payload.data()), n);
    if (!s->chunks.empty() && s->chunks.back().size() + n <= max_joined_chunk)
        s->chunks.back() += bytes;
    else
        s->chunks.emplace_back(bytes);
    queue_hash(s->id, s->hash_queued);
}

void StreamTable::on_end(const MessageView& m) {
    auto hash = parse_stream_end(m.payload);
    if (!hash) return violation("malformed stream end");
    if (mine(m.id) || m.id > highest_in_id_)
        return violation("stream end for a stream the peer never opened");
    auto* s = find_in(m.id);
    if (!s || s->state == In::State::failed) return;
    if (s->state != In::State::open || s->end_hash) return violation("stream end out of turn");
    if (s->size && s->position != *s->size)
        return fail_in(*s, Errc::size_mismatch,
                       "the stream ended after " + std::to_string(s->position) + " of " +
                           std::to_string(*s->size) + " bytes");
    s->end_hash = *hash;
    if (s->unhashed == 0) check_end(*s);  // else when its hash turns have caught up
}

void StreamTable::check_end(In& s) {
    if (s.hash.digest() != *s.end_hash)
        return fail_in(s, Errc::hash_mismatch,
                       "the content's BLAKE2b hash differs from the sender's");
    s.state = In::State::ended;
    deliver(s);
}

void StreamTable::read(std::uint64_t id, std::function<void(Result<std::string>)> done) {
    auto* s = find_in(id);
    if (!s || s->state == In::State::offered || s->reader || s->end_read) {
        Error e{s && s->reader ? Errc::invalid_argument : Errc::cancelled,
                s && s->reader ? "a read is already pending on this stream" : "the stream is over"};
        return post([done = std::move(done), e] { done(e); });
    }
    s->reader = std::move(done);
    deliver(*s);
}

std::optional<std::array<std::uint8_t, 32>> StreamTable::content_hash(std::uint64_t id) {
    auto* s = find_in(id);
    if (!s || !s->end_read) return std::nullopt;
    return s->hash.digest();
}

void StreamTable::deliver(In& s) {
    if (!s.reader) return;
    Result<std::string> result = std::string();
    if (!s.chunks.empty()) {
        if (s.buffered - s.unhashed < s.chunks.front().size()) return;  // its hash turn comes
        result = std::move(s.chunks.front());
        s.chunks.pop_front();
        if (s.hash_chunk > 0)  // the hash cursor keeps its place
            --s.hash_chunk;
        else
            s.hash_offset = 0;
    } else if (s.state == In::State::ended) {
        s.end_read = true;
    } else if (s.state == In::State::failed) {
        result = s.error;
    } else {
        return;  // waits for data
    }
    std::size_t n = result ? result->size() : 0;
    post([done = std::exchange(s.reader, nullptr), r = std::move(result)]() mutable {
        done(std::move(r));
    });
    // Last: granting credit may close the connection, which fails `s` (it stays in the table).
    if (n > 0) consumed(s, n);
}

void StreamTable::consumed(In& s, std::size_t n) {
    s.buffered -= n;
    if (s.state != In::State::open) return;
    s.unreturned += n;
    if (s.unreturned >= s.window / 4) {  // in batches: one window message per quarter window
        s.left += s.unreturned;
        send_credit(s.id, std::uint32_t(s.unreturned));
        s.unreturned = 0;
    }
}

void StreamTable::connection_consumed(std::size_t n) {
    recv_unreturned_ += n;
    auto window = std::min(conn_.host().limits.stream_connection_window_bytes, max_stream_credit);
    if (recv_unreturned_ >= window / 4) {
        recv_left_ += recv_unreturned_;
        send_credit(0, std::uint32_t(recv_unreturned_));
        recv_unreturned_ = 0;
    }
}

void StreamTable::fail_in(In& s, Errc code, std::string text) {
    send_reset(s.id, code, text);
    s.state = In::State::failed;
    s.error = Error{code, std::move(text)};
    drop_chunks(s);
    deliver(s);
}

void StreamTable::finish_incoming(std::uint64_t id, Errc code, std::string_view text) {
    auto* s = find_in(id);
    if (!s) return;
    switch (s->state) {
        case In::State::offered:
            send_reset(id, code == Errc::ok ? Errc::not_allowed : code,
                       text.empty() ? "the receiver refused the stream" : text);
            break;
        case In::State::open:
            send_reset(id, code == Errc::ok ? Errc::cancelled : code,
                       text.empty() ? "the receiver cancelled the stream" : text);
            break;
        case In::State::ended:
            send_reset(id, s->end_read ? code : Errc::cancelled, text);
            break;
        case In::State::failed:
            break;  // the peer was told already
    }
    erase_in(id);
}

void StreamTable::erase_in(std::uint64_t id) {
    auto it = in_.find(id);
    if (it == in_.end()) return;
    auto& s = *it->second;
    if (s.reader)
        post([done = std::move(s.reader)] {
            done(Error{Errc::cancelled, "the stream was cancelled"});
        });
    in_.erase(it);
    stream_gone();
}

// --- messages about streams this side opened ---

void StreamTable::on_accept(const MessageView& m) {
    auto accept = parse_stream_accept(m.payload);
    if (!accept) return violation("malformed stream accept");
    if (!mine(m.id) || m.id >= next_id_) return violation("accept for a stream never opened");
    auto* s = find_out(m.id);
    if (!s) return;  // cancelled meanwhile
    if (s->state != Out::State::opening) return violation("a stream accepted twice");
    if (accept->offset > 0 && (!s->resumable || !s->size || accept->offset > *s->size))
        return violation("a stream accepted from an offset it cannot start at");
    s->credit = accept->window;
    s->acknowledged = accept->offset;  // the receiver has those already
    if (s->accepted) {
        s->handle = s->sink != nullptr;  // the callback makes the sink's handle
        auto accepted = std::exchange(s->accepted, nullptr);
        post([accepted = std::move(accepted)] { accepted(Result<void>{}); });
    }
    start_sending(*s, accept->offset);
}

void StreamTable::on_window(const MessageView& m) {
    auto credit = parse_stream_credit(m.payload);
    if (!credit) return violation("malformed stream window");
    if (m.id == 0) {
        if (send_credit_ + *credit > max_stream_credit)
            return violation("the connection's stream window overflowed");
        send_credit_ += *credit;
        for (auto& [id, s] : out_) wake(*s);
        return;
    }
    if (!mine(m.id) || m.id >= next_id_) return violation("window for a stream never opened");
    auto* s = find_out(m.id);
    if (!s) return;
    if (s->state == Out::State::opening) return violation("window before the accept");
    if (s->credit + *credit > max_stream_credit) return violation("a stream's window overflowed");
    s->credit += *credit;
    s->acknowledged += *credit;
    if (s->options.on_progress) post([f = s->options.on_progress, n = s->acknowledged] { f(n); });
    wake(*s);
}

void StreamTable::on_reset(const MessageView& m) {
    auto coded = parse_coded(m.payload);
    if (!coded) return violation("malformed stream reset");
    auto code = Errc(coded->first);
    std::string text(coded->second.substr(0, 1024));  // kept until the handles go: bounded
    if (!mine(m.id)) {
        if (m.id > highest_in_id_) return violation("reset for a stream never opened");
        // Code 0 is the receiver's verdict after an end; a sender never says it.
        if (code == Errc::ok) return violation("a stream reset with code 0 by its sender");
        auto* s = find_in(m.id);
        if (!s) return;
        if (s->state == In::State::failed) return;
        // The sender gave up: the reader learns why; nothing more is said to it.
        s->state = In::State::failed;
        s->error = Error{code, text.empty() ? "the sender cancelled the stream" : text};
        drop_chunks(*s);
        return deliver(*s);
    }
    if (m.id >= next_id_) return violation("reset for a stream never opened");
    auto* s = find_out(m.id);
    if (!s) return;
    if (code != Errc::ok) return fail_out(m.id, Error{code, std::move(text)}, false);
    if (s->state != Out::State::ended) return violation("a stream kept before its end");
    auto done = std::move(s->done);
    auto progress = s->options.on_progress;
    auto total = s->position;
    out_.erase(m.id);
    post([done = std::move(done), progress = std::move(progress), total] {
        if (progress) progress(total);
        if (done) done(Result<void>{});
    });
    stream_gone();
}

void StreamTable::fail_out(std::uint64_t id, const Error& error, bool tell_peer) {
    auto it = out_.find(id);
    if (it == out_.end()) return;
    auto s = std::move(it->second);
    out_.erase(it);
    // Local failures (a file that could not be read) are the sender's business: the peer gets
    // the code's generic text.
    if (tell_peer)
        send_reset(id, error.code,
                   error.code == Errc::storage_error ? describe(error.code) : error.message);
    if (s->handle) failed_sinks_[id] = error;  // later writes and finish() learn why
    std::vector<std::function<void(Result<void>)>> callbacks{std::move(s->accepted),
                                                             std::move(s->done)};
    if (auto* sink = dynamic_cast<SinkFeed*>(s->feed.get()))
        callbacks.push_back(sink->take_pending());
    for (auto& f : callbacks)
        if (f) post([f = std::move(f), error] { f(error); });
    stream_gone();
}

void StreamTable::abandon(std::uint64_t id) {
    if (!mine(id)) {
        auto* s = find_in(id);
        if (!s) return;
        finish_incoming(id,
                        s->state == In::State::offered ? Errc::not_allowed
                        : s->end_read                  ? Errc::ok
                                                       : Errc::cancelled,
                        {});
        return;
    }
    auto* s = find_out(id);
    if (s) s->handle = false;  // nobody is left to learn why it ends
    // A sink dropped after finish() still waits for the verdict; before it, it is cancelled.
    if (s && s->sink && !s->sink->finished())
        fail_out(id, Error{Errc::cancelled, "the stream's sink was dropped before finish()"}, true);
    failed_sinks_.erase(id);
}

void StreamTable::on_sweep(Clock::time_point now) {
    std::vector<std::uint64_t> late;
    for (auto& [id, s] : out_)
        if (s->state == Out::State::opening && now >= s->accept_deadline) late.push_back(id);
    for (auto id : late)
        fail_out(id, Error{Errc::timeout, "the receiver did not accept the stream in time"}, true);
}

void StreamTable::fail_all(const Error& why) {
    std::vector<std::uint64_t> ids;
    for (auto& [id, s] : out_) ids.push_back(id);
    for (auto id : ids) fail_out(id, why, false);
    for (auto& [id, s] : in_) {
        s->state = In::State::failed;
        s->error = why;
        drop_chunks(*s);
        deliver(*s);  // later reads get `why` too, until the handles go
    }
    ready_.clear();
}

}  // namespace hawser::detail
