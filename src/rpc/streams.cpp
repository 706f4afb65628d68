// The big-stream handles (streams.hpp) and Connection's stream entry points: each operation
// runs on the connection's loop, in the StreamTable, now when already there, posted otherwise.
// Thread safety: every function here may be called from any thread.
#include "hawser/streams.hpp"

#include <sodium.h>

#include <cstring>

#include "hawser/connection.hpp"
#include "rpc/conn.hpp"
#include "rpc/stream_state.hpp"

namespace hawser {

using detail::Conn;
using detail::StreamRef;
using detail::StreamTable;

// --- ContentHasher ---

static_assert(sizeof(crypto_generichash_state) <= 384 && alignof(crypto_generichash_state) <= 64);

ContentHasher::ContentHasher() {
    crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_), nullptr, 0, 32);
}

void ContentHasher::update(std::span<const std::uint8_t> bytes) {
    crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), bytes.data(),
                              bytes.size());
    bytes_ += bytes.size();
}

std::array<std::uint8_t, 32> ContentHasher::digest() const {
    crypto_generichash_state copy;  // final() consumes the state; more may be fed after
    std::memcpy(&copy, state_, sizeof copy);
    std::array<std::uint8_t, 32> out{};
    crypto_generichash_final(&copy, out.data(), out.size());
    return out;
}

// --- StreamRef ---

namespace detail {

StreamRef::~StreamRef() {
    // The loop gets the only strong reference taken here: the connection is never released
    // on the application's thread.
    if (auto conn = conn_.lock()) {
        auto& loop = conn->loop();
        loop.post([conn = std::move(conn), id = id_] {
            if (auto* table = conn->streams_if_any()) table->abandon(id);
        });
    }
}

bool StreamRef::on_loop(std::function<void(StreamTable&)> op) const {
    auto conn = conn_.lock();
    if (!conn) return false;
    auto& loop = conn->loop();
    loop.dispatch([conn = std::move(conn), op = std::move(op)] { op(conn->streams()); });
    return true;
}

}  // namespace detail

namespace {

Error gone() {
    return Error{Errc::disconnected, "the connection is closed"};
}

}  // namespace

// --- StreamSink ---

std::uint64_t StreamSink::id() const noexcept {
    return ref_ ? ref_->id() : 0;
}

void StreamSink::start_write(std::string bytes, std::function<void(Result<void>)> done) const {
    if (!ref_) return done(Error{Errc::invalid_argument, "an empty StreamSink"});
    auto conn = ref_->conn().lock();
    if (!conn) return done(gone());
    if (conn->loop().in_loop()) return conn->streams().write(ref_->id(), std::move(bytes), done);
    // From another thread the bytes wait for the loop counted against the connection's send
    // limit, as Connection::send's do: a writer that does not wait for completions is refused.
    auto size = bytes.size();
    auto& loop = conn->loop();
    if (!conn->reserve_post(size))
        return loop.post([conn = std::move(conn), done = std::move(done)] {
            conn->post_user("stream callback", [done] {
                done(
                    Error{Errc::overloaded, "too much is waiting for this connection's IO thread"});
            });
        });
    loop.post([conn = std::move(conn), size, id = ref_->id(), bytes = std::move(bytes),
               done = std::move(done)]() mutable {
        conn->release_post(size);
        conn->streams().write(id, std::move(bytes), std::move(done));
    });
}

void StreamSink::start_finish(std::function<void(Result<void>)> done) const {
    if (!ref_) return done(Error{Errc::invalid_argument, "an empty StreamSink"});
    auto shared = std::make_shared<std::function<void(Result<void>)>>(std::move(done));
    if (!ref_->on_loop(
            [id = ref_->id(), shared](StreamTable& t) { t.finish(id, std::move(*shared)); }))
        (*shared)(gone());
}

void StreamSink::cancel() const {
    if (ref_) ref_->on_loop([id = ref_->id()](StreamTable& t) { t.cancel(id); });
}

// --- StreamSource ---

std::uint64_t StreamSource::id() const noexcept {
    return ref_ ? ref_->id() : 0;
}

std::uint64_t StreamSource::offset() const noexcept {
    return ref_ ? ref_->offset() : 0;
}

void StreamSource::start_read(std::function<void(Result<std::string>)> done) const {
    if (!ref_) return done(Error{Errc::invalid_argument, "an empty StreamSource"});
    auto shared = std::make_shared<std::function<void(Result<std::string>)>>(std::move(done));
    if (!ref_->on_loop(
            [id = ref_->id(), shared](StreamTable& t) { t.read(id, std::move(*shared)); }))
        (*shared)(gone());
}

void StreamSource::finish(Errc code, std::string text) const {
    if (ref_)
        ref_->on_loop([id = ref_->id(), code, text = std::move(text)](StreamTable& t) {
            t.finish_incoming(id, code, text);
        });
}

// --- IncomingStream ---

std::uint64_t IncomingStream::ref_id(const std::shared_ptr<StreamRef>& ref) {
    return ref ? ref->id() : 0;
}

