// A query of a remote database: it runs on the serving node; a thread of its own here pulls its
// fragments one next call at a time and hands them to the sink, so a sink that is slow, or a
// pause(), leaves the query paused there once its buffer is full. cancel() goes to the serving
// node at once, which ends the query (a waiting next call gets its end).
#include <condition_variable>
#include <thread>

#include "hawser/zdb/declarative_filter.hpp"
#include "zdb_net/link.hpp"
#include "zdb_net/protocol.hpp"

namespace hawser::zdb::net {

namespace {

std::optional<QueryEnd> end_named(std::string_view name) {
    for (auto e : {QueryEnd::completed, QueryEnd::cancelled, QueryEnd::max_results,
                   QueryEnd::max_scanned, QueryEnd::time_limit})
        if (name_of(e) == name) return e;
    return std::nullopt;
}

class RemoteQuery final : public Query, public std::enable_shared_from_this<RemoteQuery> {
  public:
    RemoteQuery(std::shared_ptr<Link> link, std::shared_ptr<Database> database, std::uint64_t id,
                QueryOptions options, std::function<void(Fragment)> sink)
        : link_(std::move(link)),
          database_(std::move(database)),
          id_(id),
          decode_(options.decode),
          on_end_(std::move(options.on_end)),
          sink_(std::move(sink)),
          paused_(options.start_paused) {
        // A fragment waits for the query's own limit, not a call's: matches may be rare.
        using namespace std::chrono;
        next_timeout_ = options.time_limit.count()
                            ? duration_cast<Milliseconds>(options.time_limit + minutes(1))
                            : Milliseconds(hours(24));
    }

    // Throws what std::thread throws when no thread can start.
    void start() {
        link_->enter();
        try {
            std::thread([self = shared_from_this()] { self->run(); }).detach();
        } catch (...) {
            link_->leave();
            throw;
        }
    }

    void pause() override {
        std::lock_guard lock(mu_);
        paused_ = true;
    }
    void resume() override {
        std::lock_guard lock(mu_);
        paused_ = false;
        changed_.notify_all();
    }
    void cancel() override {
        std::shared_ptr<Link> link;
        {
            std::lock_guard lock(mu_);
            if (cancelled_ || end_) return;
            cancelled_ = true;
            changed_.notify_all();
            link = link_;
        }
        link->cancel(id_);
    }
    QueryProgress progress() const override {
        std::lock_guard lock(mu_);
        return progress_;
    }
    Result<QueryEnd> wait() override {
        std::unique_lock lock(mu_);
        changed_.wait(lock, [&] { return end_.has_value(); });
        return *end_;
    }
    // Waits until the thread has let go of the sink (the handle's release, as a local query's).
    void wait_finished() {
        std::unique_lock lock(mu_);
        changed_.wait(lock, [&] { return finished_; });
    }

  private:
    void run() {
        Result<QueryEnd> end = QueryEnd::completed;
        for (;;) {
            {
                std::unique_lock lock(mu_);
                changed_.wait(lock, [&] { return !paused_ || cancelled_; });
                if (cancelled_) {  // the serving node has been told; nothing more is wanted
                    end = QueryEnd::cancelled;
                    break;
                }
            }
            auto reply = link_->next(id_, next_timeout_);
            if (!reply) {
                bool cancelled;
                {
                    std::lock_guard lock(mu_);
                    cancelled = cancelled_;
                }
                // A cancel may take the query away before this call reaches it. Otherwise the
                // serving node is told to drop it: this side will not ask again.
                if (cancelled && reply.error().code == Errc::not_found) {
                    end = QueryEnd::cancelled;
                    break;
                }
                end = reply.error();
                link_->cancel(id_);
                break;
            }
            auto kind = reply->read_string();
            auto progress = read_progress(*reply);
            if (!kind || !progress) {
                end = Error{Errc::bad_payload, "the store's node sent a malformed fragment"};
                link_->cancel(id_);
                break;
            }
            {
                std::lock_guard lock(mu_);
                progress_ = *progress;
            }
            if (*kind == end_reply) {
                end = read_end(*reply);
                break;
            }
            auto fragment = read_fragment(*reply);
            if (!fragment) {
                end = fragment.error();
                link_->cancel(id_);
                break;
            }
            bool deliver;
            {
                std::lock_guard lock(mu_);
                deliver = !cancelled_;
            }
            if (deliver && sink_) sink_(std::move(*fragment));
        }
        QueryProgress last;
        {
            std::lock_guard lock(mu_);
            last = progress_;
        }
        if (on_end_) on_end_(end, last);
        {
            std::lock_guard lock(mu_);
            end_ = std::move(end);
            changed_.notify_all();
        }
        // The application's captures, and this thread's hold on the link, go before the
        // handle's release (and the store's end) may return: the store holds the link until
        // every query thread has left.
        sink_ = nullptr;
        on_end_ = nullptr;
        database_.reset();
        Link* link;
        {
            std::lock_guard lock(mu_);
            finished_ = true;
            changed_.notify_all();
            link = link_.get();
            link_.reset();
        }
        link->leave();
    }

