#include "rocksdb_open.h"

#include <fmt/format.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include <filesystem>

namespace shardkit::cqrs::internal {

Status EngineError(std::string_view owner, const rocksdb::Status& s, std::string_view what) {
  return Status::Internal(fmt::format("{}: {}: {}", owner, what, s.ToString()));
}

Result<std::unique_ptr<rocksdb::DB>> OpenDatabase(std::string_view owner, const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec)
    return Status::Internal(fmt::format("{}: cannot create '{}': {}", owner, path, ec.message()));
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.max_background_jobs = 2;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  ro.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(ro, path, &raw);
  if (!s.ok()) return EngineError(owner, s, fmt::format("open '{}'", path));
  return std::unique_ptr<rocksdb::DB>(raw);
}

}  // namespace shardkit::cqrs::internal
