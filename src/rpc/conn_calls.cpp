// Conn, calls: dispatch of incoming calls and direct messages to their handlers (here or on
// the worker pool), their replies, and the table of this side's outgoing calls.
// Thread affinity: the connection's loop; handlers may run on workers and reply from any thread
// through their ReplySlot.
#include <spdlog/spdlog.h>

#include "rpc/command_stats.hpp"
#include "rpc/conn.hpp"
#include "rpc/reply_slot.hpp"
#include "wire/encode.hpp"

namespace hawser::detail {

namespace {
constexpr std::size_t max_error_text = 4096;  // bytes of an error reply's message
}  // namespace

// --- incoming calls ---

// Runs a command's handler: here, or on the worker pool when the command asks for it. A big
// DataFrame is decoded on the worker pool first, so the IO thread never spends long on one
// payload; the handler then runs where it would have run anyway (docs/design.md).
template <class Run, class Fail>
void Conn::dispatch(const Commands::Entry& entry, std::span<const std::uint8_t> bytes, Run run,
                    Fail fail) {
    const bool on_worker = entry.options.on_worker;
    const std::size_t size = bytes.size();
    const bool small = decodes_here(entry, size);
    // Here and now: the handler reads the bytes where they are (Argument).
    if (!on_worker && small) return run(Argument(as_chars(bytes)));
    std::string payload(as_chars(bytes));
    auto full = [&](const auto& fail) {
        host_->counters.overloaded.fetch_add(1, std::memory_order_relaxed);
        fail(Error{Errc::overloaded, "the server's worker queue is full; try again later"});
    };
    auto& workers = host_->runtime.workers();
    if (small) {
        if (!workers.try_post(size, [run = std::move(run), p = std::move(payload)]() mutable {
                run(Argument(std::move(p)));
            }))
            full(fail);
        return;
    }
    // Payloads waiting for a worker are bounded per connection, like calls in flight.
    if (rare().worker_decode_bytes + size > host_->limits.max_worker_decode_bytes)
        return fail(
            Error{Errc::overloaded, "too much data waiting to be decoded on this connection"});
    rare().worker_decode_bytes += size;
    bool queued = workers.try_post(size, [self = weak_from_this(), host = host_, size, on_worker,
                                          payload = std::move(payload), run = std::move(run),
                                          fail]() mutable {
        auto frame = DataFrame::decode(payload, host->commands.decode_limits());
        std::string().swap(payload);
        auto conn = self.lock();
        if (!conn) return;  // closed meanwhile: nobody is waiting for the reply
        // References move to the loop: a connection is never destroyed off its loop.
        auto& loop = conn->loop();
        if (!frame || on_worker) {
            loop.post([conn = std::move(conn), size] { conn->rare().worker_decode_bytes -= size; });
            if (!frame) return fail(frame.error());
            return run(Argument(std::move(*frame)));  // already where the handler wants to be
        }
        loop.post([conn = std::move(conn), size, run = std::move(run),
                   frame = std::move(*frame)]() mutable {
            conn->rare().worker_decode_bytes -= size;
            run(Argument(std::move(frame)));
        });
    });
    if (!queued) {
        rare().worker_decode_bytes -= size;
        full(fail);
    }
}

bool Conn::decodes_here(const Commands::Entry& entry, std::size_t size) const noexcept {
    return !is_dataframe(entry.kind) || size <= host_->limits.worker_decode_bytes;
}

bool Conn::runs_here(const Commands::Entry& entry, std::size_t size) const noexcept {
    return !entry.options.on_worker && decodes_here(entry, size);
}

bool Conn::admitted(bool public_access) {
    // Without a gate no Connection handle is made: this runs for every message.
    const auto& commands = host_->commands;
    return !commands.gated() || commands.admits(public_access, handle());
}

void Conn::on_call(const MessageView& m) {
    const Commands::Entry* entry = host_->commands.find(m.name);
    if (!entry)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::unknown_command),
                          "no command named '" + std::string(m.name) + "'");
    if (entry->kind != m.kind)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::wrong_kind),
                          "'" + std::string(m.name) + "' is a " +
                              (is_dataframe(entry->kind) ? "DataFrame" : "console") + " command");
    if (state_ != State::open)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::shutting_down),
                          "server is shutting down");
    if (!admitted(entry->options.public_access))
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::unauthenticated),
                          "'" + std::string(m.name) + "' needs a logged-in session");
    if (handlers_in_flight_ >= host_->limits.max_pending_calls)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::too_many_pending),
                          "too many calls in flight on this connection");
    auto pass = host_->handlers.enter();
    if (!pass)
        return send_coded(Kind::error, m.id, std::uint16_t(Errc::shutting_down),
                          "server is shutting down");
    ++handlers_in_flight_;
    auto& figures = entry->stats->on_loop(loop_.index());
    figures.add(figures.calls);
    figures.add(figures.bytes_in, m.payload.size());
    if (runs_here(*entry, m.payload.size())) {  // the common case: answered on the spot
        ReplyHere to(*this, m.id, *entry, std::move(*pass));
        Request req(handle(), entry->name);
        try {
            entry->invoke(req, Argument(as_chars(m.payload)), &to);
        } catch (...) {
            to.fail(std::current_exception());
        }
        return;
    }
    // The slot keeps the host, and so `entry`, alive until the reply, wherever the handler runs.
    auto slot =
        std::make_shared<ReplySlot>(weak_from_this(), m.id, *entry->stats, host_, std::move(*pass),
                                    entry->options.compress, TickClock::now());
    auto run = [entry, slot, req = Request(handle(), entry->name)](Argument arg) mutable {
        SlotReply to(slot);
        try {
            entry->invoke(req, std::move(arg), &to);
        } catch (...) {
            reply_exception(slot, entry->name, std::current_exception());
        }
    };
    dispatch(*entry, m.payload, std::move(run),
             [slot](const Error& e) { reply_error(slot, e.code, e.message); });
}

