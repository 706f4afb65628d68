#include "cloud/file_service.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "cloud/signed_in.hpp"
#include "cloud/unix_ms.hpp"
#include "hawser/relative_path.hpp"

namespace hawser::cloud::detail {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view part_suffix = ".hawser-part";  // receive_file's
constexpr std::size_t list_page = 1000;                   // entries per cloud.list reply
constexpr std::size_t max_stream_name = 128;
constexpr auto full_sweep_every = std::chrono::hours(1);
// How long a client may take to accept a download before its content is closed again.
constexpr auto download_accept_timeout = std::chrono::seconds(30);

std::uint64_t user_of(const Connection& c) {
    return c.connected() ? c.service_context<SignedIn>().user : 0;
}

// A path argument in its normal form; "" (the top) only where `top` allows it.
Result<std::string> read_path(DataFrame& arg, bool top = false) {
    auto s = arg.read_string();
    if (!s) return Error{Errc::invalid_argument, "expected a path (a string)"};
    if (top && (s->empty() || *s == "/")) return std::string();
    auto normal = normalise_relative_path(*s);
    if (!normal) return Error{normal.error().code, "path: " + normal.error().message};
    return normal;
}

// The part's name in the user's upload area: one per path, size and (when the sender states
// it) content hash, so a cut upload of the same file resumes. Without a stated hash, another
// content of the same size to the same path fails its hash once, and then starts afresh.
std::string upload_key(const std::string& path, std::uint64_t size, const std::string& hash) {
    std::string input = path;
    input.push_back('\0');
    input += std::to_string(size);
    input.push_back('\0');
    input += hash;
    std::array<std::uint8_t, 16> digest{};
    crypto_generichash(digest.data(), digest.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size(), nullptr,
                       0);
    std::string hex(digest.size() * 2 + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
    hex.pop_back();
    return hex;
}

DataFrame frame_of(Value v) {
    DataFrame out;
    out << std::move(v);
    return out;
}

Error not_found(const std::string& path) {
    return {Errc::not_found, "no such file or directory: '" + path + "'"};
}

}  // namespace

FileService::FileService(std::shared_ptr<Jobs> jobs, const CloudOptions& options, BlobStore blobs,
                         std::unique_ptr<FileTree> tree, AccountExists account_exists)
    : jobs_(std::move(jobs)),
      options_(options),
      blobs_(std::move(blobs)),
      tree_(std::move(tree)),
      account_exists_(std::move(account_exists)) {}

Result<std::shared_ptr<FileService>> FileService::open(zdb::Store& store,
                                                       std::shared_ptr<Jobs> jobs,
                                                       const CloudOptions& options,
                                                       AccountExists account_exists) {
    auto blobs = BlobStore::open(options.files_dir);
    if (!blobs) return blobs.error();
    auto tree = FileTree::open(store, options.database_prefix + ".files");
    if (!tree) return tree.error();
    // Nothing is under way yet: every old leftover goes, and every content no entry names
    // (a crash between a content's adoption and its entry).
    blobs->sweep(fs::file_time_type::clock::now() - options.partial_upload_lifetime, {});
    blobs->sweep_unreferenced([&](const ContentHash& h) { return (*tree)->referenced(h); });
    auto service = std::make_shared<FileService>(std::move(jobs), options, std::move(*blobs),
                                                 std::move(*tree), std::move(account_exists));
    service->last_full_sweep_ = std::chrono::steady_clock::now().time_since_epoch().count();
    return service;
}

void FileService::close() {
    tree_.reset();
}

template <class Job>
void FileService::run(const Request& req, const Reply& reply, Job job) {
    auto user = user_of(req.connection());
    if (!user) return reply.fail(Errc::unauthenticated, "log in first");
    jobs_->post_for(reply, [self = shared_from_this(), user, job = std::move(job)]() mutable {
        job(*self, user);
    });
}

void FileService::add_commands(Commands& commands) {
    std::weak_ptr<FileService> weak = weak_from_this();
    auto add = [&](std::string_view name,
                   void (FileService::*handler)(const Request&, DataFrame, Reply)) {
        commands.dataframe(
            std::string(name), [weak, handler](const Request& req, DataFrame arg, Reply reply) {
                auto self = weak.lock();
                if (!self) return reply.fail(Errc::shutting_down, "the cloud service stopped");
                ((*self).*handler)(req, std::move(arg), std::move(reply));
            });
    };
    add(Cloud::get_command, &FileService::do_get);
    add(Cloud::list_command, &FileService::do_list);
    add(Cloud::stat_command, &FileService::do_stat);
    add(Cloud::mkdir_command, &FileService::do_mkdir);
    add(Cloud::move_command, &FileService::do_move);
    add(Cloud::remove_command, &FileService::do_remove);
    add(Cloud::usage_command, &FileService::do_usage);
    commands.stream(std::string(Cloud::put_stream), [weak](const Request& req, IncomingStream in) {
        auto self = weak.lock();
        if (!self) return in.reject(Errc::shutting_down, "the cloud service stopped");
        self->on_put(req, std::move(in));
    });
}

// --- uploads ---

void FileService::on_put(const Request& req, IncomingStream in) {
    Upload up;
    up.user = user_of(req.connection());
    if (!up.user) return in.reject(Errc::unauthenticated, "log in first");
    if (!in.size()) return in.reject(Errc::invalid_argument, "an upload states its size");
    up.size = *in.size();
    auto metadata = in.metadata();
    auto path = read_path(metadata);
    if (!path) return in.reject(path.error().code, path.error().message);
    up.path = std::move(*path);
    std::string hash;
    if (!metadata.at_end()) {
        auto stated = metadata.read_string();
        auto parsed = stated ? hash_from_hex(*stated) : Result<ContentHash>(Errc::invalid_argument);
        if (!parsed)
            return in.reject(Errc::invalid_argument,
                             "the content hash is 64 hex digits (BLAKE2b-256)");
        hash = to_hex(*parsed);
    }
    up.key = upload_key(up.path, up.size, hash);
    auto shared = std::make_shared<IncomingStream>(std::move(in));
    auto posted = jobs_->post(
        [self = shared_from_this(), shared, up]() mutable { self->admit(*shared, std::move(up)); },
        [shared] {
            shared->reject(Errc::handler_error, "the cloud service failed; see the server log");
        });
    if (posted == Jobs::Posted::stopped)
        shared->reject(Errc::shutting_down, "the cloud service stopped");
    else if (posted == Jobs::Posted::full)
        shared->reject(Errc::overloaded, "the server is busy; try again shortly");
}

// Releases an upload's reservation when it goes out of scope, unless handed on.
struct FileService::Reservation {
    FileService* self;
    const Upload& up;
    bool held = true;
    ~Reservation() {
        if (held) self->release(up);
    }
};

std::optional<Error> FileService::check_fits(const Upload& up, std::uint64_t freed,
                                             std::size_t adding, const FileUsage& usage,
                                             const Reserved& others) const {
    auto bytes = usage.bytes - freed + others.bytes;  // freed is part of usage.bytes
    if (up.size > options_.quota_bytes || bytes > options_.quota_bytes - up.size)
        return Error{Errc::limit_exceeded, "the file (" + std::to_string(up.size) +
                                               " bytes) would pass the quota of " +
                                               std::to_string(options_.quota_bytes) + " bytes (" +
                                               std::to_string(bytes) + " in use or on the way)"};
    if (usage.entries + others.entries + adding > options_.max_entries_per_user)
        return Error{Errc::limit_exceeded, "at most " +
                                               std::to_string(options_.max_entries_per_user) +
                                               " files and directories per user"};
    return std::nullopt;
}

FileService::Reserved FileService::reserved_locked(std::uint64_t user,
                                                   std::uint64_t except_ticket) const {
    Reserved r;
    if (auto it = uploads_.find(user); it != uploads_.end())
        for (auto& u : it->second)
            if (u.ticket != except_ticket) {
                r.bytes += u.size;
                r.entries += u.entries;
            }
    return r;
}

Result<FileService::Placement> FileService::place(const Upload& up) const {
    auto alive = account_exists_(up.user);
    if (!alive) return alive.error();
    if (!*alive) return Error{Errc::not_found, "the account was deleted"};
    Placement p;
    auto existing = tree_->find(up.user, up.path);
    if (!existing) return existing.error();
    if (*existing && (*existing)->directory)
        return Error{Errc::already_exists, "'" + up.path + "' is a directory"};
    p.freed = *existing ? (*existing)->size : 0;
    auto missing = tree_->missing_dirs(up.user, up.path, false);
    if (!missing) return missing.error();
    p.adding = missing->size() + (*existing ? 0 : 1);
    auto usage = tree_->usage(up.user);
    if (!usage) return usage.error();
    p.existing = std::move(*existing);
    p.missing = std::move(*missing);
    p.usage = *usage;
    return p;
}

// Worker pool: the checks that admit an upload, its reservation, then its bytes.
void FileService::admit(IncomingStream& in, Upload up) {
    sweep(up.user);
    auto refused = [&]() -> std::optional<Error> {
        std::lock_guard tree(tree_mu_);
        auto p = place(up);
        if (!p) return p.error();
        std::lock_guard lock(uploads_mu_);
        auto it = uploads_.find(up.user);
        if (it != uploads_.end()) {
            if (it->second.size() >= options_.max_transfers_per_user)
                return Error{Errc::too_many_pending,
                             "at most " + std::to_string(options_.max_transfers_per_user) +
                                 " uploads at once"};
            // One upload per part at once: another would write into it, or over the file
            // this one is about to adopt.
            for (auto& u : it->second)
                if (u.key == up.key)
                    return Error{Errc::too_many_pending,
                                 "'" + up.path + "' is being uploaded already"};
        }
        up.entries = p->adding;
        if (auto e = check_fits(up, p->freed, p->adding, p->usage, reserved_locked(up.user, 0)))
            return e;
        up.ticket = next_ticket_++;
        uploads_[up.user].push_back(up);
        return std::nullopt;
    }();
    if (refused) return in.reject(refused->code, refused->message);
    Reservation reservation{this, up};
    // Cut uploads kept to resume: as many as may run at once, the oldest going first.
    blobs_.trim_user(
        up.user, options_.max_transfers_per_user,
        [this](std::uint64_t user, const std::string& name) { return uploading(user, name); });
    ReceiveFileOptions o;
    o.hold_verdict = true;
    receive_file(
        std::move(in), blobs_.uploads_of(up.user), up.key,
        [weak = weak_from_this(), up](Result<ReceivedFile> r) {
            if (auto self = weak.lock()) return self->received(std::move(r), up);
            // Dropping the source would tell the sender ok.
            if (r) r->source.finish(Errc::shutting_down, "the cloud service stopped");
        },
        o);
    reservation.held = false;  // the callback releases it
}

// IO thread: the bytes are on disk and their hash matched (or the upload failed, and the
// sender has heard why from the stream).
void FileService::received(Result<ReceivedFile> r, const Upload& up) {
    if (!r) return release(up);
    auto stored = std::make_shared<ReceivedFile>(std::move(*r));
    auto posted =
        jobs_->post([self = shared_from_this(), stored, up] { self->commit(*stored, up); },
                    [self = shared_from_this(), stored, up] {
                        self->release(up);
                        stored->source.finish(Errc::handler_error,
                                              "the cloud service failed; see the server log");
                    });
    if (posted == Jobs::Posted::ok) return;
    release(up);
    if (posted == Jobs::Posted::stopped)
        stored->source.finish(Errc::shutting_down, "the cloud service stopped");
    else
        stored->source.finish(Errc::overloaded, "the server is busy; upload again to finish");
}

// Worker pool: the stored upload becomes the file's content, if it still fits: the tree may
// have changed since the upload was admitted (a move, a removal, a directory).
void FileService::commit(ReceivedFile& stored, const Upload& up) {
    auto file = blobs_.uploads_of(up.user) / up.key;
    Reservation reservation{this, up};
    // Synced before the lock: until released, the file is this upload's alone.
    auto kept = blobs_.sync(file, stored.size);
    if (kept)
        kept = [&]() -> Result<void> {
            std::lock_guard tree(tree_mu_);
            Reservation released_under_lock{this, up};  // before the lock goes: no double count
            // A file not adopted goes while this upload still holds its key: after, a new
            // upload of the same key may have stored its own under that name.
            struct Discard {
                const fs::path& file;
                bool armed = true;
                ~Discard() {
                    if (armed) ::unlink(file.c_str());
                }
            } discard{file};
            auto p = place(up);
            if (!p) return p.error();
            Reserved others;
            {
                std::lock_guard lock(uploads_mu_);
                others = reserved_locked(up.user, up.ticket);
            }
            if (auto e = check_fits(up, p->freed, p->adding, p->usage, others)) return *e;
            if (auto r = blobs_.adopt(file, stored.hash); !r) return r;
            auto now = unix_ms();
            auto put = tree_->add_dirs(up.user, p->missing, now);
            if (put)
                put = tree_->put_file(up.user, up.path, stored.size, stored.hash, now, p->existing);
            if (!put) {
                release_blob(stored.hash);
                return put;
            }
            if (p->existing && p->existing->hash != stored.hash) release_blob(p->existing->hash);
            discard.armed = false;
            return {};
        }();
    else
        ::unlink(file.c_str());
    if (!kept) {
        // The server's paths stay in its log.
        if (kept.error().code == Errc::storage_error) {
            spdlog::warn("hawser cloud: an upload of user {} was not kept: {}", up.user,
                         kept.error().message);
            kept = Error{Errc::storage_error, "the server could not store the file"};
        }
        return stored.source.finish(kept.error().code, kept.error().message);
    }
    uploaded_.fetch_add(1);
    stored.source.finish(Errc::ok);
}

bool FileService::start_download(std::uint64_t user) {
    std::lock_guard lock(uploads_mu_);
    auto& n = downloads_[user];
    if (n >= options_.max_transfers_per_user) return false;
    ++n;
    return true;
}

void FileService::end_download(std::uint64_t user) {
    std::lock_guard lock(uploads_mu_);
    if (auto it = downloads_.find(user); it != downloads_.end() && --it->second == 0)
        downloads_.erase(it);
}

void FileService::release(const Upload& up) {
    std::lock_guard lock(uploads_mu_);
    auto it = uploads_.find(up.user);
    if (it == uploads_.end()) return;
    std::erase_if(it->second, [&](const Upload& u) { return u.ticket == up.ticket; });
    if (it->second.empty()) uploads_.erase(it);
}

// Whether `file_name` in the user's upload area belongs to an upload under way.
bool FileService::uploading(std::uint64_t user, const std::string& file_name) {
    std::string_view key = file_name;
    if (key.ends_with(part_suffix)) key.remove_suffix(part_suffix.size());
    std::lock_guard lock(uploads_mu_);
    auto it = uploads_.find(user);
    if (it == uploads_.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](const Upload& u) { return u.key == key; });
}

