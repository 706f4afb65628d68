// A database handle: a name bound to the table that currently holds its records. Replace binds
// the name to another table; drop unbinds it, after which every call fails with not_found.
#pragma once

#include <memory>
#include <mutex>

#include "hawser/zdb/store.hpp"
#include "zdb/table.hpp"

namespace hawser::zdb {

class DatabaseImpl final : public Database {
  public:
    DatabaseImpl(std::string name, std::shared_ptr<Table> table)
        : name_(std::move(name)), table_(std::move(table)), durability_(table_->durability()) {}

    // The table now bound, or not_found once the database was dropped or replaced into another.
    Result<std::shared_ptr<Table>> table() const;
    void bind(std::shared_ptr<Table> table);
    void unbind();

    const std::string& name() const override { return name_; }
    Durability durability() const override;

    Result<RecordId> insert(const Map& document) override;
    Result<std::vector<RecordId>> insert_batch(const std::vector<Map>& documents) override;
    Result<RecordId> insert_unique(const Map& document, const std::string& field) override;
    Result<Map> get(RecordId id) const override;
    Result<void> replace(RecordId id, const Map& document) override;
    Result<void> patch(RecordId id, const Map& fields) override;
    Result<void> remove(RecordId id) override;
    Result<bool> exists(RecordId id) const override;
    std::uint64_t count() const override;
    Result<void> scan(const std::function<bool(RecordId, const Map&)>& visit,
                      ScanOptions options) const override;
    Result<void> put_attachment(RecordId id, std::string_view name,
                                std::span<const std::uint8_t> data) override;
    Result<Bytes> get_attachment(RecordId id, std::string_view name) const override;
    Result<void> remove_attachment(RecordId id, std::string_view name) override;
    Result<std::vector<std::string>> attachments(RecordId id) const override;
    Result<void> create_index(const std::string& field) override;
    Result<void> drop_index(std::string_view field) override;
    DatabaseStats stats() const override;

  private:
    // Runs `op` on the bound table; a not_found error names the database.
    template <class Op>
    auto with_table(Op&& op) const -> decltype(op(std::declval<Table&>()));

    const std::string name_;
    mutable std::mutex mu_;  // guards table_ and durability_
    std::shared_ptr<Table> table_;
    Durability durability_;
};

}  // namespace hawser::zdb