std::weak_ptr<Conn> IncomingStream::ref_conn(const std::shared_ptr<StreamRef>& ref) {
    return ref ? ref->conn() : std::weak_ptr<Conn>();
}

std::uint64_t IncomingStream::id() const noexcept {
    return id_;
}

Connection IncomingStream::connection() const {
    return Connection(conn_.lock());
}

Result<StreamSource> IncomingStream::accept(std::uint64_t offset, const ContentHasher* prefix) {
    if (!ref_) return Error{Errc::invalid_argument, "an empty IncomingStream"};
    if (offset > 0 && !resumable_)
        return Error{Errc::invalid_argument, "the sender cannot resume this stream"};
    if (size_ && offset > *size_)
        return Error{Errc::invalid_argument, "the offset is past the stream's size"};
    if (offset > 0 && (!prefix || prefix->bytes() != offset))
        return Error{Errc::invalid_argument,
                     "resuming needs the hash of the bytes before the offset"};
    if (!ref_->claim(offset))
        return Error{Errc::invalid_argument, "the stream was accepted or rejected already"};
    std::optional<ContentHasher> hash;
    if (offset > 0) hash = *prefix;
    ref_->on_loop([id = ref_->id(), offset, hash](StreamTable& t) {
        t.accept(id, offset, hash ? &*hash : nullptr);
    });
    // The source holds the stream from now on: when its last copy goes, the stream is over.
    return StreamSource(std::move(ref_));
}

void IncomingStream::reject(Errc code, std::string text) {
    if (!ref_ || !ref_->claim(0)) return;
    ref_->on_loop([id = ref_->id(), code = code == Errc::ok ? Errc::not_allowed : code,
                   text = std::move(text)](StreamTable& t) { t.finish_incoming(id, code, text); });
    ref_.reset();
}

// --- Connection: sending ---

namespace {

// Opens an outgoing stream on the connection's loop; `fail` gets the error if it cannot, and
// `opened` (if any) the stream's id, on the loop, before anything can arrive for it.
void open_on_loop(const std::weak_ptr<Conn>& weak, StreamTable::Outgoing outgoing,
                  std::function<void(Error)> fail, std::function<void(std::uint64_t)> opened = {}) {
    auto conn = weak.lock();
    if (!conn) return fail(gone());
    auto shared = std::make_shared<StreamTable::Outgoing>(std::move(outgoing));
    auto& loop = conn->loop();
    loop.dispatch(
        [conn = std::move(conn), shared, fail = std::move(fail), opened = std::move(opened)] {
            if (!conn->is_open())
                return conn->post_user("stream callback", [fail] { fail(gone()); });
            auto id = conn->streams().open(std::move(*shared));
            if (!id) return conn->post_user("stream callback", [fail, e = id.error()] { fail(e); });
            if (opened) opened(*id);
        });
}

}  // namespace

void Connection::start_open_stream(const std::string& name, StreamOptions options,
                                   std::function<void(Result<StreamSink>)> done) const {
    auto feed = std::make_shared<detail::SinkFeed>();
    auto shared = std::make_shared<std::function<void(Result<StreamSink>)>>(std::move(done));
    StreamTable::Outgoing out{name, std::move(options), feed, false, {}, {}};
    auto weak = conn_;
    // The id is known once the table opened it; the sink is built when the accept comes.
    auto id = std::make_shared<std::uint64_t>(0);
    out.accepted = [weak, shared, id](Result<void> r) {
        if (!r) return (*shared)(r.error());
        (*shared)(StreamRef::sink(std::make_shared<StreamRef>(weak, *id)));
    };
    open_on_loop(
        conn_, std::move(out), [shared](Error e) { (*shared)(std::move(e)); },
        [id](std::uint64_t opened) { *id = opened; });
}

void Connection::start_send_stream(const std::string& name, std::string content,
                                   StreamOptions options,
                                   std::function<void(Result<void>)> done) const {
    auto feed = std::make_shared<detail::MemoryFeed>(std::move(content));
    options.size = feed->size();
    auto shared = std::make_shared<std::function<void(Result<void>)>>(std::move(done));
    open_on_loop(conn_,
                 {name,
                  std::move(options),
                  feed,
                  true,
                  {},
                  [shared](Result<void> r) { (*shared)(std::move(r)); }},
                 [shared](Error e) { (*shared)(std::move(e)); });
}

void Connection::start_send_file(const std::string& name, const std::string& path,
                                 StreamOptions options,
                                 std::function<void(Result<void>)> done) const {
    auto feed = detail::FileFeed::open(path);
    if (!feed) return done(feed.error());
    options.size = (*feed)->size();
    auto shared = std::make_shared<std::function<void(Result<void>)>>(std::move(done));
    open_on_loop(conn_,
                 {name,
                  std::move(options),
                  std::move(*feed),
                  true,
                  {},
                  [shared](Result<void> r) { (*shared)(std::move(r)); }},
                 [shared](Error e) { (*shared)(std::move(e)); });
}

}  // namespace hawser