void FileService::sweep(std::uint64_t user) {
    auto before = fs::file_time_type::clock::now() - options_.partial_upload_lifetime;
    auto keep = [this](std::uint64_t u, const std::string& name) { return uploading(u, name); };
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_full_sweep_.load();
    if (now - last >=
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(full_sweep_every)
                .count() &&
        last_full_sweep_.compare_exchange_strong(last, now))
        blobs_.sweep(before, keep);
    else
        blobs_.sweep_user(user, before, keep);
}

void FileService::release_blob(const ContentHash& hash) {
    auto used = tree_->referenced(hash);
    if (used && !*used) blobs_.remove(hash);
}

// --- the calls ---

void FileService::do_get(const Request& req, DataFrame arg, Reply reply) {
    auto path = read_path(arg);
    if (!path) return reply.fail(path.error().code, path.error().message);
    std::string stream(Cloud::download_stream);
    if (!arg.at_end()) {
        auto name = arg.read_string();
        if (!name || name->empty() || name->size() > max_stream_name)
            return reply.fail(Errc::invalid_argument,
                              "the stream to download to is a name of 1 to " +
                                  std::to_string(max_stream_name) + " bytes");
        stream = std::move(*name);
    }
    run(req, reply,
        [path = std::move(*path), stream, reply, conn = req.connection()](FileService& self,
                                                                          std::uint64_t user) {
            // The blob cannot go between the look-up and the open.
            std::lock_guard tree(self.tree_mu_);
            auto entry = self.tree_->find(user, path);
            if (!entry) return reply.fail(entry.error().code, entry.error().message);
            if (!*entry) return reply.fail(Errc::not_found, not_found(path).message);
            if ((*entry)->directory)
                return reply.fail(Errc::invalid_argument, "'" + path + "' is a directory");
            // Each download holds its content open: as many at once per user as uploads.
            if (!self.start_download(user))
                return reply.fail(Errc::too_many_pending,
                                  "at most " +
                                      std::to_string(self.options_.max_transfers_per_user) +
                                      " downloads at once");
            StreamOptions o;
            o.metadata << path << (*entry)->size;
            o.content_hash = (*entry)->hash;
            o.accept_timeout = download_accept_timeout;
            conn.send_file(
                stream, self.blobs_.path_of((*entry)->hash).string(),
                [weak = self.weak_from_this(), user, reply,
                 entry = (*entry)->to_map()](Result<void> r) {
                    auto self = weak.lock();
                    if (self) self->end_download(user);
                    if (!r && r.error().code == Errc::storage_error) {
                        spdlog::warn("hawser cloud: a download of user {} failed: {}", user,
                                     r.error().message);
                        return reply.fail(Errc::storage_error,
                                          "the server could not read the file");
                    }
                    if (!r) return reply.fail(r.error().code, r.error().message);
                    if (self) self->downloaded_.fetch_add(1);
                    reply.reply(frame_of(Value(entry)));
                },
                std::move(o));
        });
}

