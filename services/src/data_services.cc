// The data service types a node config can name: shard-map, store, shard-router, cache.
// docs/configuration.md lists every key.
#include <utility>  // before Asio (Boost 1.74 + GCC 12, DESIGN.md)

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>

#include "shardkit/cache/entity_cache.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/migrate/migration.h"
#include "shardkit/services/data_services.h"
#include "shardkit/services/registry.h"
#include "shardkit/shard/shard_router.h"
#include "shardkit/store/entity_store.h"
#include "shardkit/store/id_generator.h"
#include "shardkit/store/service.h"

namespace shardkit::services {
namespace {

template <typename T>
Status St(const Result<T>& r) {
  return r.ok() ? Status::Ok() : r.status();
}

// Shard maps by name, shared by the services of this process that name them.
class MapDirectory {
 public:
  static MapDirectory& Global() {
    static MapDirectory directory;
    return directory;
  }
  std::shared_ptr<shard::ShardMapHolder> Find(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = maps_.find(name);
    return it == maps_.end() ? nullptr : it->second;
  }
  void Put(const std::string& name, std::shared_ptr<shard::ShardMapHolder> holder) {
    std::lock_guard<std::mutex> lock(mu_);
    maps_[name] = std::move(holder);
  }
  std::vector<std::string> Names() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> names;
    for (const auto& [name, holder] : maps_) names.push_back(name);
    return names;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<shard::ShardMapHolder>> maps_;
};

class ShardDirectory {
 public:
  static ShardDirectory& Global() {
    static ShardDirectory directory;
    return directory;
  }
  ServedShard Find(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = shards_.find(name);
    return it == shards_.end() ? ServedShard{} : it->second;
  }
  void Put(const std::string& name, ServedShard shard) {
    std::lock_guard<std::mutex> lock(mu_);
    shards_[name] = std::move(shard);
  }

