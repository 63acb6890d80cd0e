// store: an entity store over rocksdb, sqlite or memory, served by store/'s message service.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs it with GCC 12

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <map>

#include "adapters.h"
#include "node_stats.h"
#include "shardkit/store/entity_store.h"
#include "shardkit/store/id_generator.h"
#include "shardkit/store/service.h"

namespace shardkit::services {
namespace {

// What a store service's settings say: the store's options and what the service itself uses.
struct StoreSettings {
  store::StoreOptions options;
  std::string backend;
  std::string shard;
  uint32_t node_id = 0;
  size_t threads = 2;
  std::map<std::string, std::string> shard_keys;
};

// The change feed's retention (docs/store.md, "Feed retention"); 0 turns a limit off.
Status ReadFeedRetention(const Settings& s, store::FeedRetention& retention) {
  const store::FeedRetention defaults;
  auto age = s.GetInt("feed_retention_ms", defaults.retention_ms);
  auto bytes = s.GetInt("feed_max_bytes", static_cast<int64_t>(defaults.max_bytes));
  auto lag = s.GetInt("max_consumer_lag_ms", defaults.max_consumer_lag_ms);
  auto interval = s.GetInt("feed_trim_interval_ms", defaults.interval_ms);
  for (const Status& st : {St(age), St(bytes), St(lag), St(interval)}) {
    if (!st.ok()) return st;
  }
  if (*age < 0) return s.Error("feed_retention_ms", "must be 0 (no age limit) or positive");
  if (*bytes < 0) return s.Error("feed_max_bytes", "must be 0 (no size limit) or positive");
  if (*lag < 0) return s.Error("max_consumer_lag_ms", "must be 0 (never drop) or positive");
  if (*interval < 0 || *interval > 3'600'000)
    return s.Error("feed_trim_interval_ms", "must be 0 (never) to 3600000");
  retention.retention_ms = *age;
  retention.max_bytes = static_cast<uint64_t>(*bytes);
  retention.max_consumer_lag_ms = *lag;
  retention.interval_ms = static_cast<int>(*interval);
  return Status::Ok();
}

// The RocksDB engine's sizes: its block cache and its WAL cap (both part of the node's memory).
Status ReadRocksDbTuning(const Settings& s, store::RocksDbTuning& tuning) {
  auto cache = s.GetInt("block_cache_bytes", static_cast<int64_t>(tuning.block_cache_bytes));
  auto wal = s.GetInt("wal_max_bytes", static_cast<int64_t>(tuning.max_wal_bytes));
  for (const Status& st : {St(cache), St(wal)}) {
    if (!st.ok()) return st;
  }
  if (*cache < (int64_t{1} << 20)) return s.Error("block_cache_bytes", "must be at least 1048576");
  if (*wal < (int64_t{1} << 20)) return s.Error("wal_max_bytes", "must be at least 1048576");
  tuning.block_cache_bytes = static_cast<size_t>(*cache);
  tuning.max_wal_bytes = static_cast<uint64_t>(*wal);
  return Status::Ok();
}

Result<StoreSettings> ReadStoreSettings(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st =
          s.CheckOnly({"backend", "path", "durability", "max_value_bytes", "node_id", "shard",
                       "map", "shard_keys", "threads", "purge_interval_ms", "idempotency_ttl_ms",
                       "feed_retention_ms", "feed_max_bytes", "max_consumer_lag_ms",
                       "feed_trim_interval_ms", "block_cache_bytes", "wal_max_bytes"});
      !st.ok()) {
    return st;
  }
  auto backend = s.GetString("backend", "rocksdb");
  auto path = s.GetString("path", "");
  auto durability = s.GetString("durability", "group");
  auto max_value = s.GetInt("max_value_bytes", int64_t{1} << 20);
  auto node_id = s.GetInt("node_id", 0);
  auto shard_name = s.GetString("shard", "");
  auto threads = s.GetInt("threads", 2);
  auto purge = s.GetInt("purge_interval_ms", 1000);
  auto receipts = s.GetInt("idempotency_ttl_ms", store::StoreOptions{}.idempotency_ttl_ms);
  auto keys = ShardKeys(s);
  for (const Status& st : {St(backend), St(path), St(durability), St(max_value), St(node_id),
                           St(shard_name), St(threads), St(purge), St(receipts), St(keys)}) {
    if (!st.ok()) return st;
  }
  store::StoreOptions options;
  options.path = *path;
  options.name = ctx.name;
  if (*durability == "sync") {
    options.durability = store::Durability::kSync;
  } else if (*durability == "group") {
    options.durability = store::Durability::kGroup;
  } else if (*durability == "none") {
    options.durability = store::Durability::kNone;
  } else {
    return s.Error("durability", "must be sync, group or none");
  }
  if (*max_value <= 0) return s.Error("max_value_bytes", "must be positive");
  if (*node_id < 0 || *node_id > store::IdGenerator::kMaxNodeId)
    return s.Error("node_id", "must be 0..1023");
  if (*threads < 1 || *threads > 64) return s.Error("threads", "must be 1..64");
  options.max_value_bytes = static_cast<size_t>(*max_value);
  options.purge_interval_ms = static_cast<int>(*purge);
  if (*receipts < 0) return s.Error("idempotency_ttl_ms", "must be 0 (keys off) or positive");
  options.idempotency_ttl_ms = *receipts;
  if (Status st = ReadFeedRetention(s, options.feed_retention); !st.ok()) return st;
  if (Status st = ReadRocksDbTuning(s, options.rocksdb); !st.ok()) return st;
  options.clock = &ctx.environment.clock_or_system();
  return StoreSettings{std::move(options),
                       *backend,
                       *shard_name,
                       static_cast<uint32_t>(*node_id),
                       static_cast<size_t>(*threads),
                       *keys};
}

// Opens the store of `backend`, creating its directory.
Result<std::unique_ptr<store::EntityStore>> OpenStore(const Settings& s, const std::string& backend,
                                                      const store::StoreOptions& options) {
  const std::string& path = options.path;
  Result<std::unique_ptr<store::EntityStore>> opened = Status::Invalid("backend");
  if (backend == "memory") {
    opened = store::NewMemoryStore(options);
  } else if (path.empty()) {
    return s.Error("path", fmt::format("is required for the {} backend", backend));
  } else if (std::error_code ec; !std::filesystem::create_directories(path, ec) && ec) {
    return s.Error("path", fmt::format("cannot create {}: {}", path, ec.message()));
  } else if (backend == "rocksdb") {
    opened = store::OpenRocksDbStore(options);
  } else if (backend == "sqlite") {
    opened = store::OpenSqliteStore(options);
  } else {
    return s.Error("backend", "must be rocksdb, sqlite or memory");
  }
  if (!opened.ok()) return s.Error("path", opened.status().message());
  return opened;
}

}  // namespace