void FileService::do_list(const Request& req, DataFrame arg, Reply reply) {
    auto path = read_path(arg, true);
    if (!path) return reply.fail(path.error().code, path.error().message);
    std::string after;
    if (!arg.at_end()) {
        auto s = arg.read_string();
        if (!s) return reply.fail(Errc::invalid_argument, "expected the name to list after");
        after = std::move(*s);
    }
    run(req, reply, [path = std::move(*path), after, reply](FileService& self, std::uint64_t user) {
        if (!path.empty()) {
            auto dir = self.tree_->find(user, path);
            if (!dir) return reply.fail(dir.error().code, dir.error().message);
            if (!*dir) return reply.fail(Errc::not_found, not_found(path).message);
            if (!(*dir)->directory)
                return reply.fail(Errc::invalid_argument, "'" + path + "' is a file");
        }
        auto entries = self.tree_->list(user, path);
        if (!entries) return reply.fail(entries.error().code, entries.error().message);
        Array page;
        bool more = false;
        auto prefix = path.empty() ? 0 : path.size() + 1;
        for (auto& e : *entries) {
            if (!after.empty() && e.path.substr(prefix) <= after) continue;
            if (page.size() == list_page) {
                more = true;
                break;
            }
            page.emplace_back(e.to_map());
        }
        DataFrame out;
        out << Value(std::move(page)) << more;
        reply.reply(std::move(out));
    });
}

