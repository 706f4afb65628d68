// ZDB's store (store_impl.hpp): opening it (reading the layout, removing tables no name points
// at, repairing after a crash) and closing it.
#include <algorithm>
#include <charconv>
#include <filesystem>

#include "zdb/store_impl.hpp"

namespace hawser::zdb {

namespace {

const char* const family_suffixes[] = {"", ".blobs", ".index"};

std::optional<std::uint64_t> parse_number(std::string_view digits) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
        return std::nullopt;
    return v;
}

}  // namespace

std::string family_name(std::uint64_t table, int which) {
    return "t" + std::to_string(table) + family_suffixes[which];
}

std::optional<std::uint64_t> family_table(std::string_view name) {
    if (!name.starts_with('t')) return std::nullopt;
    auto dot = name.find('.');
    auto suffix = dot == std::string_view::npos ? std::string_view() : name.substr(dot);
    if (!suffix.empty() && suffix != ".blobs" && suffix != ".index") return std::nullopt;
    return parse_number(name.substr(1, dot == std::string_view::npos ? dot : dot - 1));
}

bool Store::valid_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.rfind("__", 0) == 0) return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
            return false;
    return true;
}

Error bad_name() {
    return Error{Errc::invalid_argument,
                 "database names are 1-64 of A-Z a-z 0-9 _ . -, not starting with __"};
}

Error no_database(std::string_view name) {
    return Error{Errc::not_found, "no database '" + std::string(name) + "'"};
}

Result<void> StoreImpl::open(const StoreOptions& options) {
    if (options.path.empty()) return Error{Errc::invalid_argument, "store path is empty"};
    {
        std::error_code ec;
        const bool store = std::filesystem::exists(options.path + "/CURRENT", ec);
        if (!store && !options.create_if_missing)
            return Error{Errc::not_found,
                         "no store in " + options.path + (ec ? " (" + ec.message() + ")" : "")};
        // Only an empty or missing directory becomes a new store: anything else is refused,
        // not written into.
        if (!store && !ec && std::filesystem::exists(options.path, ec) &&
            !std::filesystem::is_empty(options.path, ec))
            return Error{Errc::invalid_argument,
                         options.path + " holds files but no store: give an empty directory"};
        if (ec && ec != std::errc::no_such_file_or_directory)
            return Error{Errc::storage_error, options.path + ": " + ec.message()};
    }
    cache_ = rocksdb::NewLRUCache(options.block_cache_bytes);
    statistics_ = rocksdb::CreateDBStatistics();
    write_buffer_bytes_ = options.write_buffer_bytes;
    rocksdb::DBOptions dbo;
    dbo.create_if_missing = true;
    dbo.create_missing_column_families = true;
    dbo.max_open_files = options.max_open_files;
    dbo.max_background_jobs = options.background_jobs;
    dbo.statistics = statistics_;
    std::vector<std::string> names;
    if (!rocksdb::DB::ListColumnFamilies(dbo, options.path, &names).ok())
        names = {rocksdb::kDefaultColumnFamilyName};  // a new store
    if (std::find(names.begin(), names.end(), meta_family) == names.end())
        names.push_back(meta_family);
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) {
        bool known = n == meta_family || n == rocksdb::kDefaultColumnFamilyName || family_table(n);
        if (!known)
            return Error{Errc::storage_error, "'" + options.path + "' holds column family '" + n +
                                                  "', which is not ZDB's layout"};
        bool blobs = n.size() > 6 && n.compare(n.size() - 6, 6, ".blobs") == 0;
        descriptors.emplace_back(n, family_options(blobs ? 1 : 0));
    }
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> opened;
    auto s = rocksdb::DB::Open(dbo, options.path, descriptors, &opened, &raw);
    if (!s.ok()) return storage_error(s);
    db_.reset(raw);
    handles_ = std::make_shared<FamilyHandles>(*db_);
    for (auto* h : opened) handles_->add(h);
    for (auto* h : opened) {
        if (h->GetName() == meta_family) meta_ = h;
        auto table = family_table(h->GetName());
        if (!table) continue;
        auto& f = families_[*table];
        auto& slot = h->GetName().ends_with(".blobs")   ? f.blobs
                     : h->GetName().ends_with(".index") ? f.index
                                                        : f.docs;
        slot = h;
        next_table_ = std::max(next_table_, *table + 1);
    }

    // Read the meta family: names, then each named table's state.
    std::map<std::string, std::uint64_t> names_to_tables;
    std::map<std::uint64_t, std::map<std::string, std::uint64_t>> table_meta;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        auto key = it->key().ToString();
        auto value = decode_u64(std::string_view(it->value().data(), it->value().size()));
        if (key.rfind("name/", 0) == 0) {
            names_to_tables[key.substr(5)] = value;
        } else if (key.rfind("table/", 0) == 0) {
            auto slash = key.find('/', 6);
            auto table = parse_number(std::string_view(key).substr(6, slash - 6));
            if (slash == std::string::npos || !table)
                return Error{Errc::storage_error, "malformed ZDB meta entry '" + key + "'"};
            table_meta[*table][key.substr(slash + 1)] = value;
        } else if (key == "next_table") {
            next_table_ = std::max(next_table_, value);
        }
    }
    if (!it->status().ok()) return storage_error(it->status());
    it.reset();
    std::set<std::uint64_t> named;
    for (const auto& [name, number] : names_to_tables) {
        auto f = families_.find(number);
        if (f == families_.end() || !f->second.docs || !f->second.blobs || !f->second.index)
            return Error{Errc::storage_error, "database '" + name + "' (table " +
                                                  std::to_string(number) +
                                                  ") is missing column families"};
        auto& meta = table_meta[number];
        TableState state;
        state.next_id = meta.count("next_id") ? meta["next_id"] : 1;
        state.count = meta["count"];
        for (const auto& [key, v] : meta)
            if (key.rfind("index/", 0) == 0)
                state.indexes.emplace(key.substr(6), static_cast<std::uint16_t>(v));
        auto durability_code = meta.count("durability") ? meta["durability"] : 1;
        if (durability_code > std::uint64_t(Durability::fast))
            return Error{Errc::storage_error, "database '" + name + "' has an unknown durability"};
        auto durability = Durability(durability_code);
        auto table = std::make_shared<Table>(*db_, handles_, meta_, number, f->second, durability,
                                             std::move(state));
        databases_.emplace(name, std::make_shared<DatabaseImpl>(name, std::move(table)));
        named.insert(number);
    }
    if (auto r = collect_garbage(named); !r) return r;
    if (auto r = recover_after_crash(); !r) return r;
    opened_ = true;
    return {};
}

