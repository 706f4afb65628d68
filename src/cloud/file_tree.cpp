#include "cloud/file_tree.hpp"

#include <algorithm>

#include "cloud/accounts.hpp"

namespace hawser::cloud::detail {

namespace {

std::string key_of(std::uint64_t user, const std::string& path) {
    return std::to_string(user) + "/" + path;
}

std::optional<FileEntry> entry_from_record(std::uint64_t id, const Map& record) {
    auto path = field<std::string>(record, "path");
    auto kind = field<std::string>(record, "kind");
    if (!path || !kind) return std::nullopt;
    FileEntry e;
    e.id = id;
    e.path = std::move(*path);
    e.directory = *kind == "dir";
    e.size = field<std::uint64_t>(record, "size").value_or(0);
    e.modified_ms = field<std::int64_t>(record, "modified_ms").value_or(0);
    if (!e.directory) {
        auto hash = hash_from_hex(field<std::string>(record, "hash").value_or(""));
        if (!hash) return std::nullopt;
        e.hash = *hash;
    }
    return e;
}

Map record_of(std::uint64_t user, const std::string& path, bool directory, std::uint64_t size,
              const ContentHash* hash, std::int64_t now_ms) {
    Map m{{"user", Value(user)},
          {"path", Value(path)},
          {"key", Value(key_of(user, path))},
          {"dir", Value(key_of(user, parent_of(path)))},
          {"kind", Value(std::string(directory ? "dir" : "file"))},
          {"size", Value(size)},
          {"modified_ms", Value(now_ms)}};
    if (hash) m.emplace("hash", Value(to_hex(*hash)));
    return m;
}

}  // namespace

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

Map FileEntry::to_map() const {
    auto slash = path.rfind('/');
    Map m{{"path", Value(path)},
          {"name", Value(slash == std::string::npos ? path : path.substr(slash + 1))},
          {"kind", Value(std::string(directory ? "dir" : "file"))},
          {"size", Value(size)},
          {"modified_ms", Value(modified_ms)}};
    if (!directory) m.emplace("hash", Value(to_hex(hash)));
    return m;
}

Result<std::unique_ptr<FileTree>> FileTree::open(zdb::Store& store, const std::string& name) {
    auto db = open_indexed(store, name, {"key", "dir", "user", "hash"});
    if (!db) return db.error();
    return std::unique_ptr<FileTree>(new FileTree(std::move(*db)));
}

Result<std::vector<FileEntry>> FileTree::where(const std::string& field, Value value) const {
    auto found = find_records(db_, field, std::move(value), 0);
    if (!found) return found.error();
    std::vector<FileEntry> out;
    out.reserve(found->size());
    for (auto& [id, record] : *found)
        if (auto e = entry_from_record(id, record)) out.push_back(std::move(*e));
    return out;
}

Result<std::optional<FileEntry>> FileTree::find(std::uint64_t user, const std::string& path) const {
    auto found = find_records(db_, "key", Value(key_of(user, path)), 1);
    if (!found) return found.error();
    if (found->empty()) return std::optional<FileEntry>{};
    return entry_from_record(found->front().first, found->front().second);
}

Result<std::vector<FileEntry>> FileTree::list(std::uint64_t user, const std::string& dir) const {
    auto entries = where("dir", Value(key_of(user, dir)));
    if (!entries) return entries.error();
    std::sort(entries->begin(), entries->end(),
              [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
    return entries;
}

Result<std::vector<FileEntry>> FileTree::subtree(std::uint64_t user,
                                                 const std::string& path) const {
    auto all = where("user", Value(user));
    if (!all || path.empty()) return all;
    std::erase_if(*all, [&](const FileEntry& e) {
        return e.path != path && !(e.path.size() > path.size() && e.path.starts_with(path) &&
                                   e.path[path.size()] == '/');
    });
    return all;
}

Result<FileUsage> FileTree::usage(std::uint64_t user) const {
    auto all = where("user", Value(user));
    if (!all) return all.error();
    FileUsage u;
    u.entries = all->size();
    for (auto& e : *all) u.bytes += e.size;
    return u;
}

Result<bool> FileTree::referenced(const ContentHash& hash) const {
    auto found = find_records(db_, "hash", Value(to_hex(hash)), 1);
    if (!found) return found.error();
    return !found->empty();
}

Result<std::vector<std::string>> FileTree::missing_dirs(std::uint64_t user, const std::string& path,
                                                        bool itself) const {
    std::vector<std::string> missing;
    auto dir = itself ? path : parent_of(path);
    while (!dir.empty()) {
        auto found = find(user, dir);
        if (!found) return found.error();
        if (*found) {
            if (!(*found)->directory)
                return Error{Errc::invalid_argument, "'" + dir + "' is a file, not a directory"};
            break;  // it exists, so its parents do
        }
        missing.push_back(dir);
        dir = parent_of(dir);
    }
    std::reverse(missing.begin(), missing.end());
    return missing;
}

Result<void> FileTree::add_dirs(std::uint64_t user, const std::vector<std::string>& paths,
                                std::int64_t now_ms) {
    if (paths.empty()) return {};
    std::vector<Map> records;
    for (auto& p : paths) records.push_back(record_of(user, p, true, 0, nullptr, now_ms));
    auto ids = db_->insert_batch(records);
    if (!ids) return ids.error();
    return {};
}

Result<void> FileTree::put_file(std::uint64_t user, const std::string& path, std::uint64_t size,
                                const ContentHash& hash, std::int64_t now_ms,
                                const std::optional<FileEntry>& existing) {
    auto record = record_of(user, path, false, size, &hash, now_ms);
    if (existing) return db_->replace(existing->id, record);
    auto id = db_->insert(record);
    if (!id) return id.error();
    return {};
}

Result<void> FileTree::move(std::uint64_t user, const FileEntry& entry, const std::string& to) {
    return db_->patch(entry.id, Map{{"path", Value(to)},
                                    {"key", Value(key_of(user, to))},
                                    {"dir", Value(key_of(user, parent_of(to)))}});
}

Result<void> FileTree::remove(const FileEntry& entry) {
    return db_->remove(entry.id);
}

}  // namespace hawser::cloud::detail