void FileService::do_stat(const Request& req, DataFrame arg, Reply reply) {
    auto path = read_path(arg);
    if (!path) return reply.fail(path.error().code, path.error().message);
    run(req, reply, [path = std::move(*path), reply](FileService& self, std::uint64_t user) {
        auto entry = self.tree_->find(user, path);
        if (!entry) return reply.fail(entry.error().code, entry.error().message);
        if (!*entry) return reply.fail(Errc::not_found, not_found(path).message);
        reply.reply(frame_of(Value((*entry)->to_map())));
    });
}

Result<void> FileService::check_new_entries(std::uint64_t user, std::size_t adding) {
    if (adding == 0) return {};
    auto usage = tree_->usage(user);
    if (!usage) return usage.error();
    Reserved uploading;
    {
        std::lock_guard lock(uploads_mu_);
        uploading = reserved_locked(user, 0);
    }
    if (usage->entries + uploading.entries + adding > options_.max_entries_per_user)
        return Error{Errc::limit_exceeded, "at most " +
                                               std::to_string(options_.max_entries_per_user) +
                                               " files and directories per user"};
    return {};
}

void FileService::do_mkdir(const Request& req, DataFrame arg, Reply reply) {
    auto path = read_path(arg);
    if (!path) return reply.fail(path.error().code, path.error().message);
    run(req, reply, [path = std::move(*path), reply](FileService& self, std::uint64_t user) {
        std::lock_guard tree(self.tree_mu_);
        auto missing = self.tree_->missing_dirs(user, path, true);
        if (!missing) {
            // The path itself may be the file.
            auto entry = self.tree_->find(user, path);
            if (entry && *entry && !(*entry)->directory)
                return reply.fail(Errc::already_exists, "'" + path + "' is a file");
            return reply.fail(missing.error().code, missing.error().message);
        }
        if (auto ok = self.check_new_entries(user, missing->size()); !ok)
            return reply.fail(ok.error().code, ok.error().message);
        if (auto r = self.tree_->add_dirs(user, *missing, unix_ms()); !r)
            return reply.fail(r.error().code, r.error().message);
        auto entry = self.tree_->find(user, path);
        if (!entry || !*entry)
            return reply.fail(Errc::storage_error, "the directory did not stay: try again");
        reply.reply(frame_of(Value((*entry)->to_map())));
    });
}

