// RemoteStore (include/hawser/zdb/remote_store.hpp): Store and Database whose every call is a
// call to the node that serves the store. The calls block the calling thread, never an IO
// thread: the client's own IO thread only moves bytes.
#include "hawser/zdb/remote_store.hpp"

#include <spdlog/spdlog.h>

#include <limits>

#include "hawser/zdb/store_service.hpp"
#include "zdb_net/link.hpp"
#include "zdb_net/protocol.hpp"

namespace hawser::zdb {
namespace net {

Link::Link(RemoteStoreOptions options) : options_(options), client_(std::move(options.client)) {}

Result<void> Link::connect() {
    if (auto ok = client_.connect(); !ok) return ok;
    if (auto hello = call(request(op::hello)); !hello) return hello.error();
    return {};
}

void Link::close() {
    client_.close();
}

Result<DataFrame> Link::call(DataFrame request) const {
    auto conn = client_.connection();
    if (!conn.connected())
        return Error{Errc::not_connected, "the store's node is not connected now"};
    return conn.call(StoreService::command, std::move(request), use_wait,
                     CallOptions{.timeout = options_.timeout});
}

Result<DataFrame> Link::next(std::uint64_t query, Milliseconds timeout) const {
    auto conn = client_.connection();
    if (!conn.connected())
        return Error{Errc::not_connected, "the store's node is not connected now"};
    DataFrame arg;
    arg << query;
    return conn.call(StoreService::next_command, std::move(arg), use_wait,
                     CallOptions{.timeout = timeout});
}

void Link::cancel(std::uint64_t query) const {
    auto arg = request(op::cancel);
    arg << query;
    client_.connection().call(StoreService::command, std::move(arg), [](Result<DataFrame>) {});
}

void Link::enter() {
    std::lock_guard lock(mu_);
    ++running_;
}
void Link::leave() {
    std::lock_guard lock(mu_);
    if (--running_ == 0) idle_.notify_all();
}
void Link::wait_idle() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return running_ == 0; });
}

DataFrame request(std::string_view op, std::string_view database) {
    DataFrame out;
    out << op;
    if (!database.empty()) out << database;
    return out;
}

}  // namespace net

namespace {

using net::Link;
using net::request;

// Reads `n` strings after a count.
Result<std::vector<std::string>> read_names(DataFrame& in) {
    auto n = in.read_uint();
    if (!n || *n > in.size()) return Error{Errc::bad_payload, "a list of names is malformed"};
    std::vector<std::string> out;
    for (std::uint64_t i = 0; i < *n; ++i) {
        auto s = in.read_string();
        if (!s) return Error{Errc::bad_payload, "a list of names is malformed"};
        out.push_back(std::move(*s));
    }
    return out;
}

Result<void> done(Result<DataFrame> r) {
    if (!r) return r.error();
    return {};
}

class RemoteDatabase final : public Database, public QueryHost {
  public:
    RemoteDatabase(std::shared_ptr<Link> link, std::string name, Durability d)
        : link_(std::move(link)), name_(std::move(name)), durability_(d) {}

    const std::string& name() const override { return name_; }
    Durability durability() const override { return durability_; }

