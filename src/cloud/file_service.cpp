// FileService (file_service.hpp): opening, the command table, downloads and the tree calls.
// Uploads are in file_uploads.cpp.
#include "cloud/file_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "cloud/file_arguments.hpp"
#include "cloud/files_elsewhere.hpp"
#include "cloud/unix_ms.hpp"
#include "cloud/weak_command.hpp"

namespace hawser::cloud::detail {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t list_page = 1000;  // entries per cloud.list reply
constexpr std::size_t max_stream_name = 128;
// How long a client may take to accept a download before its content is closed again.
constexpr auto download_accept_timeout = std::chrono::seconds(30);

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
        add_weak_command(commands, weak, name, handler);
    };
    add(Cloud::get_command, &FileService::do_get);
    add(Cloud::list_command, &FileService::do_list);
    add(Cloud::stat_command, &FileService::do_stat);
    add(Cloud::mkdir_command, &FileService::do_mkdir);
    add(Cloud::move_command, &FileService::do_move);
    add(Cloud::remove_command, &FileService::do_remove);
    add(Cloud::usage_command, &FileService::do_usage);
    commands.dataframe(std::string(Cloud::files_at_command),
                       [](const Request&, DataFrame&) { return files_at(true); });
    commands.stream(std::string(Cloud::put_stream), [weak](const Request& req, IncomingStream in) {
        auto self = weak.lock();
        if (!self) return in.reject(Errc::shutting_down, "the cloud service stopped");
        self->on_put(req, std::move(in));
    });
}

void FileService::release_blob(const ContentHash& hash) {
    auto used = tree_->referenced(hash);
    if (used && !*used) blobs_.remove(hash);
}

// --- the calls ---

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
            // Given back once: by the callback below, or here if send_file is not reached or
            // throws (Jobs then answers the reply), so that no failure keeps the user's place.
            auto give_back = [weak = self.weak_from_this(), user,
                              once = std::make_shared<std::atomic<bool>>(false)] {
                if (once->exchange(true)) return;
                if (auto self = weak.lock()) self->end_download(user);
            };
            struct Undo {
                const decltype(give_back)& give;
                bool armed = true;
                ~Undo() {
                    if (armed) give();
                }
            } undo{give_back};
            StreamOptions o;
            o.metadata << path << (*entry)->size;
            o.content_hash = (*entry)->hash;
            o.accept_timeout = download_accept_timeout;
            auto file = self.blobs_.path_of((*entry)->hash).string();
            auto done = [weak = self.weak_from_this(), give_back, user, reply,
                         entry = (*entry)->to_map()](Result<void> r) {
                give_back();
                auto self = weak.lock();
                if (!r && r.error().code == Errc::storage_error) {
                    spdlog::warn("hawser cloud: a download of user {} failed: {}", user,
                                 r.error().message);
                    return reply.fail(Errc::storage_error, "the server could not read the file");
                }
                if (!r) return reply.fail(r.error().code, r.error().message);
                if (self) self->downloaded_.fetch_add(1);
                reply.reply(frame_of(Value(entry)));
            };
            conn.send_file(stream, file, std::move(done), std::move(o));
            undo.armed = false;
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