// store: an entity store over rocksdb, sqlite or memory, optionally one shard behind a guard.
Result<ServiceInstance> MakeStore(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  auto read = ReadStoreSettings(ctx);
  if (!read.ok()) return read.status();
  StoreSettings& settings = *read;
  store::StoreOptions& options = settings.options;
  const std::string& shard_name = settings.shard;
  auto ids = std::make_shared<store::IdGenerator>(settings.node_id, options.clock);
  options.id_generator = ids.get();
  std::shared_ptr<shard::ShardMapHolder> map;
  if (!shard_name.empty()) {
    auto found = MapNamed(ctx);
    if (!found.ok()) return found.status();
    map = *found;
    options.shard_key_fields = map->Current()->shard_keys();
  } else {
    options.shard_key_fields = settings.shard_keys;
  }
  auto opened = OpenStore(s, settings.backend, options);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<store::EntityStore> entity_store = std::move(opened).value();
  // Disk work off the I/O threads: a small pool per store (so a slow fsync never stalls the network
  // threads), unless the node runs blocking work itself (the testing cluster: inline,
  // deterministic).
  std::shared_ptr<boost::asio::thread_pool> pool;
  store::StoreServiceOptions service_options;
  service_options.max_reply_bytes = ctx.max_reply_bytes;
  if (ctx.environment.run_blocking) {
    service_options.executor = ctx.environment.run_blocking;
  } else {
    pool = std::make_shared<boost::asio::thread_pool>(settings.threads);
    service_options.executor = [pool](std::function<void()> work) {
      boost::asio::post(*pool, std::move(work));
    };
  }
  std::shared_ptr<Handler> handler = store::MakeStoreService(entity_store, service_options);
  std::vector<std::string> patterns = {"store:*"};
  std::vector<std::shared_ptr<Handler>> overrides;
  std::string served_key;  // the directory entry of a shard, removed when the service stops
  if (!shard_name.empty()) {
    auto canonical = shard::CanonicalShardName(shard_name);
    if (!canonical.ok()) return s.Error("shard", canonical.status().message());
    auto gate = std::make_shared<shard::WriteGate>();
    // The guard decorates the store: the node installs it over the shard's routes.
    overrides.push_back(shard::MakeShardGuard({*canonical, map, RefreshFrom(ctx, map), gate}));
    // kind:* makes the shard route more specific (one more glob) than a router or cache on
    // store:*,kind:K, so forwarded messages reach the shard (docs/sharding.md); store:changes
    // names no kind, only the shard.
    patterns = {fmt::format("store:*,kind:*,shard:\"{}\"", *canonical),
                fmt::format("store:changes,shard:\"{}\"", *canonical),
                fmt::format("store:replicate,shard:\"{}\"", *canonical),
                fmt::format("store:replication,shard:\"{}\"", *canonical)};
    served_key = ShardKey(*canonical);
    ctx.environment.directory_or_process().Put(
        served_key, std::make_shared<ServedShard>(ServedShard{entity_store, gate}));
  }
  // The id generator and the clock must outlive the store: the directory entry goes at stop (unless
  // a newer instance of the shard replaced it), so the store dies with the stop callback's captures
  // and the node, not later with the process directory.
  // Its feed in sys:stats and /metrics while it runs (a newer instance of the service, started by
  // a reload before this one stops, replaces the entry and keeps it).
  const std::string feed_key = FeedKey(ctx.name);
  ctx.environment.directory_or_process().Put(feed_key, entity_store);
  auto stop = [pool, entity_store, ids, served_key, feed_key,
               directory = &ctx.environment.directory_or_process()]() mutable {
    if (pool) pool->join();
    if (directory->Find<store::EntityStore>(feed_key) == entity_store)
      directory->Put(feed_key, nullptr);
    if (served_key.empty()) return;
    auto served = directory->Find<ServedShard>(served_key);
    if (served && served->store == entity_store) directory->Put(served_key, nullptr);
  };
  ServiceInstance instance{handler, patterns, stop};
  instance.overrides = std::move(overrides);
  // A feed and the replication protocol: replication, not data access.
  instance.operations = {"store:changes", "store:replicate", "store:replication"};
  return instance;
}

}  // namespace shardkit::services
