// The raw engine side of `shardkit bench store`: RocksDB or SQLite through its own API, opened on
// a copy of the store's own files taken after the load, with the store's options and durability,
// so both sides read the same data in the same state (docs/performance.md, "Fair baselines").
#pragma once

#include <memory>
#include <string>

#include "shardkit/store/options.h"

namespace shardkit::bench {

class RawEngine {
 public:
  virtual ~RawEngine() = default;
  // The stored row under the store's own key (kind \0 ksid id) into `row`; false if absent.
  virtual bool Get(const std::string& key, std::string& row) = 0;
  // What the store writes for one save, in one atomic write: the entity's row under `key` and
  // one change record (the row and record bytes of an entity of the same size as the store's),
  // with the store's sync policy.
  virtual bool Write(const std::string& key) = 0;
};

// Opens the raw side on `path`, a copy of a closed store opened with `options`
// (options.path names the original). `backend`: "rocksdb" or "sqlite". Throws on failure.
std::unique_ptr<RawEngine> OpenRawEngine(const std::string& backend, const std::string& path,
                                         const store::StoreOptions& options);

}  // namespace shardkit::bench