 private:
  std::mutex mu_;
  std::map<std::string, ServedShard> shards_;
};

Result<std::map<std::string, std::string>> ShardKeys(const Settings& settings) {
  std::map<std::string, std::string> keys;
  if (!settings.Has("shard_keys")) return keys;
  auto doc = ParseJson(settings.Json(), "settings");
  if (!doc.ok()) return doc.status();
  const auto& table = (*doc)["shard_keys"];
  if (!table.IsObject()) return settings.Error("shard_keys", "must be a table of kind = \"field\"");
  for (const auto& m : table.GetObject()) {
    if (!m.value.IsString())
      return settings.Error("shard_keys",
                            fmt::format("'{}' must name a field", m.name.GetString()));
    keys[m.name.GetString()] = m.value.GetString();
  }
  return keys;
}

Result<std::shared_ptr<shard::ShardMapHolder>> MapNamed(const ServiceContext& ctx) {
  auto name = ctx.settings.GetString("map", "main");
  if (!name.ok()) return name.status();
  auto holder = MapDirectory::Global().Find(*name);
  if (!holder) {
    return ctx.settings.Error(
        "map", fmt::format("no shard map '{}' in this node: add a [[service]] of type "
                           "shard-map named by `map` before this one",
                           *name));
  }
  return holder;
}

shard::MapRefresher RefreshFrom(std::shared_ptr<shard::ShardMapHolder> holder) {
  return [holder]() -> Result<shard::ShardMap> { return *holder->Current(); };
}

// shard-map: the node's authoritative map. Answers shardmap:get and shardmap:set
// (compare-and-swap).
Result<ServiceInstance> MakeShardMap(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"map", "ranges", "epoch", "shard_keys", "path"}); !st.ok())
    return st;
  auto path = s.GetString("path", "");
  if (!path.ok()) return path.status();
  auto name = s.GetString("map", "main");
  auto ranges = s.GetStringList("ranges", std::vector<std::string>{"-"});
  auto epoch = s.GetInt("epoch", 1);
  auto keys = ShardKeys(s);
  for (const Status& st : {St(name), St(ranges), St(epoch), St(keys)}) {
    if (!st.ok()) return st;
  }
  if (*epoch < 1) return s.Error("epoch", "must be at least 1");
  auto map = shard::ShardMap::Make(static_cast<uint64_t>(*epoch), *ranges, *keys);
  if (!map.ok()) return s.Error("ranges", map.status().message());
  auto holder = MapDirectory::Global().Find(*name);
  if (holder) {
    // Reload: keep the live map (a migration may have moved it past the config's epoch).
  } else {
    // A persisted map newer than the config's wins: migrations move maps past their config.
    if (!path->empty() && std::filesystem::exists(*path)) {
      std::ifstream in(*path);
      std::string text((std::istreambuf_iterator<char>(in)), {});
      auto doc = ParseJson(text, *path);
      if (!doc.ok() || !doc->IsObject() || !(*doc)["epoch"].IsUint64() ||
          !(*doc)["ranges"].IsArray()) {
        return s.Error("path", fmt::format("{} is not a saved shard map", *path));
      }
      std::vector<std::string> saved;
      for (const auto& r : (*doc)["ranges"].GetArray()) saved.emplace_back(r.GetString());
      auto restored = shard::ShardMap::Make((*doc)["epoch"].GetUint64(), saved, *keys);
      if (!restored.ok()) return s.Error("path", restored.status().message());
      if (restored->epoch() >= map->epoch()) map = std::move(restored);
    }
    holder = std::make_shared<shard::ShardMapHolder>(std::move(map).value());
    if (!path->empty()) {
      holder->OnChange([file = *path](const shard::ShardMap& next) -> Status {
        std::string json = fmt::format("{{\"epoch\":{},\"ranges\":[", next.epoch());
        for (size_t i = 0; i < next.shards().size(); ++i) {
          json += i ? "," : "";
          AppendJsonString(next.shards()[i].name, json);
        }
        json += "]}";
        std::string tmp = file + ".tmp";
        {
          std::ofstream out(tmp, std::ios::trunc);
          out << json;
          out.flush();
          if (!out) return Status::Internal(fmt::format("cannot write {}", tmp));
        }
        std::error_code ec;
        std::filesystem::rename(tmp, file, ec);
        if (ec) return Status::Internal(fmt::format("cannot rename {}: {}", tmp, ec.message()));
        return Status::Ok();
      });
    }
    MapDirectory::Global().Put(*name, holder);
  }
  auto handler = MakeSyncHandler([holder](Message m, const Context&) -> Result<Message> {
    auto current = holder->Current();
    auto describe = [](const shard::ShardMap& map) {
      std::string ranges = "[";
      for (size_t i = 0; i < map.shards().size(); ++i) {
        ranges += i ? "," : "";
        AppendJsonString(map.shards()[i].name, ranges);
      }
      Message out;
      out.SetUint("epoch", map.epoch());
      out.SetArrayJson("ranges", ranges + "]");
      return out;
    };
    auto op = m.GetString("shardmap").value_or("");
    if (op == "get") return describe(*current);
    if (op == "set") {
      auto expected = m.GetUint("expected_epoch");
      auto ranges_json = m.GetArrayJson("ranges");
      if (!expected)
        return Status::Invalid("expected_epoch: must be the epoch being replaced",
                               R"({"field":"expected_epoch"})");
      if (!ranges_json)
        return Status::Invalid("ranges: must be an array of ranges", R"({"field":"ranges"})");
      auto doc = ParseJson(*ranges_json, "ranges");
      if (!doc.ok()) return doc.status();
      std::vector<std::string> ranges;
      for (const auto& r : doc->GetArray()) {
        if (!r.IsString())
          return Status::Invalid("ranges: must be strings", R"({"field":"ranges"})");
        ranges.emplace_back(r.GetString());
      }
      auto next = shard::ShardMap::Make(*expected + 1, ranges, current->shard_keys());
      if (!next.ok()) return next.status();
      if (Status st = holder->CompareAndSwap(*expected, std::move(next).value()); !st.ok())
        return st;
      return describe(*holder->Current());
    }
    return Status::Invalid("shardmap: must be get or set", R"({"field":"shardmap"})");
  });
  return ServiceInstance{handler, {fmt::format("shardmap:*,map:\"{}\"", *name)}, nullptr};
}

