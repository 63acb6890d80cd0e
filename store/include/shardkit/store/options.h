// StoreOptions: everything an EntityStore backend is opened with. Plain data; the defaults are the
// production choices explained in docs/store.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include <shardkit/message/clock.h>

namespace shardkit::store {

class IdGenerator;
class Scheduler;

// When a write counts as durable.
enum class Durability {
  kSync,   // fsync before every write is acknowledged; survives power loss, slowest
  kGroup,  // acknowledged once in the OS page cache, fsynced in batches every few ms: a process
           // crash loses nothing, a power loss loses at most the last few ms (the default)
  kNone,   // never fsynced by us; a process crash loses nothing, a power loss may lose much
};

struct RocksDbTuning {
  int bloom_bits_per_key = 10;                   // ~1% false positives on point lookups (Load)
  size_t block_cache_bytes = size_t{256} << 20;  // shared LRU cache of uncompressed blocks
  int group_sync_interval_ms = 5;  // kGroup: a write's WAL is fsynced at most this long after it
  int max_background_jobs = 2;     // flushes + compactions; this box has 2 cores
  // The WAL's size cap (RocksDB's max_total_wal_size): past it RocksDB flushes the column
  // families holding the oldest WAL file, so the rarely written ones ("meta", "expiry") cannot
  // pin every WAL file. It also bounds the memtables' memory. Smaller caps flush sooner into
  // smaller files, which costs reads right after a bulk load (docs/store.md, "Feed retention").
  uint64_t max_wal_bytes = uint64_t{256} << 20;
};

struct SqliteTuning {
  int reader_connections = 4;  // read-only connections; reads never wait for the writer (WAL)
  int busy_timeout_ms = 5000;  // how long a connection waits on a lock before failing
  int cache_kib_per_connection = 16 * 1024;  // page cache per connection
};

// How long the change feed keeps its records (docs/store.md, "Feed retention"). Each round of
// the scheduler trims the records older than `retention_ms` and, while the feed holds more than
// `max_bytes`, the oldest ones, but never records a registered consumer still needs while it is
// within `max_consumer_lag_ms` of the head; a consumer further behind that holds back a trim is
// dropped (it reads not_found next and resynchronises).
struct FeedRetention {
  int64_t retention_ms = 24 * 60 * 60 * 1000;         // 0: no age limit
  uint64_t max_bytes = uint64_t{1} << 30;             // 0: no size limit
  int64_t max_consumer_lag_ms = 24 * 60 * 60 * 1000;  // 0: consumers are never dropped
  // How often the scheduler trims; 0: never (ChangeFeed::TrimRetained() can still be called,
  // which is what deterministic tests do).
  int interval_ms = 1000;
};

struct StoreOptions {
  // Directory of the store (created if missing). Ignored by the memory backend.
  std::string path;
  // The store's name in its errors (a node's service name); empty: its path.
  std::string name;
  Durability durability = Durability::kGroup;
  // Largest stored entity (compact JSON, "id" and "version" included). Larger saves are invalid.
  size_t max_value_bytes = size_t{1} << 20;
  // The source of "now" for TTLs; must outlive the store. nullptr: SystemClock::Default().
  const Clock* clock = nullptr;
  // Generates ids for saves without one; must outlive the store. nullptr: the store owns a
  // generator with node id 0 (fine for one store per node, see id_generator.h).
  IdGenerator* id_generator = nullptr;
  // kind -> top-level field whose value is the shard key (e.g. {"entry","user"}); kinds not
  // listed are sharded by id. String values hash their bytes, other scalars their compact JSON.
  std::map<std::string, std::string> shard_key_fields;
  // How often the scheduler purges expired entities; 0 disables it (PurgeExpired() can still be
  // called directly, which is what deterministic tests do).
  int purge_interval_ms = 1000;
  // Runs the store's timed work (TTL purge, RocksDB WAL syncs); must outlive the store.
  // nullptr: Scheduler::Shared(), one thread for every store of the process.
  Scheduler* scheduler = nullptr;
  // How long a write's idempotency receipt is kept (entity_store.h): a copy of the write arriving
  // later than this is applied again. It must cover the longest time a sender may resend (the
  // requests' deadlines, a client's retry horizon). 0: keys are ignored and nothing is recorded.
  int64_t idempotency_ttl_ms = 10 * 60 * 1000;
  FeedRetention feed_retention;
  RocksDbTuning rocksdb;
  SqliteTuning sqlite;
};

}  // namespace shardkit::store
