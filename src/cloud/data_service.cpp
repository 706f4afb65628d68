#include "cloud/data_service.hpp"

#include "cloud/accounts.hpp"
#include "cloud/signed_in.hpp"
#include "cloud/weak_command.hpp"

namespace hawser::cloud::detail {

namespace {

constexpr std::size_t default_window = 4;  // fragments a query may leave unacknowledged
constexpr std::size_t fragment_records = 1000;

std::set<std::string> admin_keys(const CloudOptions& options) {
    std::set<std::string> keys;
    for (const auto& name : options.admins) keys.insert(Accounts::key_of(name));
    return keys;
}

// A non-negative integer, which MessagePack may carry as signed or unsigned.
std::optional<std::uint64_t> count_of(const Value& v) {
    if (v.is<std::uint64_t>()) return v.as<std::uint64_t>();
    if (v.is<std::int64_t>() && v.as<std::int64_t>() >= 0) return v.as<std::int64_t>();
    return std::nullopt;
}

// Reads a record id; the reply failed when there is none.
std::optional<zdb::RecordId> read_id(DataFrame& arg, const Responder<DataFrame>& reply) {
    auto id = arg.read_uint();
    if (!id || *id == 0) {
        reply.fail(Errc::invalid_argument, "expected a record id");
        return std::nullopt;
    }
    return *id;
}

}  // namespace

DataService::DataService(std::shared_ptr<Jobs> jobs, const CloudOptions& options,
                         std::unique_ptr<UserData> data, Directory directory)
    : jobs_(std::move(jobs)),
      options_(options),
      admins_(admin_keys(options)),
      data_(std::move(data)),
      directory_(std::move(directory)),
      queries_(std::make_shared<DataQueries>(
          jobs_, DataQueries::Limits{options.max_queries_per_connection, options.max_queries,
                                     options.query_idle_timeout, options.query_time_limit})) {}

Result<std::shared_ptr<DataService>> DataService::open(zdb::Store& store,
                                                       std::shared_ptr<Jobs> jobs,
                                                       const CloudOptions& options,
                                                       Directory directory) {
    auto data = UserData::open(store, options.database_prefix + ".data",
                               options.max_records_per_user, options.max_document_bytes);
    if (!data) return data.error();
    return std::make_shared<DataService>(std::move(jobs), options, std::move(*data),
                                         std::move(directory));
}

void DataService::add_commands(Commands& commands) {
    // Not public: the login gate lets them run only for a signed-in caller. Not compressed:
    // a reply may hold text of several users (docs/security.md, "Compression and secrets").
    std::weak_ptr<DataService> weak = weak_from_this();
    CommandOptions plain{.compress = false};
    add_weak_command(commands, weak, Cloud::data_insert_command, &DataService::do_insert, plain);
    add_weak_command(commands, weak, Cloud::data_get_command, &DataService::do_get, plain);
    add_weak_command(commands, weak, Cloud::data_patch_command, &DataService::do_patch, plain);
    add_weak_command(commands, weak, Cloud::data_remove_command, &DataService::do_remove, plain);
    add_weak_command(commands, weak, Cloud::data_query_command, &DataService::do_query, plain);
    add_weak_command(commands, weak, Cloud::data_control_command, &DataService::do_control, plain);
    commands.direct_dataframe(std::string(Cloud::data_ack_command),
                              [weak](const Request& req, DataFrame& arg) {
                                  auto self = weak.lock();
                                  auto id = arg.read_uint();
                                  auto seq = id ? arg.read_uint() : id;
                                  if (!self || !id || !seq)
                                      return;  // a malformed acknowledgement is dropped
                                  self->queries_->ack(req.connection().id(), *id, *seq);
                              });
}

Result<void> DataService::remove_all(const std::string& owner_key) {
    return data_->remove_all(owner_key);
}

std::optional<DataScope> DataService::scope_of(const Request& req, DataFrame& arg,
                                               const Reply& reply, bool write) const {
    auto target = arg.read_string();
    if (!target) {
        reply.fail(Errc::invalid_argument, "expected a target: a collection or /database");
        return std::nullopt;
    }
    const auto& me = req.connection().service_context<SignedIn>();
    Caller caller{Accounts::key_of(me.name), false};
    caller.admin = admins_.count(caller.key) > 0;
    auto scope = scope_for(*target, caller, options_.database_prefix);
    if (scope && write && !scope->writable)
        scope = Error{Errc::not_allowed, "only the owner writes to a collection"};
    if (!scope) {
        reply.fail(scope.error().code, scope.error().message);
        return std::nullopt;
    }
    if (scope->writable) scope->acting_account = me.user;
    return std::move(*scope);
}

Result<void> DataService::check_acting_account(const DataScope& scope) const {
    if (scope.acting_account == 0) return {};
    auto exists = directory_.account_exists(scope.acting_account);
    if (!exists) return exists.error();
    if (!*exists) return Error{Errc::unauthenticated, "this account was deleted"};
    return {};
}

bool DataService::acting_account_gone(const DataScope& scope, const Reply& reply) const {
    auto ok = check_acting_account(scope);
    if (!ok) reply.fail(ok.error().code, ok.error().message);
    return !ok;
}

Result<void> DataService::check_document(const DataScope& scope, const Map& fields) const {
    DataFrame sized;
    sized << fields;
    if (sized.bytes().size() > options_.max_document_bytes)
        return Error{
            Errc::limit_exceeded,
            "a document is at most " + std::to_string(options_.max_document_bytes) + " bytes"};
    if (scope.collection()) return check_client_fields(fields);
    return {};
}

void DataService::do_insert(const Request& req, DataFrame arg, Reply reply) {
    auto scope = scope_of(req, arg, reply, true);
    if (!scope) return;
    if (scope->collection() && scope->owner.empty())
        return reply.fail(Errc::invalid_argument, "name one owner to insert into, not @*");
    auto document = arg.read_map();
    if (!document) return reply.fail(Errc::invalid_argument, "expected a document (a map)");
    if (auto ok = check_document(*scope, *document); !ok)
        return reply.fail(ok.error().code, ok.error().message);
    const auto& me = req.connection().service_context<SignedIn>();
    bool own = scope->owner == Accounts::key_of(me.name);
    jobs_->post_for(reply, [self = shared_from_this(), scope = std::move(*scope), own,
                            user = me.user, document = std::move(*document), reply]() mutable {
        // One's own: checked by id, under the owner's lock, so a name deleted and taken again
        // meanwhile is not one's own.
        if (!own && self->acting_account_gone(scope, reply)) return;
        auto id = self->data_->insert(scope, std::move(document), [&]() -> Result<bool> {
            return own ? self->directory_.account_exists(user)
                       : self->directory_.name_exists(scope.owner);
        });
        if (!id) return reply.fail(id.error().code, id.error().message);
        DataFrame out;
        out << *id;
        reply.reply(std::move(out));
    });
}

void DataService::do_get(const Request& req, DataFrame arg, Reply reply) {
    auto scope = scope_of(req, arg, reply, false);
    if (!scope) return;
    auto id = read_id(arg, reply);
    if (!id) return;
    jobs_->post_for(reply, [self = shared_from_this(), scope = std::move(*scope), id = *id, reply] {
        if (self->acting_account_gone(scope, reply)) return;
        auto record = self->data_->get(scope, id);
        if (!record) return reply.fail(record.error().code, record.error().message);
        DataFrame out;
        out << *record;
        reply.reply(std::move(out));
    });
}

void DataService::do_patch(const Request& req, DataFrame arg, Reply reply) {
    auto scope = scope_of(req, arg, reply, true);
    if (!scope) return;
    auto id = read_id(arg, reply);
    if (!id) return;
    auto fields = arg.read_map();
    if (!fields) return reply.fail(Errc::invalid_argument, "expected the fields to set (a map)");
    if (auto ok = check_document(*scope, *fields); !ok)
        return reply.fail(ok.error().code, ok.error().message);
    jobs_->post_for(reply, [self = shared_from_this(), scope = std::move(*scope), id = *id,
                            fields = std::move(*fields), reply] {
        if (self->acting_account_gone(scope, reply)) return;
        auto r = self->data_->patch(scope, id, fields);
        if (!r) return reply.fail(r.error().code, r.error().message);
        reply.reply(DataFrame{});
    });
}

void DataService::do_remove(const Request& req, DataFrame arg, Reply reply) {
    auto scope = scope_of(req, arg, reply, true);
    if (!scope) return;
    auto id = read_id(arg, reply);
    if (!id) return;
    jobs_->post_for(reply, [self = shared_from_this(), scope = std::move(*scope), id = *id, reply] {
        if (self->acting_account_gone(scope, reply)) return;
        auto r = self->data_->remove(scope, id);
        if (!r) return reply.fail(r.error().code, r.error().message);
        reply.reply(DataFrame{});
    });
}

void DataService::do_query(const Request& req, DataFrame arg, Reply reply) {
    auto query_id = arg.read_uint();
    if (!query_id) return reply.fail(Errc::invalid_argument, "expected a query id (a number)");
    auto scope = scope_of(req, arg, reply, false);
    if (!scope) return;
    auto filter = arg.read_map();
    if (!filter) return reply.fail(Errc::invalid_argument, "expected a filter (a map)");
    zdb::QueryOptions o;
    o.parallelism = options_.query_parallelism;
    o.fragment_bytes = options_.query_fragment_bytes;
    o.fragment_records = fragment_records;
    o.time_limit = options_.query_time_limit;
    std::size_t window = std::min(default_window, options_.max_query_window);
    if (!arg.at_end()) {
        auto given = arg.read_map();
        if (!given) return reply.fail(Errc::invalid_argument, "expected options (a map)");
        for (const auto& [name, value] : *given) {
            bool ok = true;
            auto count = count_of(value);
            if (name == "window" && (ok = bool(count)))
                window = std::size_t(std::min<std::uint64_t>(*count, 1u << 20));
            else if (name == "max_results" && (ok = bool(count)))
                o.max_results = *count;
            else if (name == "reverse" && (ok = value.is<bool>()))
                o.reverse = value.as<bool>();
            else if (name == "ordered" && (ok = value.is<bool>()))
                o.ordered = value.as<bool>();
            else
                ok = false;
            if (!ok)
                return reply.fail(Errc::invalid_argument,
                                  "query options are window (1-" +
                                      std::to_string(options_.max_query_window) +
                                      "), max_results, reverse and ordered: not '" +
                                      name.substr(0, 80) + "' as given");
        }
        if (window < 1 || window > options_.max_query_window)
            return reply.fail(Errc::invalid_argument,
                              "window is 1 to " + std::to_string(options_.max_query_window));
    }
    auto conn = req.connection().id();
    if (!queries_->admit(conn, *query_id, reply)) return;
    auto posted = jobs_->post(
        [self = shared_from_this(), conn, id = *query_id, scope = std::move(*scope),
         filter = std::move(*filter), o = std::move(o), window]() mutable {
            if (auto ok = self->check_acting_account(scope); !ok)
                return self->queries_->abandon(conn, id, ok.error().code, ok.error().message);
            auto compiled = UserData::filter_for(scope, filter);
            if (!compiled)
                return self->queries_->abandon(conn, id, compiled.error().code,
                                               compiled.error().message);
            auto db = self->data_->database_of(scope);
            if (!db) return self->queries_->abandon(conn, id, db.error().code, db.error().message);
            self->queries_->start(conn, id, std::move(*db), std::move(*compiled), std::move(o),
                                  window);
        },
        [self = shared_from_this(), conn, id = *query_id] {
            self->queries_->abandon(conn, id, Errc::handler_error,
                                    "the cloud service failed; see the server log");
        });
    if (posted == Jobs::Posted::stopped)
        queries_->abandon(conn, *query_id, Errc::shutting_down, "the cloud service stopped");
    else if (posted == Jobs::Posted::full)
        queries_->abandon(conn, *query_id, Errc::overloaded,
                          "the server is busy; try again shortly");
}

void DataService::do_control(const Request& req, DataFrame arg, Reply reply) {
    auto query_id = arg.read_uint();
    auto action = query_id ? arg.read_string() : Result<std::string>(query_id.error());
    if (!query_id || !action)
        return reply.fail(Errc::invalid_argument, "expected a query id and an action");
    auto progress = queries_->control(req.connection().id(), *query_id, *action);
    if (!progress) return reply.fail(progress.error().code, progress.error().message);
    DataFrame out;
    out << *progress;
    reply.reply(std::move(out));
}

}  // namespace hawser::cloud::detail
