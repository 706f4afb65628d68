// Key files (see key_file.hpp): written atomically (temporary file, fsync, rename), opened with
// O_NOFOLLOW and checked for owner and mode. Any thread; no shared state.
#include "rpc/key_file.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <spdlog/spdlog.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

namespace hawser::detail {

namespace {

Error io_error(const std::string& what, const std::string& path, int err = errno) {
    return Error{Errc::invalid_argument, what + " " + path + ": " + std::strerror(err)};
}

Error refused(const std::string& why) {
    return Error{Errc::invalid_argument, why};
}

// Creates the missing directories of `dir`, each with mode 0700: the key's directory is private.
Result<void> make_private_dirs(const std::filesystem::path& dir) {
    std::filesystem::path at;
    for (const auto& part : dir) {
        at /= part;
        struct stat st {};
        if (::stat(at.c_str(), &st) == 0) continue;
        if (errno != ENOENT) return io_error("cannot use", at.string());
        if (::mkdir(at.c_str(), 0700) != 0 && errno != EEXIST)
            return io_error("cannot create", at.string());
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return io_error("cannot use", dir.string());
    if (!S_ISDIR(st.st_mode)) return refused(dir.string() + " is not a directory");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        spdlog::warn(
            "hawser: {} is writable by others, who could replace the key in it; "
            "chmod 700 it",
            dir.string());
    return {};
}

// The key in `path`; nullopt if the file does not exist.
Result<std::optional<noise::Key>> read_key(const std::string& path) {
    // O_NOFOLLOW: a link planted under the name could point at a key the attacker knows.
    // O_NONBLOCK: a FIFO planted there must not hang start-up before the regular-file check.
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::optional<noise::Key>{};
        if (errno == ELOOP)
            return refused(path +
                           " is a symbolic link; refusing to follow it (give the real "
                           "file's path, or replace the link with the file)");
        return io_error("cannot read", path);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return io_error("cannot read", path, err);
    }
    std::string text;
    char buf[128];
    ssize_t n = 0;
    while (text.size() < 256 && (n = ::read(fd, buf, sizeof buf)) > 0)
        text.append(buf, static_cast<std::size_t>(n));
    int err = errno;
    ::close(fd);
    if (!S_ISREG(st.st_mode)) return refused(path + " is not a regular file");
    if (st.st_uid != ::geteuid())
        return refused(path + " belongs to uid " + std::to_string(st.st_uid) +
                       ", not to this user (uid " + std::to_string(::geteuid()) +
                       "); refusing a key another user controls");
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return refused(path + " is readable by others; chmod 600 it");
    if (n < 0) return io_error("cannot read", path, err);
    if (text.empty())
        return refused(path +
                       " is empty: it does not hold a key (64 hex digits). Restore it from a "
                       "backup, or delete it to generate a new key (peers pinned to the old key "
                       "will refuse the new one)");
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    auto key = noise::key_from_hex(text);
    if (!key) return refused(path + " does not hold a key (64 hex digits)");
    return std::optional<noise::Key>(*key);
}

void sync_directory(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0)
        spdlog::warn("hawser: cannot sync directory {}: {}", dir.string(), std::strerror(errno));
    if (fd >= 0) ::close(fd);
}

enum class Placed { yes, exists };

// Writes `text` to a new temporary file beside `path`, syncs it, and gives it the name `path`
// unless that exists. The temporary name is random, so a leftover from a crash is never in the
// way (and never read).
Result<Placed> place_new_file(const std::string& path, const std::string& text) {
    std::string temp = path + ".tmp-XXXXXX";
    int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // O_CREAT | O_EXCL, mode 0600
    if (fd < 0) return io_error("cannot create a temporary file beside", path);
    bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                   ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!written) {
        ::unlink(temp.c_str());
        return io_error("cannot write", temp, err);
    }
    // link() fails with EEXIST instead of replacing: the first creator wins.
    int rc = ::link(temp.c_str(), path.c_str());
    err = errno;
    bool temp_gone = false;
    if (rc != 0 && (err == EPERM || err == EOPNOTSUPP || err == ENOSYS)) {
        // A file system without hard links: a rename that refuses to replace does the same.
        rc = ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
        err = errno;
        temp_gone = rc == 0;
    }
    if (!temp_gone) ::unlink(temp.c_str());
    if (rc != 0) {
        if (err == EEXIST) return Placed::exists;
        return io_error("cannot create", path, err);
    }
    return Placed::yes;
}

}  // namespace

Result<noise::Key> load_or_create_secret_file(const std::string& path) {
    auto dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    if (auto r = make_private_dirs(dir); !r) return r.error();
    // Another process may create the file between our read and our link; then we read its key.
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto existing = read_key(path);
        if (!existing) return existing.error();
        if (*existing) return **existing;
        if (sodium_init() < 0) return refused("libsodium cannot start: no randomness");
        noise::Key key;
        randombytes_buf(key.data(), key.size());  // a private key is any 32 bytes (X25519 clamps)
        auto placed = place_new_file(path, noise::to_hex(key) + "\n");
        if (!placed) return placed.error();
        if (*placed == Placed::yes) {
            sync_directory(dir);  // the name survives a crash too
            spdlog::info("hawser: generated a new key in {}", path);
            return key;
        }
    }
    return refused("cannot create " + path + ": it keeps appearing and disappearing");
}

Result<noise::KeyPair> load_or_create_key_file(const std::string& path) {
    auto key = load_or_create_secret_file(path);
    if (!key) return key.error();
    return noise::KeyPair::from_private(*key);
}

Result<noise::KeyPair> load_or_create_key(const std::string& data_dir) {
    return load_or_create_key_file(data_dir + "/server.key");
}

Result<std::optional<noise::KeyPair>> client_static_key(const ClientOptions& options) {
    const auto& hex = options.client_private_key;
    const auto& file = options.client_key_file;
    auto bad = [](std::string text) { return Error{Errc::invalid_argument, std::move(text)}; };
    if (hex.empty() && file.empty()) return std::optional<noise::KeyPair>();
    if (!hex.empty() && !file.empty())
        return bad("set client_private_key or client_key_file, not both");
    if (options.transport.insecure_plaintext)
        return bad("a client key needs encryption, but insecure_plaintext is set");
    if (!hex.empty()) {
        auto key = noise::key_from_hex(hex);
        if (!key) return bad("client_private_key must be 64 hex digits");
        return std::optional(noise::KeyPair::from_private(*key));
    }
    auto keys = load_or_create_key_file(file);
    if (!keys) return keys.error();
    return std::optional(*keys);
}

}  // namespace hawser::detail