    Result<RecordId> insert(const Map& document) override {
        auto r = call(net::op::insert, [&](DataFrame& f) { f << document; });
        if (!r) return r.error();
        return r->read_uint();
    }
    Result<std::vector<RecordId>> insert_batch(const std::vector<Map>& documents) override {
        auto r = call(net::op::insert_batch, [&](DataFrame& f) {
            f << std::uint64_t(documents.size());
            for (auto& d : documents) f << d;
        });
        if (!r) return r.error();
        std::vector<RecordId> ids;
        while (!r->at_end() && ids.size() < documents.size()) {
            auto id = r->read_uint();
            if (!id) return id.error();
            ids.push_back(*id);
        }
        if (ids.size() != documents.size() || !r->at_end())
            return Error{Errc::bad_payload, "the store's node sent another number of ids"};
        return ids;
    }
    Result<RecordId> insert_unique(const Map& document, const std::string& field) override {
        auto r = call(net::op::insert_unique, [&](DataFrame& f) { f << document << field; });
        if (!r) return r.error();
        return r->read_uint();
    }
    Result<Map> get(RecordId id) const override {
        auto r = call(net::op::get, [&](DataFrame& f) { f << id; });
        if (!r) return r.error();
        return r->read_map();
    }
    Result<void> replace(RecordId id, const Map& document) override {
        return done(call(net::op::replace, [&](DataFrame& f) { f << id << document; }));
    }
    Result<void> patch(RecordId id, const Map& fields) override {
        return done(call(net::op::patch, [&](DataFrame& f) { f << id << fields; }));
    }
    Result<void> remove(RecordId id) override {
        return done(call(net::op::remove, [&](DataFrame& f) { f << id; }));
    }
    Result<bool> exists(RecordId id) const override {
        auto r = call(net::op::exists, [&](DataFrame& f) { f << id; });
        if (!r) return r.error();
        return r->read_bool();
    }
    std::uint64_t count() const override {
        auto r = call(net::op::count, [](DataFrame&) {});
        auto n = r ? r->read_uint() : Result<std::uint64_t>(r.error());
        if (!n) {
            spdlog::warn("hawser zdb: count of '{}' failed: {}", name_, n.error().message);
            return 0;
        }
        return *n;
    }
    Result<void> scan(const std::function<bool(RecordId, const Map&)>& visit,
                      ScanOptions options) const override {
        auto from = options.from;
        for (;;) {
            auto r = call(net::op::scan, [&](DataFrame& f) {
                f << from << options.to << options.reverse
                  << std::uint64_t(link_->options().scan_page_records);
            });
            if (!r) return r.error();
            auto n = r->read_uint();
            auto records = r->read_frame();
            auto more = r->read_bool();
            auto last = r->read_uint();
            if (!n || !records || !more || !last)
                return Error{Errc::bad_payload, "a scan page is malformed"};
            for (std::uint64_t i = 0; i < *n; ++i) {
                auto id = records->read_uint();
                auto record = records->read_map();
                if (!id || !record) return Error{Errc::bad_payload, "a scan page is malformed"};
                if (!visit(*id, *record)) return {};
            }
            if (!*more || *n == 0) return {};
            // The next page starts past the last id; one that does not move on is a lie.
            if (options.reverse) {
                if (from != 0 && *last > from)
                    return Error{Errc::bad_payload, "a scan page went backwards"};
                if (*last <= 1) return {};
                from = *last - 1;
            } else {
                if (*last < from) return Error{Errc::bad_payload, "a scan page went backwards"};
                if (*last == std::numeric_limits<RecordId>::max()) return {};
                from = *last + 1;
            }
        }
    }
    Result<void> put_attachment(RecordId id, std::string_view name,
                                std::span<const std::uint8_t> data) override {
        return done(call(net::op::put_attachment, [&](DataFrame& f) { f << id << name << data; }));
    }
    Result<Bytes> get_attachment(RecordId id, std::string_view name) const override {
        auto r = call(net::op::get_attachment, [&](DataFrame& f) { f << id << name; });
        if (!r) return r.error();
        return r->read_bytes();
    }
    Result<void> remove_attachment(RecordId id, std::string_view name) override {
        return done(call(net::op::remove_attachment, [&](DataFrame& f) { f << id << name; }));
    }
    Result<std::vector<std::string>> attachments(RecordId id) const override {
        auto r = call(net::op::attachments, [&](DataFrame& f) { f << id; });
        if (!r) return r.error();
        return read_names(*r);
    }
    Result<void> create_index(const std::string& field) override {
        return done(call(net::op::create_index, [&](DataFrame& f) { f << field; }));
    }
    Result<void> drop_index(std::string_view field) override {
        return done(call(net::op::drop_index, [&](DataFrame& f) { f << field; }));
    }
    DatabaseStats stats() const override {
        DatabaseStats s;
        auto r = call(net::op::stats, [](DataFrame&) {});
        if (!r) {
            spdlog::warn("hawser zdb: stats of '{}' failed: {}", name_, r.error().message);
            return s;
        }
        auto records = r->read_uint();
        auto next_id = r->read_uint();
        auto document_bytes = r->read_uint();
        auto blob_bytes = r->read_uint();
        auto index_bytes = r->read_uint();
        auto indexes = read_names(*r);
        if (!records || !next_id || !document_bytes || !blob_bytes || !index_bytes || !indexes)
            return s;
        return {*records,    *next_id,     *document_bytes,
                *blob_bytes, *index_bytes, std::move(*indexes)};
    }

