// ZDB's store (store_impl.hpp): making tables, naming them with one meta write, and dropping
// and compacting them.
#include "zdb/store_impl.hpp"

namespace hawser::zdb {

Result<void> StoreImpl::write_meta(rocksdb::WriteBatch& batch) {
    rocksdb::WriteOptions w;
    w.sync = true;  // layout changes survive a power loss whatever the databases' durability
    auto s = db_->Write(w, &batch);
    if (!s.ok()) return storage_error(s);
    return {};
}

void StoreImpl::put_table_meta(rocksdb::WriteBatch& batch, std::uint64_t table,
                               Durability durability, const TableState& state) const {
    auto prefix = table_meta_prefix(table);
    batch.Put(meta_, prefix + "durability", encode_u64(static_cast<std::uint64_t>(durability)));
    batch.Put(meta_, prefix + "next_id", encode_u64(state.next_id));
    batch.Put(meta_, prefix + "count", encode_u64(state.count));
    for (const auto& [path, n] : state.indexes)
        batch.Put(meta_, prefix + "index/" + path, encode_u64(n));
}

Result<std::uint64_t> StoreImpl::allocate_table() {
    auto number = next_table_++;
    rocksdb::WriteBatch batch;
    batch.Put(meta_, "next_table", encode_u64(next_table_));
    if (auto r = write_meta(batch); !r) return r.error();
    return number;
}

Result<TableFamilies> StoreImpl::create_families(std::uint64_t table) {
    rocksdb::ColumnFamilyHandle* created[3] = {};
    for (int which = 0; which < 3; ++which) {
        auto s = db_->CreateColumnFamily(family_options(which), family_name(table, which),
                                         &created[which]);
        if (!s.ok()) {
            for (int i = 0; i < which; ++i) {
                db_->DropColumnFamily(created[i]);
                db_->DestroyColumnFamilyHandle(created[i]);
            }
            return storage_error(s);
        }
    }
    for (auto* h : created) handles_->add(h);
    TableFamilies f{created[0], created[1], created[2]};
    families_[table] = f;
    return f;
}

void StoreImpl::drop_families(const TableFamilies& families) {
    // The handles stay valid (RocksDB keeps dropped families readable until their handles are
    // destroyed), so a query still running on the table finishes cleanly.
    for (auto* h : {families.docs, families.blobs, families.index})
        if (h) db_->DropColumnFamily(h);
}

void StoreImpl::delete_table_meta(rocksdb::WriteBatch& batch, std::uint64_t table) const {
    auto prefix = table_meta_prefix(table);
    batch.DeleteRange(meta_, prefix, prefix_end(prefix));
}

Result<void> StoreImpl::unname(Table& table, rocksdb::WriteBatch& batch) {
    // No write may land between the meta write and the families' drop: one would write the
    // counters back under keys nothing deletes, or fail with a column family gone.
    table.mark_dropped();
    delete_table_meta(batch, table.number());
    if (auto r = write_meta(batch); !r) {
        table.mark_dropped(false);
        return r;
    }
    // Its handles go with the last query still reading it.
    drop_families(table.families());
    families_.erase(table.number());
    return {};
}

Result<StoreImpl::NewTable> StoreImpl::new_table(const std::string& name) {
    if (databases_.count(name) || reserved_.count(name))
        return Error{Errc::invalid_argument, "database '" + name + "' exists"};
    auto number = allocate_table();
    if (!number) return number.error();
    auto families = create_families(*number);
    if (!families) return families.error();
    return NewTable{*number, *families};
}

void StoreImpl::discard(const NewTable& table) {
    drop_families(table.families);
    handles_->release(table.families);  // never published: nothing else reads it
    families_.erase(table.number);
}

Result<std::shared_ptr<DatabaseImpl>> StoreImpl::publish(const std::string& name,
                                                         const NewTable& table,
                                                         Durability durability,
                                                         const TableState& state) {
    rocksdb::WriteBatch batch;
    put_table_meta(batch, table.number, durability, state);
    batch.Put(meta_, "name/" + name, encode_u64(table.number));
    if (auto r = write_meta(batch); !r) {
        discard(table);
        return r.error();
    }
    auto d = std::make_shared<DatabaseImpl>(
        name, std::make_shared<Table>(*db_, handles_, meta_, table.number, table.families,
                                      durability, state));
    databases_.emplace(name, d);
    return d;
}

Result<std::shared_ptr<Database>> StoreImpl::create(const std::string& name,
                                                    DatabaseOptions options) {
    if (!Store::valid_name(name)) return bad_name();
    if (options.durability != Durability::sync && options.durability != Durability::normal &&
        options.durability != Durability::fast)
        return Error{Errc::invalid_argument, "durability is sync, normal or fast"};
    std::unique_lock lock(mu_);
    auto table = new_table(name);
    if (!table) return table.error();
    auto d = publish(name, *table, options.durability, TableState{});
    if (!d) return d.error();
    return std::shared_ptr<Database>(*d);
}

Result<std::shared_ptr<DatabaseImpl>> StoreImpl::find(std::string_view name) const {
    auto it = databases_.find(name);
    if (it == databases_.end()) return no_database(name);
    return it->second;
}

Result<std::shared_ptr<Database>> StoreImpl::database(std::string_view name) const {
    std::shared_lock lock(mu_);
    auto d = find(name);
    if (!d) return d.error();
    return std::shared_ptr<Database>(*d);
}

std::vector<std::string> StoreImpl::list() const {
    std::shared_lock lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, d] : databases_) out.push_back(n);
    return out;
}

Result<void> StoreImpl::drop(std::string_view name) {
    std::unique_lock lock(mu_);
    auto d = find(name);
    if (!d) return d.error();
    auto table = (*d)->table();
    if (!table) return table.error();
    rocksdb::WriteBatch batch;
    batch.Delete(meta_, "name/" + std::string(name));
    if (auto r = unname(**table, batch); !r) return r;
    (*d)->unbind();
    databases_.erase(databases_.find(name));
    return {};
}

Result<void> StoreImpl::compact(std::string_view name) {
    auto d = database(name);
    if (!d) return d.error();
    auto table = static_cast<DatabaseImpl&>(**d).table();
    if (!table) return table.error();
    const auto& f = (*table)->families();
    for (auto* h : {f.docs, f.blobs, f.index}) {
        auto s = db_->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr);
        if (!s.ok()) return storage_error(s);
    }
    return {};
}

}  // namespace hawser::zdb