void FileService::do_move(const Request& req, DataFrame arg, Reply reply) {
    auto from = read_path(arg);
    if (!from) return reply.fail(from.error().code, from.error().message);
    auto to = read_path(arg);
    if (!to) return reply.fail(to.error().code, to.error().message);
    run(req, reply,
        [from = std::move(*from), to = std::move(*to), reply](FileService& self,
                                                              std::uint64_t user) {
            std::lock_guard tree(self.tree_mu_);
            auto& t = *self.tree_;
            auto source = t.find(user, from);
            if (!source) return reply.fail(source.error().code, source.error().message);
            if (!*source) return reply.fail(Errc::not_found, not_found(from).message);
            auto target = t.find(user, to);
            if (!target) return reply.fail(target.error().code, target.error().message);
            if (*target) return reply.fail(Errc::already_exists, "'" + to + "' exists already");
            if ((*source)->directory && to.starts_with(from + "/"))
                return reply.fail(Errc::invalid_argument, "a directory cannot move into itself");
            std::vector<FileEntry> moving{**source};
            if ((*source)->directory) {
                auto all = t.subtree(user, from);
                if (!all) return reply.fail(all.error().code, all.error().message);
                moving = std::move(*all);
            }
            // Every new path within the limits a name from the network has, before any write.
            std::vector<std::string> renamed;
            for (auto& e : moving) {
                renamed.push_back(to + e.path.substr(from.size()));
                if (!normalise_relative_path(renamed.back()))
                    return reply.fail(Errc::invalid_argument, "moving there makes '" +
                                                                  renamed.back().substr(0, 64) +
                                                                  "...' too long or too deep");
            }
            auto missing = t.missing_dirs(user, to, false);
            if (!missing) return reply.fail(missing.error().code, missing.error().message);
            if (auto ok = self.check_new_entries(user, missing->size()); !ok)
                return reply.fail(ok.error().code, ok.error().message);
            if (auto r = t.add_dirs(user, *missing, unix_ms()); !r)
                return reply.fail(r.error().code, r.error().message);
            for (std::size_t i = 0; i < moving.size(); ++i)
                if (auto r = t.move(user, moving[i], renamed[i]); !r)
                    return reply.fail(r.error().code, r.error().message);
            auto moved = t.find(user, to);
            if (!moved || !*moved)
                return reply.fail(Errc::storage_error, "the entry did not stay: try again");
            reply.reply(frame_of(Value((*moved)->to_map())));
        });
}