void Conn::on_direct(const MessageView& m) {
    const Commands::Entry* entry = host_->commands.find(m.name);
    if (!entry || entry->kind != m.kind) {
        host_->log.warn("direct", "hawser: direct command '" + std::string(m.name) +
                                      "' is not registered as such; ignored");
        return;
    }
    if (state_ != State::open) return;
    auto& figures = entry->stats->on_loop(loop_.index());
    if (!admitted(entry->options.public_access)) {
        figures.add(figures.errors);
        host_->log.warn("direct-gate",
                        "hawser: direct command '" + entry->name + "' before login; dropped");
        return;
    }
    auto pass = host_->handlers.enter();
    if (!pass) return;
    figures.add(figures.calls);
    figures.add(figures.bytes_in, m.payload.size());
    // The handler may run on a worker: what it records goes to the shard for any thread.
    auto failed = [entry, host = host_](std::string_view why) {
        auto& elsewhere = entry->stats->elsewhere();
        elsewhere.add(elsewhere.errors);
        host->log.warn("direct-error:" + entry->name,
                       "hawser: direct command '" + entry->name + "' failed: " + std::string(why));
    };
    // The pass is given back before the host it belongs to can go (members die in reverse).
    struct Held {
        std::shared_ptr<Host> host;
        Gate::Pass pass;
    };
    auto run = [entry, req = Request(handle(), entry->name), failed,
                held = Held{host_, std::move(*pass)}](Argument arg) mutable {
        auto started = TickClock::now();
        try {
            entry->invoke(req, std::move(arg), nullptr);
        } catch (...) {
            failed(describe_exception(std::current_exception()));
        }
        entry->stats->elsewhere().record(TickClock::since(started).count());
    };
    if (!entry->options.on_worker)
        return dispatch(*entry, m.payload, std::move(run),
                        [failed](const Error& e) { failed(e.message); });
    // Direct messages for workers count against the same per-connection limit as calls; at the
    // limit this connection stops reading until one finishes (input_paused).
    ++directs_in_flight_;
    auto done = [weak = weak_from_this()] {
        if (auto c = weak.lock()) {
            auto& loop = c->loop();
            loop.post([c = std::move(c)] { c->direct_done(); });
        }
    };
    dispatch(
        *entry, m.payload,
        [run = std::move(run), done](Argument arg) mutable {
            run(std::move(arg));
            done();
        },
        [failed, done](const Error& e) {
            failed(e.message);
            done();
        });
}

void Conn::finish_call(std::uint64_t id, Errc code, const std::string& payload, bool compress) {
    if (handlers_in_flight_ > 0) --handlers_in_flight_;
    if (state_ == State::closed) return;
    if (code == Errc::ok) {
        if (header_size(id, {}) + payload.size() > host_->limits.max_frame_bytes)
            send_coded(Kind::error, id, std::uint16_t(Errc::limit_exceeded),
                       "reply over the frame size limit");
        else
            send_message(Kind::reply, id, {}, as_bytes(payload), compress);
    } else {
        // An error's text is a message, not a payload: cut, so that it never passes the frame
        // limit (the peer would close the connection) or fills the send queue.
        send_coded(Kind::error, id, std::uint16_t(code),
                   std::string_view(payload).substr(0, max_error_text));
    }
    drain_if_idle();
}

// --- outgoing calls ---

