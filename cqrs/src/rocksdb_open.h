// Private: how the command log and the read models open their RocksDB databases (the same options
// for both), and their engine errors.
#pragma once

#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <string_view>

#include <shardkit/message/status.h>

namespace shardkit::cqrs::internal {

// `owner` names the database in errors ("command log", "read model").
Status EngineError(std::string_view owner, const rocksdb::Status& s, std::string_view what);

// Creates `path` if needed and opens the database there.
Result<std::unique_ptr<rocksdb::DB>> OpenDatabase(std::string_view owner, const std::string& path);

}  // namespace shardkit::cqrs::internal