    Result<Fragment> read_fragment(DataFrame& in) const {
        auto malformed = [] {
            return Error{Errc::bad_payload, "the store's node sent a malformed fragment"};
        };
        auto n = in.read_uint();
        if (!n || *n > in.size()) return malformed();
        Fragment f;
        for (std::uint64_t i = 0; i < *n; ++i) {
            auto id = in.read_uint();
            auto bytes = in.read_bytes();
            if (!id || !bytes) return malformed();
            std::string_view encoded(reinterpret_cast<const char*>(bytes->data()), bytes->size());
            if (!decode_) {
                f.encoded.add(*id, encoded);
                continue;
            }
            auto frame = DataFrame::decode(encoded);
            if (!frame) return frame.error();
            auto record = frame->read_map();
            if (!record) return malformed();
            f.records.emplace_back(*id, std::move(*record));
        }
        return f;
    }

    static Result<QueryEnd> read_end(DataFrame& in) {
        auto ok = in.read_bool();
        if (ok && *ok) {
            auto name = in.read_string();
            auto end = name ? end_named(*name) : std::nullopt;
            if (end) return *end;
        } else if (ok) {
            auto code = in.read_uint();
            auto message = in.read_string();
            if (code && message && *code > 0 && *code < errc_count)
                return Error{Errc(*code), std::move(*message)};
        }
        return Error{Errc::bad_payload, "the store's node sent a malformed end"};
    }

    std::shared_ptr<Link> link_;          // mu_: released by the thread as it leaves
    std::shared_ptr<Database> database_;  // kept until the query ends, as a local one is
    const std::uint64_t id_;
    const bool decode_;
    std::function<void(Result<QueryEnd>, const QueryProgress&)> on_end_;
    std::function<void(Fragment)> sink_;
    Milliseconds next_timeout_;

    mutable std::mutex mu_;  // the rest
    std::condition_variable changed_;
    bool paused_;
    bool cancelled_ = false;
    QueryProgress progress_;
    std::optional<Result<QueryEnd>> end_;
    bool finished_ = false;
};

// What the caller holds: releasing it cancels the query and waits for its thread to let go of
// the sink, as releasing a local query does. Not to be released in the sink or in on_end.
class Handle final : public Query {
  public:
    explicit Handle(std::shared_ptr<RemoteQuery> q) : q_(std::move(q)) {}
    ~Handle() override {
        q_->cancel();
        q_->wait_finished();
    }
    void pause() override { q_->pause(); }
    void resume() override { q_->resume(); }
    void cancel() override { q_->cancel(); }
    QueryProgress progress() const override { return q_->progress(); }
    Result<QueryEnd> wait() override { return q_->wait(); }

  private:
    std::shared_ptr<RemoteQuery> q_;
};

}  // namespace

Result<std::shared_ptr<Query>> start_remote_query(std::shared_ptr<Link> link,
                                                  std::shared_ptr<Database> database, Filter filter,
                                                  QueryOptions options,
                                                  std::function<void(Fragment)> sink) {
    const Map* source = source_of(filter);
    if (!source)
        return Error{Errc::invalid_argument,
                     "a C++ filter cannot run on a remote store; use a declarative filter"};
    auto r = request(op::query, database->name());
    r << *source << options.params;
    write_query_options(r, options);
    r << (options.output ? options.output->name() : std::string());
    auto id = link->call(std::move(r));
    if (!id) return id.error();
    auto qid = id->read_uint();
    if (!qid) return Error{Errc::bad_payload, "the store's node sent a malformed query id"};
    auto query = std::make_shared<RemoteQuery>(link, std::move(database), *qid, std::move(options),
                                               std::move(sink));
    try {
        query->start();
    } catch (const std::exception& e) {
        link->cancel(*qid);
        return Error{Errc::overloaded, std::string("cannot start a query thread: ") + e.what()};
    }
    return std::shared_ptr<Query>(std::make_shared<Handle>(std::move(query)));
}

}  // namespace hawser::zdb::net
