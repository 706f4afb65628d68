// BlobStore: the cloud's file contents on disk, named by their BLAKE2b-256 (blobs/ab/abcd…), so
// identical files are stored once; and the upload area, a directory per user where
// receive_file keeps the parts of uploads under way or cut, to resume them.
// Which blobs are still referenced is the file tree's to say (FileTree); this only stores.
// Blocking file system calls: use from the worker pool. Thread safety: any thread; adopting
// and removing one hash at once is the caller's to prevent (FileService holds its tree lock).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>

#include "hawser/error.hpp"

namespace hawser::cloud::detail {

using ContentHash = std::array<std::uint8_t, 32>;

// Lower-case hex, and back (64 hex digits of either case).
std::string to_hex(const ContentHash& hash);
Result<ContentHash> hash_from_hex(std::string_view hex);

class BlobStore {
  public:
    // Creates root/blobs and root/uploads when missing, and locks root: one process at a time
    // (what it deletes, it deletes knowing no other process adopts meanwhile).
    static Result<BlobStore> open(const std::filesystem::path& root);
    BlobStore(BlobStore&& o) noexcept
        : root_(std::move(o.root_)), lock_fd_(std::exchange(o.lock_fd_, -1)) {}
    BlobStore& operator=(BlobStore&&) = delete;
    ~BlobStore();

    std::filesystem::path path_of(const ContentHash& hash) const;
    std::filesystem::path uploads_of(std::uint64_t user) const;

    // Syncs a stored upload to disk, checking it still has `size` bytes.
    Result<void> sync(const std::filesystem::path& file, std::uint64_t size);
    // Makes the stored, synced upload `file` the content of `hash`: renamed into place, or
    // deleted when that content is stored already.
    Result<void> adopt(const std::filesystem::path& file, const ContentHash& hash);
    // Deletes the contents `referenced` says nothing names (left by a crash between a
    // content's adoption and its entry). Only while no upload runs.
    void sweep_unreferenced(const std::function<Result<bool>(const ContentHash&)>& referenced);
    void remove(const ContentHash& hash);

    // Deletes what uploads left behind — parts, and stored uploads nobody adopted — last
    // written before `before`, under every user's directory or only `user`'s. Skips the files
    // a receiver holds (locked) and those `keep(user, file name)` asks for.
    using Keep = std::function<bool(std::uint64_t, const std::string&)>;
    void sweep(std::filesystem::file_time_type before, const Keep& keep);
    void sweep_user(std::uint64_t user, std::filesystem::file_time_type before, const Keep& keep);
    // Deletes `user`'s oldest leftovers until at most `at_most` remain, holding at most
    // `at_most_bytes`, with the same skips.
    void trim_user(std::uint64_t user, std::size_t at_most, std::uint64_t at_most_bytes,
                   const Keep& keep);
    // Everything under `user`'s directory, and the directory (an account deleted).
    void remove_user(std::uint64_t user);

  private:
    BlobStore(std::filesystem::path root, int lock_fd)
        : root_(std::move(root)), lock_fd_(lock_fd) {}
    std::filesystem::path root_;
    int lock_fd_ = -1;
};

}  // namespace hawser::cloud::detail
