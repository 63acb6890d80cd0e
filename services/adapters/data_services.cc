// The data service types a node config can name: shard-map, store, shard-router, cache.
// docs/configuration.md lists every key.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs it with GCC 12

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "shardkit/cache/entity_cache.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/migrate/migration.h"
#include "shardkit/services/client.h"
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

// Writes `text` to `path` so that a crash leaves the old file or the new one: a temp file,
// fsynced, renamed over it.
Status WriteFileAtomically(const std::string& path, std::string_view text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::Internal(fmt::format("cannot write {}: {}", tmp, strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::Internal(fmt::format("cannot write {}", tmp));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Internal(fmt::format("cannot rename {}: {}", tmp, strerror(errno)));
  return Status::Ok();
}

// Shard maps and served shards are kept in the node's ServiceDirectory (registry.h).
std::string MapKey(const std::string& name) { return "shard-map/" + name; }
std::string ShardKey(const std::string& name) { return "shard/" + name; }
// A map's pull (data_services.h), kept in the directory beside the map it refreshes.
using MapPull = ShardMapPull;
std::string PullKey(const shard::ShardMapHolder* holder) {
  return fmt::format("shard-map-pull/{}", static_cast<const void*>(holder));
}

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
  auto holder = ctx.environment.directory_or_process().Find<shard::ShardMapHolder>(MapKey(*name));
  if (!holder) {
    return ctx.settings.Error(
        "map", fmt::format("no shard map '{}' in this node: add a [[service]] of type "
                           "shard-map named by `map` before this one",
                           *name));
  }
  return holder;
}

// What a router or guard calls when it meets a newer epoch: the holder's map, pulled from the
// authority first when the holder is a follower.
shard::MapRefresher RefreshFrom(const ServiceContext& ctx,
                                std::shared_ptr<shard::ShardMapHolder> holder) {
  // Looked up at each call: in cluster mode the pull is registered after the services start.
  ServiceDirectory* directory = &ctx.environment.directory_or_process();
  return [holder, directory]() -> Result<shard::ShardMap> {
    if (auto pull = directory->Find<MapPull>(PullKey(holder.get()))) (*pull)();
    return *holder->Current();
  };
}

std::string DescribeRanges(const shard::ShardMap& map) {
  std::string ranges = "[";
  for (size_t i = 0; i < map.shards().size(); ++i) {
    ranges += i ? "," : "";
    AppendJsonString(map.shards()[i].name, ranges);
  }
  return ranges + "]";
}

// The reply to shardmap:get: {"epoch":E,"ranges":[…],"shard_keys":{kind:field}}.
Message DescribeMap(const shard::ShardMap& map) {
  Message out;
  out.SetUint("epoch", map.epoch());
  out.SetArrayJson("ranges", DescribeRanges(map));
  std::string keys = "{";
  for (const auto& [kind, field] : map.shard_keys()) {
    if (keys.size() > 1) keys += ",";
    AppendJsonString(kind, keys);
    keys += ":";
    AppendJsonString(field, keys);
  }
  out.SetObjectJson("shard_keys", keys + "}");
  return out;
}

// Parses a shardmap:get reply back into a map.
Result<shard::ShardMap> MapFromReply(const Message& reply) {
  auto epoch = reply.GetUint("epoch");
  auto ranges_json = reply.GetArrayJson("ranges");
  if (!epoch || !ranges_json) return Status::Internal("the shard map reply has no epoch or ranges");
  auto ranges = ParseJson(*ranges_json, "ranges");
  if (!ranges.ok()) return ranges.status();
  std::vector<std::string> names;
  for (const auto& r : ranges->GetArray()) {
    if (r.IsString()) names.emplace_back(r.GetString());
  }
  std::map<std::string, std::string> keys;
  if (auto keys_json = reply.GetObjectJson("shard_keys")) {
    auto doc = ParseJson(*keys_json, "shard_keys");
    if (!doc.ok()) return doc.status();
    for (const auto& m : doc->GetObject()) {
      if (m.value.IsString()) keys[m.name.GetString()] = m.value.GetString();
    }
  }
  return shard::ShardMap::Make(*epoch, names, keys);
}

// shard-map with `from`: a follower of another node's authoritative map. It fetches the map at
// start (waiting up to connect_timeout_ms for the authority), again whenever a router or guard of
// this node meets a newer epoch (at most once per 20 ms), and every refresh_ms in the background.
// It answers shardmap:get with its copy; shardmap:set must go to the authority.
class MapFollower {
 public:
  MapFollower(std::shared_ptr<shard::ShardMapHolder> holder, std::string name)
      : runtime_(1), holder_(std::move(holder)), name_(std::move(name)) {}
  ~MapFollower() { StopPolling(); }

  // Connects to `from` and fetches the map, waiting up to `connect_timeout` for the authority.
  static Result<std::shared_ptr<MapFollower>> Open(const std::string& name,
                                                   const Endpoint& endpoint,
                                                   std::chrono::milliseconds connect_timeout) {
    auto follower = std::make_shared<MapFollower>(nullptr, name);
    ClientOptions options;
    options.timeout = std::chrono::milliseconds(1000);
    options.connections = 1;
    auto client = MakeClient(follower->runtime_, endpoint, options);
    if (!client.ok()) return client.status();
    follower->client_ = std::move(client).value();
    Result<shard::ShardMap> map = Status::Unavailable("not asked");
    auto until = std::chrono::steady_clock::now() + connect_timeout;
    do {
      map = follower->Fetch();
      if (map.ok() || map.status().code() != Code::kUnavailable) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < until);
    if (!map.ok()) return map.status();
    follower->holder_ = std::make_shared<shard::ShardMapHolder>(std::move(map).value());
    return follower;
  }

  const std::shared_ptr<shard::ShardMapHolder>& holder() const { return holder_; }

  // Fetches the authority's map; adopts it when its epoch is newer.
  Status Pull() {
    std::lock_guard<std::mutex> lock(pull_mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - last_pull_ < std::chrono::milliseconds(20)) return Status::Ok();
    last_pull_ = now;
    auto map = Fetch();
    if (!map.ok()) return map.status();
    auto current = holder_->Current();
    if (map->epoch() > current->epoch()) {
      return holder_->CompareAndSwap(current->epoch(), std::move(map).value());
    }
    return Status::Ok();
  }

  // Every service instance built on this follower holds it while it lives: a reload builds the
  // new instance (Acquire) before it stops the old one (Release), so polling never stops between.
  void Acquire(std::chrono::milliseconds every) {
    std::lock_guard<std::mutex> lock(poll_mu_);
    if (users_++ > 0 || every.count() <= 0 || poller_.joinable()) return;
    stopping_ = false;
    poller_ = std::thread([this, every] {
      std::unique_lock<std::mutex> held(poll_mu_);
      while (!poll_cv_.wait_for(held, every, [this] { return stopping_; })) {
        held.unlock();
        (void)Pull();  // a failed pull keeps the current map; the next one retries
        held.lock();
      }
    });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(poll_mu_);
      if (--users_ > 0) return;
    }
    StopPolling();
  }

  void StopPolling() {
    {
      std::lock_guard<std::mutex> lock(poll_mu_);
      stopping_ = true;
    }
    poll_cv_.notify_all();
    if (poller_.joinable()) poller_.join();
  }

 private:
  Result<shard::ShardMap> Fetch() {
    Message get;
    get.SetString("shardmap", "get").SetString("map", name_);
    auto reply = CallAndWait(*client_, std::move(get));
    if (!reply.ok()) return reply.status();
    return MapFromReply(*reply);
  }

  // Its own I/O thread: a pull blocks its caller (a router on a node I/O thread) until the reply
  // arrives, which must not need that thread.
  IoRuntime runtime_;
  std::shared_ptr<Handler> client_;
  std::shared_ptr<shard::ShardMapHolder> holder_;
  std::string name_;
  std::mutex pull_mu_;
  std::chrono::steady_clock::time_point last_pull_{};
  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stopping_ = false;
  int users_ = 0;
  std::thread poller_;
};