void Conn::start_call(std::uint64_t id, Kind kind, std::string_view command, std::string payload,
                      const CallOptions& options, RawCallback done) {
    assert(loop_.in_loop());
    auto fail = [&](Errc code, std::string message) {
        loop_.post([host = host_, done = std::move(done), e = Error{code, std::move(message)}] {
            host->run_user("call callback", [&] { done(e); });
        });
    };
    if (state_ != State::open) return fail(Errc::disconnected, "connection is closed");
    if (command.size() > max_command_name)
        return fail(Errc::invalid_argument, "command name over 255 bytes");
    if (header_size(id, command) + payload.size() > host_->limits.max_frame_bytes)
        return fail(Errc::limit_exceeded, "call over the frame size limit");
    if (!calls_) calls_ = std::make_unique<CallTable>(loop_, *this);
    if (calls_->size() >= host_->limits.max_pending_calls)
        return fail(Errc::too_many_pending, "too many calls in flight on this connection");
    auto timeout =
        options.timeout.count() > 0 ? at_most_a_year(options.timeout) : host_->timeouts.call;
    // Sent before it enters the table (no reply can come before this returns): a send that
    // closes the connection (its queue over the hard limit) then fails it later, on this loop,
    // instead of close() running its callback inside call().
    send_message(kind, id, command, as_bytes(payload), options.compress);
    if (state_ == State::closed) return fail(Errc::disconnected, "the connection closed");
    calls_->add(id, std::move(done), loop_.now_exact() + timeout);
    LoopCounters::add(channel_.counters().calls_out);
}

void Conn::complete_call(std::uint64_t id, Result<std::string> result) {
    auto done = calls_ ? calls_->take(id) : std::nullopt;
    if (!done) {
        Counters::add(host_->counters.late_replies);
        return;
    }
    host_->run_user("call callback", [&] { (*done)(std::move(result)); });
}

bool Conn::cancel_call(std::uint64_t id) {
    if (!calls_ || !calls_->contains(id)) return false;
    complete_call(id, Error{Errc::cancelled, "cancelled by the caller"});
    return true;
}

void Conn::expire_calls(Clock::time_point now) {
    // The loop already dropped the table's entry.
    if (!calls_) return;
    for (auto& done : calls_->take_due(now))
        host_->run_user("call callback", [&] {
            done(Error{Errc::timeout, "no reply before the deadline"});
        });
}

void Conn::on_reply(const MessageView& m) {
    auto coded = m.kind == Kind::error ? parse_coded(m.payload) : std::nullopt;
    if (m.kind == Kind::error && !coded)
        return protocol_close(CloseReason::malformed, "error reply without a code");
    // This side numbers its calls from 1 up: a reply to any other id answers no call it made
    // (one to a call that ended already is late, and dropped).
    if (m.id == 0 || m.id >= next_call_id_.load(std::memory_order_relaxed))
        return protocol_close(CloseReason::protocol_error, "a reply to a call never made");
    if (!coded)
        return complete_call(
            m.id, std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
    auto code = coded->first == 0 ? Errc::handler_error : Errc(coded->first);
    complete_call(m.id, Error{code, std::string(coded->second)});
}

Result<void> Conn::send_direct(Kind kind, std::string_view command, std::string_view payload,
                               bool compress) {
    if (state_ != State::open) return Error{Errc::disconnected, "connection is closed"};
    if (command.size() > max_command_name)
        return Error{Errc::invalid_argument, "command name over 255 bytes"};
    if (header_size(0, command) + payload.size() > host_->limits.max_frame_bytes)
        return Error{Errc::limit_exceeded, "message over the frame size limit"};
    send_message(kind, 0, command, as_bytes(payload), compress);
    return {};
}

void Conn::direct_done() {
    --directs_in_flight_;
    resume_input();
}

void Conn::pause_reading(bool paused) {
    if (paused_by_user_ == paused || state_ == State::closed) return;
    paused_by_user_ = paused;
    if (paused) return;
    // Quiet while paused was not the peer's doing: the idle clock starts again now.
    last_recv_ = loop_.now();
    if (attached_) loop_.sooner(this, next_check(loop_.now()));
    // Posted: a handler that resumes must not have held messages delivered inside it.
    loop_.post([self = shared_from_this()] { self->resume_input(); });
}

void Conn::resume_input() {
    if (state_ == State::closed || reading_ || input_paused()) return;
    // Deliver what the pause held back, then read again.
    while (channel_.held_input() && !input_paused()) {
        auto before = channel_.held_input();
        bool delivering = channel_.resume(input());
        if (state_ == State::closed) return;
        if (!delivering) return;                     // paused again
        if (channel_.held_input() == before) break;  // only an unfinished frame is left
    }
    wait_readable();
}

}  // namespace hawser::detail