Result<void> StoreImpl::recover_after_crash() {
    std::string mark;
    auto s = db_->Get(rocksdb::ReadOptions(), meta_, "open", &mark);
    if (!s.ok() && !s.IsNotFound()) return storage_error(s);
    if (s.ok()) {
        for (const auto& [name, d] : databases_) {
            auto table = d->table();
            if (!table || (*table)->durability() != Durability::fast) continue;
            if (auto r = (*table)->repair(); !r)
                return Error{r.error().code,
                             "repairing '" + name + "' after a crash: " + r.error().message};
        }
    }
    rocksdb::WriteBatch batch;
    batch.Put(meta_, "open", encode_u64(1));
    return write_meta(batch);
}

void StoreImpl::close_cleanly() {
    // `fast` tables' memtables are their only copy: flush them, then clear the mark.
    std::vector<rocksdb::ColumnFamilyHandle*> unlogged;
    for (const auto& [name, d] : databases_) {
        auto table = d->table();
        if (!table || (*table)->durability() != Durability::fast) continue;
        const auto& f = (*table)->families();
        unlogged.insert(unlogged.end(), {f.docs, f.blobs, f.index});
    }
    // Their counters are in __meta, written without the log too.
    if (!unlogged.empty()) unlogged.push_back(meta_);
    if (!unlogged.empty() && !db_->Flush(rocksdb::FlushOptions(), unlogged).ok()) return;
    rocksdb::WriteBatch batch;
    batch.Delete(meta_, "open");
    (void)write_meta(batch);  // if this fails, the next open repairs what needs no repair
}

Result<void> StoreImpl::collect_garbage(const std::set<std::uint64_t>& named) {
    for (auto it = families_.begin(); it != families_.end();) {
        if (named.count(it->first)) {
            ++it;
            continue;
        }
        rocksdb::WriteBatch batch;
        delete_table_meta(batch, it->first);
        if (auto r = write_meta(batch); !r) return r;
        drop_families(it->second);
        handles_->release(it->second);
        it = families_.erase(it);
    }
    return {};
}

StoreStats StoreImpl::stats() const {
    StoreStats s;
    s.cache_capacity_bytes = cache_->GetCapacity();
    s.cache_usage_bytes = cache_->GetUsage();
    s.cache_hits = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
    s.cache_misses = statistics_->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
    return s;
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
    auto store = std::make_unique<StoreImpl>();
    if (auto r = store->open(options); !r) return r.error();
    return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hawser::zdb