Result<ServiceInstance> MakeFollowerMap(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"map", "from", "refresh_ms", "connect_timeout_ms"}); !st.ok())
    return st;
  auto name = s.GetString("map", "main");
  auto from = s.GetString("from", "");
  auto refresh = s.GetInt("refresh_ms", 1000);
  auto connect_timeout = s.GetInt("connect_timeout_ms", 5000);
  for (const Status& st : {St(name), St(from), St(refresh), St(connect_timeout)}) {
    if (!st.ok()) return st;
  }
  if (*refresh < 0) return s.Error("refresh_ms", "must be 0 (no polling) or more");
  if (*connect_timeout < 0) return s.Error("connect_timeout_ms", "must be 0 or more");
  auto endpoint = ParseEndpoint(*from);
  if (!endpoint.ok()) return s.Error("from", endpoint.status().message());
  // Followers live as long as the node's directory (like authoritative maps): a reload reuses it.
  ServiceDirectory& directory = ctx.environment.directory_or_process();
  auto follower = directory.Find<MapFollower>("shard-map-follower/" + *name);
  if (!follower) {
    if (directory.Find<shard::ShardMapHolder>(MapKey(*name))) {
      return s.Error("map", fmt::format("a shard map '{}' already exists in this node", *name));
    }
    auto opened = MapFollower::Open(*name, *endpoint, std::chrono::milliseconds(*connect_timeout));
    if (!opened.ok()) {
      return s.Error("from", fmt::format("cannot get shard map '{}' from {}: {}", *name,
                                         Shown(*from), opened.status().ToString()));
    }
    follower = *opened;
    directory.Put("shard-map-follower/" + *name, follower);
    directory.Put(MapKey(*name), follower->holder());
    directory.Put(PullKey(follower->holder().get()),
                  std::make_shared<MapPull>([raw = follower.get()] { (void)raw->Pull(); }));
  }
  follower->Acquire(std::chrono::milliseconds(*refresh));
  auto handler =
      MakeSyncHandler([holder = follower->holder()](Message, const Context&) -> Result<Message> {
        return DescribeMap(*holder->Current());
      });
  auto stop = [follower] { follower->Release(); };
  return ServiceInstance{handler, {fmt::format("shardmap:get,map:\"{}\"", *name)}, stop};
}