void FileService::do_remove(const Request& req, DataFrame arg, Reply reply) {
    auto path = read_path(arg);
    if (!path) return reply.fail(path.error().code, path.error().message);
    bool recursive = false;
    if (!arg.at_end()) {
        auto r = arg.read_bool();
        if (!r) return reply.fail(Errc::invalid_argument, "expected 'recursive' (a bool)");
        recursive = *r;
    }
    run(req, reply,
        [path = std::move(*path), recursive, reply](FileService& self, std::uint64_t user) {
            std::lock_guard tree(self.tree_mu_);
            auto entry = self.tree_->find(user, path);
            if (!entry) return reply.fail(entry.error().code, entry.error().message);
            if (!*entry) return reply.fail(Errc::not_found, not_found(path).message);
            std::vector<FileEntry> removing{**entry};
            if ((*entry)->directory) {
                auto all = self.tree_->subtree(user, path);
                if (!all) return reply.fail(all.error().code, all.error().message);
                if (all->size() > 1 && !recursive)
                    return reply.fail(Errc::invalid_argument,
                                      "'" + path + "' is not empty (remove it recursively)");
                removing = std::move(*all);
            }
            auto removed = self.remove_entries(removing);
            if (!removed) return reply.fail(removed.error().code, removed.error().message);
            DataFrame out;
            out << std::uint64_t(removing.size());
            reply.reply(std::move(out));
        });
}

