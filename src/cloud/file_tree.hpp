// FileTree: every user's files and directories, one ZDB record per entry in "<prefix>.files":
// {user, path, kind, size, hash, modified_ms} plus the lookup keys "key" (user/path), "dir"
// (user/parent) and the indexes on them, on `user` and on `hash` (which entries still need a
// blob). Paths are normalised (hawser/relative_path.hpp) before they get here.
// Blocking storage calls: use from the worker pool. Thread safety: any thread; changes that
// must not interleave (a check, then a write) are serialized by the caller (FileService).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cloud/blob_store.hpp"
#include "hawser/dataframe.hpp"
#include "hawser/error.hpp"
#include "hawser/zdb/store.hpp"

namespace hawser::cloud::detail {

struct FileEntry {
    std::uint64_t id = 0;  // the record's
    std::string path;
    bool directory = false;
    std::uint64_t size = 0;
    ContentHash hash{};  // files only
    std::int64_t modified_ms = 0;

    Map to_map() const;  // what the commands reply
};

struct FileUsage {
    std::uint64_t bytes = 0, entries = 0;
};

class FileTree {
  public:
    static Result<std::unique_ptr<FileTree>> open(zdb::Store& store, const std::string& name);

    Result<std::optional<FileEntry>> find(std::uint64_t user, const std::string& path) const;
    // The entries directly in `dir` ("" for the top), by name.
    Result<std::vector<FileEntry>> list(std::uint64_t user, const std::string& dir) const;
    // `path` and everything under it; every entry of the user for "".
    Result<std::vector<FileEntry>> subtree(std::uint64_t user, const std::string& path) const;
    Result<FileUsage> usage(std::uint64_t user) const;
    // Whether any entry's content is `hash`.
    Result<bool> referenced(const ContentHash& hash) const;

    // The directories `path` needs above it (and itself, with `itself`) that do not exist yet;
    // invalid_argument when one of them is a file.
    Result<std::vector<std::string>> missing_dirs(std::uint64_t user, const std::string& path,
                                                  bool itself) const;
    Result<void> add_dirs(std::uint64_t user, const std::vector<std::string>& paths,
                          std::int64_t now_ms);
    // A new file entry, or new content for an existing one.
    Result<void> put_file(std::uint64_t user, const std::string& path, std::uint64_t size,
                          const ContentHash& hash, std::int64_t now_ms,
                          const std::optional<FileEntry>& existing);
    Result<void> move(std::uint64_t user, const FileEntry& entry, const std::string& to);
    Result<void> remove(const FileEntry& entry);

  private:
    explicit FileTree(std::shared_ptr<zdb::Database> db) : db_(std::move(db)) {}
    Result<std::vector<FileEntry>> where(const std::string& field, Value value) const;

    std::shared_ptr<zdb::Database> db_;
};

// "a/b/c" -> "a/b"; "c" -> "".
std::string parent_of(const std::string& path);

}  // namespace hawser::cloud::detail
