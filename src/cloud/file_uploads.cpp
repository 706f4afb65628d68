// FileService's uploads (file_service.hpp): the cloud.put stream's admission and
// reservation, the bytes through receive_file, the commit that makes them a file, and the
// sweep of cut uploads. Thread affinity as the class says: admission and commit on the worker
// pool, the receive callback on the connection's IO thread (or at once, on the worker, when
// the receive is refused before it starts).
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "cloud/file_arguments.hpp"
#include "cloud/file_service.hpp"
#include "cloud/unix_ms.hpp"

namespace hawser::cloud::detail {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view part_suffix = ".hawser-part";  // receive_file's
constexpr auto full_sweep_every = std::chrono::hours(1);

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

}  // namespace

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
    std::uint64_t room = 0;  // the quota left beside the files and the uploads under way
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
        auto others = reserved_locked(up.user, 0);
        if (auto e = check_fits(up, p->freed, p->adding, p->usage, others)) return e;
        room = options_.quota_bytes - up.size - (p->usage.bytes - p->freed + others.bytes);
        up.ticket = next_ticket_++;
        uploads_[up.user].push_back(up);
        return std::nullopt;
    }();
    if (refused) return in.reject(refused->code, refused->message);
    Reservation reservation{this, up};
    // Cut uploads kept to resume: as many as may run at once, in what the quota has left, the
    // oldest going first. A part counts against the quota as its upload did, so a user's disk
    // stays within it.
    blobs_.trim_user(
        up.user, options_.max_transfers_per_user, room,
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

// IO thread (or the admitting worker, for a receive refused before it started): the bytes are
// on disk and their hash matched (or the upload failed, and the sender has heard why).
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

}  // namespace hawser::cloud::detail
