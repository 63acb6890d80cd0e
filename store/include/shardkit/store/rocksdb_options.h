// The RocksDB options a RocksDB store opens its database with, for a tool that must open the same
// engine the same way (the raw-engine side of `shardkit bench store`, which measures the store
// against RocksDB itself). Like the rest of the store's headers it includes no RocksDB header: the
// caller includes <rocksdb/db.h>.
#pragma once

#include <vector>

#include "shardkit/store/options.h"

namespace rocksdb {
struct DBOptions;
struct ColumnFamilyDescriptor;
}  // namespace rocksdb

namespace shardkit::store {

// Fills `db` with the store's database options (background jobs, WAL cap, log files; not
// create_if_missing, the logger or the listeners, which belong to the store) and `families`
// with its column families, in their order: entities (the default family), "changes",
// "expiry", "meta".
void RocksDbOpenOptions(const StoreOptions& options, rocksdb::DBOptions& db,
                        std::vector<rocksdb::ColumnFamilyDescriptor>& families);

}  // namespace shardkit::store