// store: an entity store over rocksdb, sqlite or memory, optionally one shard behind a guard.
Result<ServiceInstance> MakeStore(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"backend", "path", "durability", "max_value_bytes", "node_id",
                               "shard", "map", "shard_keys", "threads", "purge_interval_ms"});
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
  auto keys = ShardKeys(s);
  for (const Status& st : {St(backend), St(path), St(durability), St(max_value), St(node_id),
                           St(shard_name), St(threads), St(purge), St(keys)}) {
    if (!st.ok()) return st;
  }
  store::StoreOptions options;
  options.path = *path;
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
  auto ids = std::make_shared<store::IdGenerator>(static_cast<uint32_t>(*node_id));
  options.id_generator = ids.get();
  std::shared_ptr<shard::ShardMapHolder> map;
  if (!shard_name->empty()) {
    auto found = MapNamed(ctx);
    if (!found.ok()) return found.status();
    map = *found;
    options.shard_key_fields = map->Current()->shard_keys();
  } else {
    options.shard_key_fields = *keys;
  }
  Result<std::unique_ptr<store::EntityStore>> opened = Status::Invalid("backend");
  if (*backend == "memory") {
    opened = store::NewMemoryStore(options);
  } else if (path->empty()) {
    return s.Error("path", fmt::format("is required for the {} backend", *backend));
  } else if (std::error_code ec; !std::filesystem::create_directories(*path, ec) && ec) {
    return s.Error("path", fmt::format("cannot create {}: {}", *path, ec.message()));
  } else if (*backend == "rocksdb") {
    opened = store::OpenRocksDbStore(options);
  } else if (*backend == "sqlite") {
    opened = store::OpenSqliteStore(options);
  } else {
    return s.Error("backend", "must be rocksdb, sqlite or memory");
  }
  if (!opened.ok()) return s.Error("path", opened.status().message());
  std::shared_ptr<store::EntityStore> entity_store = std::move(opened).value();
  // Disk work off the I/O threads: a small pool per store (STYLE.md, habit 5).
  auto pool = std::make_shared<boost::asio::thread_pool>(static_cast<size_t>(*threads));
  store::StoreServiceOptions service_options;
  service_options.executor = [pool](std::function<void()> work) {
    boost::asio::post(*pool, std::move(work));
  };
  std::shared_ptr<Handler> handler = store::MakeStoreService(entity_store, service_options);
  std::vector<std::string> patterns = {"store:*"};
  if (!shard_name->empty()) {
    auto canonical = shard::CanonicalShardName(*shard_name);
    if (!canonical.ok()) return s.Error("shard", canonical.status().message());
    auto gate = std::make_shared<shard::WriteGate>();
    handler = shard::MakeShardGuard({*canonical, map, RefreshFrom(map), gate}, handler);
    // kind:* makes the shard route more specific (one more glob) than a router or cache on
    // store:*,kind:K, so forwarded messages reach the shard (docs/sharding.md).
    patterns = {fmt::format("store:*,kind:*,shard:\"{}\"", *canonical)};
    ShardDirectory::Global().Put(*canonical, ServedShard{entity_store, gate});
  }
  // The id generator must outlive the store: both die with the stop callback's captures.
  auto stop = [pool, entity_store, ids]() mutable { pool->join(); };
  return ServiceInstance{handler, patterns, stop};
}

// shard-router: routes store:* to shards by the named map.
Result<ServiceInstance> MakeShardRouterService(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"map", "node_id"}); !st.ok()) return st;
  auto map = MapNamed(ctx);
  if (!map.ok()) return map.status();
  auto node_id = s.GetInt("node_id", 0);
  if (!node_id.ok()) return node_id.status();
  if (*node_id < 0 || *node_id > store::IdGenerator::kMaxNodeId)
    return s.Error("node_id", "must be 0..1023");
  auto router = shard::MakeShardRouter(
      {*map, RefreshFrom(*map),
       std::make_shared<store::IdGenerator>(static_cast<uint32_t>(*node_id))});
  return ServiceInstance{router, {"store:*"}, nullptr};
}