// shard-map: the node's authoritative map. Answers shardmap:get and shardmap:set
// (compare-and-swap).
Result<ServiceInstance> MakeShardMap(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (s.Has("from")) return MakeFollowerMap(ctx);
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
  ServiceDirectory& directory = ctx.environment.directory_or_process();
  auto holder = directory.Find<shard::ShardMapHolder>(MapKey(*name));
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
        return WriteFileAtomically(file, json);
      });
    }
    directory.Put(MapKey(*name), holder);
  }
  auto handler = MakeSyncHandler([holder](Message m, const Context&) -> Result<Message> {
    auto current = holder->Current();
    auto describe = DescribeMap;
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
  if (Status st =
          s.CheckOnly({"backend", "path", "durability", "max_value_bytes", "node_id", "shard",
                       "map", "shard_keys", "threads", "purge_interval_ms", "idempotency_ttl_ms"});
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
  options.clock = &ctx.environment.clock_or_system();
  auto ids = std::make_shared<store::IdGenerator>(static_cast<uint32_t>(*node_id), options.clock);
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
  // Disk work off the I/O threads: a small pool per store (so a slow fsync never stalls the network
  // threads), unless the node runs blocking work itself (the testing cluster: inline,
  // deterministic).
  std::shared_ptr<boost::asio::thread_pool> pool;
  store::StoreServiceOptions service_options;
  if (ctx.environment.run_blocking) {
    service_options.executor = ctx.environment.run_blocking;
  } else {
    pool = std::make_shared<boost::asio::thread_pool>(static_cast<size_t>(*threads));
    service_options.executor = [pool](std::function<void()> work) {
      boost::asio::post(*pool, std::move(work));
    };
  }
  std::shared_ptr<Handler> handler = store::MakeStoreService(entity_store, service_options);
  std::vector<std::string> patterns = {"store:*"};
  std::string served_key;  // the directory entry of a shard, removed when the service stops
  if (!shard_name->empty()) {
    auto canonical = shard::CanonicalShardName(*shard_name);
    if (!canonical.ok()) return s.Error("shard", canonical.status().message());
    auto gate = std::make_shared<shard::WriteGate>();
    handler = shard::MakeShardGuard({*canonical, map, RefreshFrom(ctx, map), gate}, handler);
    // kind:* makes the shard route more specific (one more glob) than a router or cache on
    // store:*,kind:K, so forwarded messages reach the shard (docs/sharding.md); store:changes
    // names no kind, only the shard.
    patterns = {fmt::format("store:*,kind:*,shard:\"{}\"", *canonical),
                fmt::format("store:changes,shard:\"{}\"", *canonical)};
    served_key = ShardKey(*canonical);
    ctx.environment.directory_or_process().Put(served_key,
                                               std::make_shared<ServedShard>(entity_store, gate));
  }
  // The id generator and the clock must outlive the store: the directory entry goes at stop (unless
  // a newer instance of the shard replaced it), so the store dies with the stop callback's captures
  // and the node, not later with the process directory.
  auto stop = [pool, entity_store, ids, served_key,
               directory = &ctx.environment.directory_or_process()]() mutable {
    if (pool) pool->join();
    if (served_key.empty()) return;
    auto served = directory->Find<ServedShard>(served_key);
    if (served && served->store == entity_store) directory->Put(served_key, nullptr);
  };
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
      {*map, RefreshFrom(ctx, *map),
       std::make_shared<store::IdGenerator>(static_cast<uint32_t>(*node_id),
                                            &ctx.environment.clock_or_system())});
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
  options.clock = &ctx.environment.clock_or_system();
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
//   migrate:start,id:I + sources:[…], targets:[…]   create (a new id: the rules of
//       docs/migration.md) or resume (the same id and spec; another spec is a conflict); copy
//   migrate:status|verify|cutover|rollback|complete|cancel,id:I
// Every operation runs on the migrator's own thread: a cutover waits for drains and fences and
// must not hold an I/O thread.
class Migrator {
 public:
  // `directory` holds the migrator (For), so it outlives it: a plain pointer, no cycle.
  Migrator(std::string dir, std::shared_ptr<shard::ShardMapHolder> map, ServiceDirectory& directory)
      : dir_(std::move(dir)), map_(std::move(map)), directory_(directory), pool_(1) {}
  ~Migrator() {
    pool_.join();
    for (auto& [id, entry] : migrations_) {
      if (entry.starting.valid()) entry.starting.wait();
    }
  }

  // One migrator per migrations directory in a node: a reload builds a new service instance on
  // the same migrator, so a migration in progress is never opened twice.
  static std::shared_ptr<Migrator> For(const std::string& dir,
                                       std::shared_ptr<shard::ShardMapHolder> map,
                                       std::shared_ptr<ServiceDirectory> directory) {
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    ServiceDirectory& where = directory ? *directory : ServiceDirectory::Process();
    auto migrator = where.Find<Migrator>("migrator/" + dir);
    if (!migrator) {
      migrator = std::make_shared<Migrator>(dir, std::move(map), where);
      where.Put("migrator/" + dir, migrator);
    }
    return migrator;
  }

  void Handle(Message m, const Context& context, ReplyFn reply) {
    Attach(context.bus());
    boost::asio::post(pool_, [this, m = std::move(m), reply = std::move(reply)]() mutable {
      std::lock_guard<std::mutex> lock(mu_);
      reply(Serve(m));
    });
  }

  // The bus progress is published on (info:migrate): the node's, while a service instance on
  // this migrator is routed there.
  void Attach(Bus* bus) {
    std::lock_guard<std::mutex> lock(bus_mu_);
    bus_ = bus;
  }
  void Acquire(Bus* bus) {
    std::lock_guard<std::mutex> lock(bus_mu_);
    ++users_;
    if (bus) bus_ = bus;
  }
  // The last service instance gone (the node stops, not a reload): the migrations are closed
  // (their replicators stop; the journals keep their state) and the migrator leaves the directory,
  // so a node started again in this process resumes them from disk.
  void Release() {
    {
      std::lock_guard<std::mutex> lock(bus_mu_);
      if (--users_ > 0) return;
      bus_ = nullptr;
    }
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    for (auto& [id, entry] : migrations_) {
      if (entry.starting.valid()) entry.starting.wait();
    }
    migrations_.clear();
    directory_.Put("migrator/" + dir_, nullptr);
  }

  // Resumes the migrations of earlier runs of this process (their specs are in dir), unless they
  // completed or were cancelled. A resumed copy continues; a cutover interrupted by the crash is
  // finished or undone (Migration::Open).
  void ResumeFromDisk() {
    // The stores a migration names may be built after the migrator (config order): retry for a
    // few seconds; an operation on a migration not resumed yet also resumes it (Serve).
    boost::asio::post(pool_, [this] {
      for (int attempt = 0; attempt < 50 && !ResumeAll(); ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }

 private:
  // Resumes every migration with a spec on disk not open yet; false if one still lacks a store.
  bool ResumeAll() {
    bool all = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return true;
      std::error_code ec;
      for (const auto& file : std::filesystem::directory_iterator(dir_, ec)) {
        if (file.path().extension() != ".spec") continue;
        std::string id = file.path().stem().string();
        if (migrations_.count(id)) continue;
        auto spec = SavedSpec(id);
        if (!spec.ok()) {
          spdlog::warn("migrator: cannot resume {}: {}", file.path().string(),
                       spec.status().ToString());
          continue;
        }
        auto resumed = Serve(*spec);
        if (!resumed.ok()) {
          all = false;
          spdlog::warn("migrator: cannot resume migration '{}' yet: {}", id,
                       resumed.status().ToString());
        } else {
          spdlog::info("migrator: resumed migration '{}' in phase {}", id,
                       resumed->GetString("phase").value_or("?"));
        }
      }
    }
    return all;
  }

  // The saved spec of migration `id` (written by its start), or not_found.
  Result<Message> SavedSpec(const std::string& id) {
    std::ifstream in(dir_ + "/" + id + ".spec");
    if (!in) return Status::NotFound(fmt::format("no migration '{}' in this node", id));
    std::string text((std::istreambuf_iterator<char>(in)), {});
    return ParseMessage(text);
  }

  void Publish(const std::string& id, const migrate::Progress& progress) {
    Message event = Describe(progress, id);
    event.SetString("info", "migrate");
    std::lock_guard<std::mutex> lock(bus_mu_);
    if (bus_) bus_->Publish(std::move(event));
  }

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
      ServedShard s = FindServedShard(directory_, name);
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
    out.SetUint("rows_to_copy", p.rows_to_copy).SetUint("rows_copied", p.rows_copied);
    out.SetDouble("copy_rows_per_s", p.copy_rows_per_s);
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
      // An id names one spec: a start with another spec is refused before anything is looked up.
      if (auto saved = SavedSpec(key); saved.ok()) {
        auto recorded_sources = Names(*saved, "sources");
        auto recorded_targets = Names(*saved, "targets");
        if (recorded_sources.ok() && recorded_targets.ok()) {
          if (Status s = migrate::CheckSameSpec(key, *recorded_sources, *recorded_targets, *sources,
                                                *targets);
              !s.ok())
            return s;
        }
      }
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
        spec.on_progress = [this, key](const migrate::Progress& p) { Publish(key, p); };
        auto opened = migrate::Migration::Open(std::move(spec));
        if (!opened.ok()) {
          migrations_.erase(key);
          return opened.status();
        }
        // What a restarted process needs to resume it (the journal holds the positions).
        Message saved;
        saved.SetString("migrate", "start").SetString("id", key);
        saved.SetArrayJson("sources", *m.GetArrayJson("sources"));
        saved.SetArrayJson("targets", *m.GetArrayJson("targets"));
        if (Status s = WriteFileAtomically(dir_ + "/" + key + ".spec", ToJson(saved)); !s.ok()) {
          migrations_.erase(key);
          return s;
        }
        slot = std::move(opened).value();
      }
      if (slot->phase() == migrate::Phase::kCompleted ||
          slot->phase() == migrate::Phase::kCancelled) {
        return Describe(slot->progress(), key);  // finished: start is a no-op
      }
      if (entry.starting.valid() &&
          entry.starting.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        return Describe(slot->progress(), key);  // already copying
      }
      if (slot->phase() != migrate::Phase::kCreated) {
        // Copied already: starting only (re)starts the replicators. Not in the background, so a
        // resumed migration never reads as copying to the next command.
        if (Status s = slot->Start(); !s.ok()) return s;
        return Describe(slot->progress(), key);
      }
      // The copy can take minutes: it runs on its own thread; status shows its progress.
      migrate::Migration* migration = slot.get();
      entry.starting = std::async(std::launch::async, [migration] { return migration->Start(); });
      return Describe(slot->progress(), key);
    }
    auto it = migrations_.find(key);
    if (it == migrations_.end()) {
      // Started by an earlier run of this process and not resumed yet: resume it now.
      auto spec = SavedSpec(key);
      if (!spec.ok()) return spec.status();
      if (auto resumed = Serve(*spec); !resumed.ok()) return resumed.status();
      it = migrations_.find(key);
      if (it == migrations_.end())
        return Status::NotFound(fmt::format("no migration '{}' in this node", key));
    }
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
  ServiceDirectory& directory_;  // where the node's shards are
  std::mutex bus_mu_;
  Bus* bus_ = nullptr;  // guarded by bus_mu_
  int users_ = 0;       // guarded by bus_mu_
  boost::asio::thread_pool pool_;
  std::mutex mu_;  // one operation at a time
  struct Entry {
    std::unique_ptr<migrate::Migration> migration;
    std::future<Status> starting;  // the copy, while it runs
  };
  std::map<std::string, Entry> migrations_;  // guarded by mu_
  bool closed_ = false;                      // guarded by mu_ (Release)
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
  auto migrator = Migrator::For(*dir, *map, ctx.environment.directory);
  migrator->Acquire(nullptr);
  auto handler = MakeHandler([migrator](Message m, const Context& context, ReplyFn reply) {
    migrator->Handle(std::move(m), context, std::move(reply));
  });
  return ServiceInstance{handler, {"migrate:*"}, [migrator] { migrator->Release(); },
                         [migrator] { migrator->ResumeFromDisk(); }};
}

}  // namespace

ServedShard FindServedShard(const ServiceDirectory& directory,
                            const std::string& canonical_shard_name) {
  auto shard = directory.Find<ServedShard>(ShardKey(canonical_shard_name));
  return shard ? *shard : ServedShard{};
}

ServedShard FindServedShard(const std::string& canonical_shard_name) {
  return FindServedShard(ServiceDirectory::Process(), canonical_shard_name);
}

std::shared_ptr<shard::ShardMapHolder> FindShardMap(const ServiceDirectory& directory,
                                                    const std::string& map) {
  return directory.Find<shard::ShardMapHolder>(MapKey(map));
}

std::vector<std::string> ShardMapNames() {
  std::vector<std::string> names;
  for (const auto& key : ServiceDirectory::Process().Keys(MapKey(""))) {
    names.push_back(key.substr(MapKey("").size()));
  }
  return names;
}

void SetShardMapPull(const shard::ShardMapHolder* holder, std::shared_ptr<ShardMapPull> pull) {
  ServiceDirectory::Process().Put(PullKey(holder), std::move(pull));
}

std::shared_ptr<shard::ShardMapHolder> FindShardMap(const std::string& map) {
  return FindShardMap(ServiceDirectory::Process(), map);
}

void RegisterCqrsServices(ServiceRegistry& registry);  // cqrs_services.cc

void RegisterDataServices() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& registry = ServiceRegistry::Global();
    (void)registry.Register("shard-map", MakeShardMap);
    (void)registry.Register("store", MakeStore);
    (void)registry.Register("shard-router", MakeShardRouterService);
    (void)registry.Register("cache", MakeCache);
    (void)registry.Register("migrator", MakeMigrator);
    RegisterCqrsServices(registry);
  });
}

}  // namespace shardkit::services
