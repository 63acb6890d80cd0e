// WalSync: the periodic fsync of Durability::kGroup for a RocksDB store, on file descriptors of
// its own. RocksDB's SyncWAL goes through its WAL writer, which aborts the process when asked to
// sync after an append failed (a full disk), so it could only run with writes held off for the
// whole fsync. Each write reaches the OS before Write returns (no manual WAL flush), so an
// fdatasync of the WAL files on other descriptors persists the same bytes, and it never touches
// RocksDB's writer: writes go on while it runs.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <rocksdb/db.h>

namespace shardkit::store::internal {

class WalSync {
 public:
  explicit WalSync(std::string wal_dir) : dir_(std::move(wal_dir)) {}

  // fdatasyncs the live WAL files from the newest one of the last call on (it may have grown
  // since, and newer ones appeared), then the directory when a new file appeared. errno of the
  // first failure (0: synced).
  int Sync(rocksdb::DB& db, std::string& detail);

 private:
  const std::string dir_;
  std::mutex mu_;             // a sync that outlasts the interval meets the next one here
  uint64_t synced_from_ = 0;  // guarded by mu_: the newest WAL file at the last sync (0: none)
};

}  // namespace shardkit::store::internal