// cache: the entry cache; route it as store:*,kind:K (the store then serves ...,cache:true).
// Also answers sys:cache,cmd:stats,name:<service name>.
Result<ServiceInstance> MakeCache(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st =
          s.CheckOnly({"max_bytes", "ttl_ms", "not_found_ttl_ms", "cache_lists", "list_ttl_ms"});
      !st.ok())
    return st;
  cache::CacheOptions options;
  auto max_bytes = s.GetInt("max_bytes", int64_t{64} << 20);
  auto ttl = s.GetInt("ttl_ms", 60'000);
  auto nf = s.GetInt("not_found_ttl_ms", 1'000);
  auto lists = s.GetBool("cache_lists", false);
  auto list_ttl = s.GetInt("list_ttl_ms", 5'000);
  for (const Status& st : {St(max_bytes), St(ttl), St(nf), St(lists), St(list_ttl)}) {
    if (!st.ok()) return st;
  }
  if (*max_bytes <= 0) return s.Error("max_bytes", "must be positive");
  if (*ttl <= 0) return s.Error("ttl_ms", "must be positive");
  if (*nf < 0) return s.Error("not_found_ttl_ms", "must be 0 or more");
  options.max_bytes = static_cast<size_t>(*max_bytes);
  options.ttl_ms = *ttl;
  options.not_found_ttl_ms = *nf;
  options.cache_lists = *lists;
  options.list_ttl_ms = *list_ttl;
  auto cache = cache::MakeEntityCache(options);
  auto stats = cache->StatsHandler();
  auto handler = MakeHandler([cache, stats](Message m, const Context& c, ReplyFn reply) {
    if (m.GetString("sys") == std::optional<std::string_view>("cache"))
      return stats->Handle(std::move(m), c, std::move(reply));
    cache->Handle(std::move(m), c, std::move(reply));
  });
  return ServiceInstance{
      handler, {"store:*", fmt::format("sys:cache,cmd:stats,name:\"{}\"", ctx.name)}, nullptr};
}

// migrator: runs live migrations between shards served in this process (docs/migration.md).
//   migrate:start,id:I + sources:[…], targets:[…]   create (or resume) and start copying
//   migrate:status|verify|cutover|rollback|complete|cancel,id:I
// Every operation runs on the migrator's own thread: a cutover waits for drains and fences and
// must not hold an I/O thread.
class Migrator {
 public:
  Migrator(std::string dir, std::shared_ptr<shard::ShardMapHolder> map)
      : dir_(std::move(dir)), map_(std::move(map)), pool_(1) {}
  ~Migrator() {
    pool_.join();
    for (auto& [id, entry] : migrations_) {
      if (entry.starting.valid()) entry.starting.wait();
    }
  }

  void Handle(Message m, ReplyFn reply) {
    boost::asio::post(pool_, [this, m = std::move(m), reply = std::move(reply)]() mutable {
      std::lock_guard<std::mutex> lock(mu_);
      reply(Serve(m));
    });
  }

 private:
  static Result<std::vector<std::string>> Names(const Message& m, const char* field) {
    auto text = m.GetArrayJson(field);
    if (!text)
      return Status::Invalid(fmt::format("{}: must be an array of shard names", field),
                             fmt::format(R"({{"field":"{}"}})", field));
    auto doc = ParseJson(*text, field);
    if (!doc.ok()) return doc.status();
    std::vector<std::string> names;
    for (const auto& v : doc->GetArray()) {
      if (!v.IsString())
        return Status::Invalid(fmt::format("{}: must be an array of shard names", field),
                               fmt::format(R"({{"field":"{}"}})", field));
      auto canonical = shard::CanonicalShardName(v.GetString());
      if (!canonical.ok())
        return Status::Invalid(fmt::format("{}: {}", field, canonical.status().message()));
      names.push_back(*canonical);
    }
    return names;
  }

  Result<std::vector<migrate::Participant>> Participants(const std::vector<std::string>& names) {
    std::vector<migrate::Participant> out;
    for (const auto& name : names) {
      ServedShard s = FindServedShard(name);
      if (!s.store) {
        return Status::Invalid(fmt::format(
            "shard {}: no store serves it in this node (add a [[service]] of type store "
            "with shard = \"{}\" and reload)",
            name, name));
      }
      out.push_back({name, s.store, s.gate});
    }
    return out;
  }

  static Message Describe(const migrate::Progress& p, const std::string& id) {
    Message out;
    out.SetString("id", id).SetString("phase", migrate::PhaseName(p.phase));
    out.SetUint("rows_copied", p.rows_copied).SetDouble("copy_rows_per_s", p.copy_rows_per_s);
    out.SetUint("lag", p.lag).SetUint("epoch", p.epoch);
    return out;
  }

  Result<Message> Serve(const Message& m) {
    auto op = m.GetString("migrate").value_or("");
    auto id = m.GetString("id");
    if (!id || id->empty())
      return Status::Invalid("id: a migration id (string) is required", R"({"field":"id"})");
    std::string key(*id);
    if (op == "start") {
      auto sources = Names(m, "sources");
      if (!sources.ok()) return sources.status();
      auto targets = Names(m, "targets");
      if (!targets.ok()) return targets.status();
      auto source_parts = Participants(*sources);
      if (!source_parts.ok()) return source_parts.status();
      auto target_parts = Participants(*targets);
      if (!target_parts.ok()) return target_parts.status();
      auto& entry = migrations_[key];
      auto& slot = entry.migration;
      if (!slot) {
        migrate::MigrationSpec spec;
        spec.id = key;
        spec.sources = std::move(source_parts).value();
        spec.targets = std::move(target_parts).value();
        spec.map = map_;
        spec.journal_path = dir_ + "/" + key + ".journal";
        auto opened = migrate::Migration::Open(std::move(spec));
        if (!opened.ok()) {
          migrations_.erase(key);
          return opened.status();
        }
        slot = std::move(opened).value();
      }
      if (entry.starting.valid() &&
          entry.starting.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        return Describe(slot->progress(), key);  // already copying
      }
      // The copy can take minutes: it runs on its own thread; status shows its progress.
      migrate::Migration* migration = slot.get();
      entry.starting = std::async(std::launch::async, [migration] { return migration->Start(); });
      return Describe(slot->progress(), key);
    }
    auto it = migrations_.find(key);
    if (it == migrations_.end())
      return Status::NotFound(fmt::format("no migration '{}' in this node", key));
    migrate::Migration& migration = *it->second.migration;
    bool copying =
        it->second.starting.valid() &&
        it->second.starting.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
    if (op == "status") {
      Message out = Describe(migration.progress(), key);
      out.SetBool("copying", copying);
      if (!copying && it->second.starting.valid()) {
        Status started = it->second.starting.get();
        it->second.starting = {};
        if (!started.ok()) return started;
      }
      return out;
    }
    if (copying)
      return Status::Unavailable(fmt::format(
          "migration '{}' is still copying; try again when status says copying:false", key));
    if (op == "verify") {
      auto r = migration.Verify();
      if (!r.ok()) return r.status();
      Message out = Describe(migration.progress(), key);
      out.SetUint("compared", r->compared)
          .SetUint("missing", r->missing)
          .SetUint("extra", r->extra);
      out.SetUint("different", r->different).SetUint("in_flux", r->in_flux).SetBool("ok", r->ok());
      return out;
    }
    if (op == "cutover" || op == "rollback") {
      auto r = op == "cutover" ? migration.Cutover() : migration.Rollback();
      if (!r.ok()) return r.status();
      Message out = Describe(migration.progress(), key);
      out.SetDouble("pause_ms", r->pause_ms).SetUint("fence", r->fence);
      return out;
    }
    if (op == "complete" || op == "cancel") {
      Status s = op == "complete" ? migration.Complete() : migration.Cancel();
      if (!s.ok()) return s;
      return Describe(migration.progress(), key);
    }
    return Status::Invalid(
        "migrate: must be start, status, verify, cutover, rollback, complete or cancel",
        R"({"field":"migrate"})");
  }

  const std::string dir_;
  std::shared_ptr<shard::ShardMapHolder> map_;
  boost::asio::thread_pool pool_;
  std::mutex mu_;  // one operation at a time
  struct Entry {
    std::unique_ptr<migrate::Migration> migration;
    std::future<Status> starting;  // the copy, while it runs
  };
  std::map<std::string, Entry> migrations_;  // guarded by mu_
};

Result<ServiceInstance> MakeMigrator(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"map", "dir"}); !st.ok()) return st;
  auto dir = s.GetString("dir");
  if (!dir.ok()) return dir.status();
  if (std::error_code ec; !std::filesystem::create_directories(*dir, ec) && ec) {
    return s.Error("dir", fmt::format("cannot create {}: {}", *dir, ec.message()));
  }
  auto map = MapNamed(ctx);
  if (!map.ok()) return map.status();
  auto migrator = std::make_shared<Migrator>(*dir, *map);
  auto handler = MakeHandler([migrator](Message m, const Context&, ReplyFn reply) {
    migrator->Handle(std::move(m), std::move(reply));
  });
  return ServiceInstance{handler, {"migrate:*"}, [migrator] {}};
}

}  // namespace

ServedShard FindServedShard(const std::string& canonical_shard_name) {
  return ShardDirectory::Global().Find(canonical_shard_name);
}

std::vector<std::string> ShardMapNames() { return MapDirectory::Global().Names(); }

std::shared_ptr<shard::ShardMapHolder> FindShardMap(const std::string& map) {
  return MapDirectory::Global().Find(map);
}

void RegisterDataServices() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& registry = ServiceRegistry::Global();
    (void)registry.Register("shard-map", MakeShardMap);
    (void)registry.Register("store", MakeStore);
    (void)registry.Register("shard-router", MakeShardRouterService);
    (void)registry.Register("cache", MakeCache);
    (void)registry.Register("migrator", MakeMigrator);
  });
}

}  // namespace shardkit::services