    Result<std::shared_ptr<Query>> start_query(std::shared_ptr<Database> self, Filter filter,
                                               QueryOptions options,
                                               std::function<void(Fragment)> sink) override {
        if (options.output) {
            auto* out = dynamic_cast<RemoteDatabase*>(options.output.get());
            if (!out || out->link_ != link_)
                return Error{Errc::invalid_argument,
                             "a remote query's output must be a database of the same store"};
        }
        return net::start_remote_query(link_, std::move(self), std::move(filter),
                                       std::move(options), std::move(sink));
    }

  private:
    template <class Fill>
    Result<DataFrame> call(std::string_view op, Fill fill) const {
        auto r = request(op, name_);
        fill(r);
        return link_->call(std::move(r));
    }

    const std::shared_ptr<Link> link_;
    const std::string name_;
    const Durability durability_;
};

class RemoteStore final : public Store {
  public:
    explicit RemoteStore(std::shared_ptr<Link> link) : link_(std::move(link)) {}
    ~RemoteStore() override {
        link_->close();  // calls still waiting fail, so query threads end
        link_->wait_idle();
    }

    Result<std::shared_ptr<Database>> create(const std::string& name,
                                             DatabaseOptions options) override {
        auto r = link_->call(request(net::op::create) << name << std::uint64_t(options.durability));
        return handle(name, std::move(r));
    }
    Result<std::shared_ptr<Database>> database(std::string_view name) const override {
        return handle(std::string(name), link_->call(request(net::op::open) << name));
    }
    std::vector<std::string> list() const override {
        auto r = link_->call(request(net::op::list));
        auto names = r ? read_names(*r) : Result<std::vector<std::string>>(r.error());
        if (!names) {
            spdlog::warn("hawser zdb: listing the remote store failed: {}", names.error().message);
            return {};
        }
        return std::move(*names);
    }
    Result<void> drop(std::string_view name) override {
        return done(link_->call(request(net::op::drop) << name));
    }
    Result<void> compact(std::string_view name) override {
        return done(link_->call(request(net::op::compact) << name));
    }
    Result<void> copy(std::string_view source, const std::string& destination) override {
        return done(link_->call(request(net::op::copy) << source << destination));
    }
    Result<void> replace(std::string_view target, std::string_view source) override {
        return done(link_->call(request(net::op::replace_database) << target << source));
    }
    Result<void> checkpoint(const std::string&) override {
        return Error{Errc::not_allowed,
                     "a checkpoint of a remote store is taken on the node that serves it"};
    }
    StoreStats stats() const override {
        StoreStats s;
        auto r = link_->call(request(net::op::store_stats));
        if (!r) return s;
        auto capacity = r->read_uint();
        auto usage = r->read_uint();
        auto hits = r->read_uint();
        auto misses = r->read_uint();
        if (capacity && usage && hits && misses) s = {*capacity, *usage, *hits, *misses};
        return s;
    }

  private:
    Result<std::shared_ptr<Database>> handle(std::string name, Result<DataFrame> r) const {
        if (!r) return r.error();
        auto durability = r->read_uint();
        if (!durability || *durability > std::uint64_t(Durability::fast))
            return Error{Errc::bad_payload, "the store's node sent a malformed answer"};
        return std::shared_ptr<Database>(
            std::make_shared<RemoteDatabase>(link_, std::move(name), Durability(*durability)));
    }

    std::shared_ptr<Link> link_;
};

}  // namespace

Result<std::unique_ptr<Store>> connect_store(RemoteStoreOptions options) {
    if (options.scan_page_records == 0)
        return Error{Errc::invalid_argument, "scan_page_records must be at least 1"};
    auto link = std::make_shared<Link>(std::move(options));
    if (auto ok = link->connect(); !ok) {
        link->close();
        return ok.error();
    }
    return std::unique_ptr<Store>(std::make_unique<RemoteStore>(std::move(link)));
}

}  // namespace hawser::zdb