void FileService::do_usage(const Request& req, DataFrame, Reply reply) {
    run(req, reply, [reply](FileService& self, std::uint64_t user) {
        auto usage = self.tree_->usage(user);
        if (!usage) return reply.fail(usage.error().code, usage.error().message);
        reply.reply(frame_of(
            Value(Map{{"bytes", Value(usage->bytes)},
                      {"quota_bytes", Value(self.options_.quota_bytes)},
                      {"entries", Value(usage->entries)},
                      {"max_entries", Value(std::uint64_t(self.options_.max_entries_per_user))}})));
    });
}

Result<void> FileService::remove_entries(const std::vector<FileEntry>& entries) {
    std::optional<Error> failed;
    std::vector<ContentHash> hashes;
    for (auto& e : entries) {
        if (auto r = tree_->remove(e); !r) {
            failed = failed ? failed : r.error();
            continue;
        }
        if (!e.directory) hashes.push_back(e.hash);
    }
    std::sort(hashes.begin(), hashes.end());
    hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
    for (auto& h : hashes) release_blob(h);
    if (failed) return *failed;
    return {};
}

Result<void> FileService::remove_all(std::uint64_t user) {
    std::lock_guard tree(tree_mu_);
    auto all = tree_->subtree(user, "");
    if (!all) return all.error();
    auto removed = remove_entries(*all);
    blobs_.remove_user(user);
    return removed;
}

}  // namespace hawser::cloud::detail
