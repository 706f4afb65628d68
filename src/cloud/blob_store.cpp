#include "cloud/blob_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "wire/noise.hpp"

namespace hawser::cloud::detail {

namespace fs = std::filesystem;

namespace {

Error storage(const std::string& what, int err) {
    return Error{Errc::storage_error, what + ": " + std::strerror(err)};
}

// fsync of a directory: a rename in it is on disk.
bool sync_dir(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::fsync(fd) == 0;
    int error = errno;
    ::close(fd);
    errno = error;  // fsync's, for the caller's message
    return ok;
}

// Deletes `path` unless a receiver holds its lock (receive_file locks its part while writing).
void unlink_unless_locked(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(path.c_str());
    ::close(fd);
}

struct Leftover {
    fs::path path;
    std::string name;
    fs::file_time_type written;
    std::uint64_t bytes = 0;
};

std::vector<Leftover> leftovers(const fs::path& dir) {
    std::vector<Leftover> found;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        std::error_code stat_ec;
        if (!it->is_regular_file(stat_ec)) continue;
        auto written = it->last_write_time(stat_ec);
        auto bytes = stat_ec ? 0 : it->file_size(stat_ec);
        if (stat_ec) continue;
        found.push_back({it->path(), it->path().filename().string(), written, bytes});
    }
    return found;
}

// The user a directory under uploads/ belongs to; 0 for anything else.
std::uint64_t user_of_dir(const std::string& name) {
    std::uint64_t user = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), user);
    if (ec != std::errc() || end != name.data() + name.size()) return 0;
    return user;
}

}  // namespace

std::string to_hex(const ContentHash& hash) {
    return hawser::detail::noise::to_hex(hash);
}

Result<ContentHash> hash_from_hex(std::string_view hex) {
    auto hash = hawser::detail::noise::key_from_hex(hex);
    if (!hash) return Error{Errc::invalid_argument, "a content hash is 64 hex digits"};
    return *hash;
}

Result<BlobStore> BlobStore::open(const fs::path& root) {
    std::error_code ec;
    for (auto dir : {root / "blobs", root / "uploads"}) {
        fs::create_directories(dir, ec);
        if (ec) return Error{Errc::storage_error, "creating " + dir.string() + ": " + ec.message()};
    }
    auto lock = root / "lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return storage("opening " + lock.string(), errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return Error{Errc::storage_error,
                     root.string() + " is in use by another process (one server per files_dir)"};
    }
    return BlobStore(root, fd);
}

BlobStore::~BlobStore() {
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

fs::path BlobStore::path_of(const ContentHash& hash) const {
    auto hex = to_hex(hash);
    return root_ / "blobs" / hex.substr(0, 2) / hex;
}

fs::path BlobStore::uploads_of(std::uint64_t user) const {
    return root_ / "uploads" / std::to_string(user);
}

Result<void> BlobStore::sync(const fs::path& file, std::uint64_t size) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return storage("opening " + file.string(), errno);
    struct stat st {};
    Result<void> r;
    if (::fstat(fd, &st) != 0)
        r = storage("checking " + file.string(), errno);
    else if (!S_ISREG(st.st_mode) || std::uint64_t(st.st_size) != size)
        r = Error{Errc::storage_error, file.string() + " changed after it was received"};
    else if (::fsync(fd) != 0)
        r = storage("syncing " + file.string(), errno);
    ::close(fd);
    return r;
}

Result<void> BlobStore::adopt(const fs::path& file, const ContentHash& hash) {
    auto target = path_of(hash);
    std::error_code ec;
    if (fs::exists(target, ec)) {
        ::unlink(file.c_str());
        return {};
    }
    fs::create_directories(target.parent_path(), ec);
    if (ec)
        return Error{Errc::storage_error,
                     "creating " + target.parent_path().string() + ": " + ec.message()};
    // Synced (sync()) before it gets its name: a crash never leaves a named blob with a hole.
    if (::rename(file.c_str(), target.c_str()) != 0)
        return storage("renaming " + file.string(), errno);
    if (!sync_dir(target.parent_path())) {
        int error = errno;
        // Nothing names it yet (its entry comes after): it goes now, not at the next start.
        ::unlink(target.c_str());
        return storage("syncing " + target.parent_path().string(), error);
    }
    return {};
}

void BlobStore::remove(const ContentHash& hash) {
    ::unlink(path_of(hash).c_str());
}

void BlobStore::sweep_unreferenced(
    const std::function<Result<bool>(const ContentHash&)>& referenced) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_ / "blobs", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code type_ec;
        if (!it->is_regular_file(type_ec)) continue;
        auto hash = hash_from_hex(it->path().filename().string());
        if (!hash) continue;  // not ours
        auto used = referenced(*hash);
        if (used && !*used) ::unlink(it->path().c_str());
    }
}

void BlobStore::sweep(fs::file_time_type before, const Keep& keep) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(root_ / "uploads", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
        auto user = user_of_dir(it->path().filename().string());
        if (user != 0) sweep_user(user, before, keep);
    }
}

void BlobStore::sweep_user(std::uint64_t user, fs::file_time_type before, const Keep& keep) {
    for (auto& left : leftovers(uploads_of(user)))
        if (left.written < before && !(keep && keep(user, left.name)))
            unlink_unless_locked(left.path);
}

void BlobStore::trim_user(std::uint64_t user, std::size_t at_most, std::uint64_t at_most_bytes,
                          const Keep& keep) {
    auto found = leftovers(uploads_of(user));
    std::erase_if(found, [&](const Leftover& l) { return keep && keep(user, l.name); });
    std::uint64_t bytes = 0;
    for (const auto& l : found) bytes += l.bytes;
    std::sort(found.begin(), found.end(),
              [](const Leftover& a, const Leftover& b) { return a.written < b.written; });
    for (std::size_t i = 0;
         i < found.size() && (found.size() - i > at_most || bytes > at_most_bytes); ++i) {
        unlink_unless_locked(found[i].path);
        bytes -= found[i].bytes;
    }
}

void BlobStore::remove_user(std::uint64_t user) {
    std::error_code ec;
    fs::remove_all(uploads_of(user), ec);
}

}  // namespace hawser::cloud::detail
