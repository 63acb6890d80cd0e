// shard-map: a node's shard map, authoritative (ranges, epoch, an optional file that keeps it
// across restarts) or a follower of another node's (`from`). Answers shardmap:get|set.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "adapters.h"
#include "shardkit/message/file.h"
#include "shardkit/message/json.h"
#include "shardkit/services/client.h"
#include "shardkit/services/runtime.h"
#include "shardkit/store/scheduler.h"

namespace shardkit::services {
namespace {

std::vector<std::string> ShardNames(const shard::ShardMap& map) {
  std::vector<std::string> names;
  for (const auto& shard : map.shards()) names.push_back(shard.name);
  return names;
}

// The reply to shardmap:get: {"epoch":E,"ranges":[…],"shard_keys":{kind:field}}.
Message DescribeMap(const shard::ShardMap& map) {
  Message out;
  out.SetUint("epoch", map.epoch());
  out.SetArrayJson("ranges", JsonStringArray(ShardNames(map)));
  JsonObject keys;
  for (const auto& [kind, field] : map.shard_keys()) keys.Add(kind, field);
  out.SetObjectJson("shard_keys", keys.str());
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

// Adopts `map` when its epoch is newer than the holder's.
Status Adopt(shard::ShardMapHolder& holder, Result<shard::ShardMap> map) {
  if (!map.ok()) return map.status();
  auto current = holder.Current();
  if (map->epoch() > current->epoch()) {
    return holder.CompareAndSwap(current->epoch(), std::move(map).value());
  }
  return Status::Ok();
}

// shard-map with `from`: a follower of another node's authoritative map. It fetches the map at
// start (waiting up to connect_timeout_ms for the authority), again whenever a router or guard of
// this node meets a newer epoch (at most once per 20 ms), and every refresh_ms in the background
// (a timer on the process's store::Scheduler that sends the request; the reply is adopted on the
// follower's client thread). It answers shardmap:get with its copy; shardmap:set must go to the
// authority.
class MapFollower {
 public:
  MapFollower(std::shared_ptr<shard::ShardMapHolder> holder, std::string name)
      : runtime_(1), holder_(std::move(holder)), name_(std::move(name)) {}
  ~MapFollower() { StopRefresh(); }

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
    return Adopt(*holder_, Fetch());
  }

  // Every service instance built on this follower holds it while it lives: a reload builds the
  // new instance (Acquire) before it stops the old one (Release), so the refresh never stops
  // between.
  void Acquire(std::chrono::milliseconds every) {
    std::lock_guard<std::mutex> lock(refresh_mu_);
    if (users_++ > 0 || every.count() <= 0 || refresh_ != 0) return;
    refresh_ = store::Scheduler::Shared().Every(every, [this] { Refresh(); });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(refresh_mu_);
      if (--users_ > 0) return;
    }
    StopRefresh();
  }

  void StopRefresh() {
    store::Scheduler::TaskId task = 0;
    {
      std::lock_guard<std::mutex> lock(refresh_mu_);
      std::swap(task, refresh_);
    }
    if (task != 0) store::Scheduler::Shared().Cancel(task);  // waits for a running Refresh
  }

 private:
  Message GetRequest() const {
    Message get;
    get.SetString("shardmap", "get").SetString("map", name_);
    return get;
  }
  Result<shard::ShardMap> Fetch() {
    auto reply = CallAndWait(*client_, GetRequest());
    if (!reply.ok()) return reply.status();
    return MapFromReply(*reply);
  }

  // On the scheduler: sends shardmap:get without waiting for it (one at a time: an authority that
  // does not answer is asked again only after the client's timeout). A failed refresh keeps the
  // current map; the next one retries.
  void Refresh() {
    if (refreshing_->exchange(true)) return;
    Message get = GetRequest();
    Context context(nullptr, nullptr, get.meta());
    client_->Handle(std::move(get), context,
                    [holder = holder_, busy = refreshing_](Result<Message> reply) {
                      if (reply.ok()) (void)Adopt(*holder, MapFromReply(*reply));
                      busy->store(false);
                    });
  }

  // Its own I/O thread: a pull blocks its caller (a router on a node I/O thread) until the reply
  // arrives, which must not need that thread.
  IoRuntime runtime_;
  std::shared_ptr<Handler> client_;
  std::shared_ptr<shard::ShardMapHolder> holder_;
  std::string name_;
  std::mutex pull_mu_;
  std::chrono::steady_clock::time_point last_pull_{};
  std::shared_ptr<std::atomic<bool>> refreshing_ = std::make_shared<std::atomic<bool>>(false);
  std::mutex refresh_mu_;
  int users_ = 0;                        // guarded by refresh_mu_
  store::Scheduler::TaskId refresh_ = 0;  // guarded by refresh_mu_
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
                  std::make_shared<ShardMapPull>([raw = follower.get()] { (void)raw->Pull(); }));
  }
  follower->Acquire(std::chrono::milliseconds(*refresh));
  auto handler =
      MakeSyncHandler([holder = follower->holder()](Message, const Context&) -> Result<Message> {
        return DescribeMap(*holder->Current());
      });
  auto stop = [follower] { follower->Release(); };
  return ServiceInstance{handler, {fmt::format("shardmap:get,map:\"{}\"", *name)}, stop};
}

// A map saved at `path` by an earlier run (OnChange below), with the config's shard keys.
Result<shard::ShardMap> ReadSavedMap(const Settings& s, const std::string& path,
                                     const std::map<std::string, std::string>& keys) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto doc = ParseJson(text, path);
  auto not_saved = [&] {
    return s.Error("path", fmt::format("{} is not a saved shard map", path));
  };
  if (!doc.ok() || !doc->IsObject() || !(*doc)["epoch"].IsUint64() || !(*doc)["ranges"].IsArray())
    return not_saved();
  std::vector<std::string> saved;
  for (const auto& r : (*doc)["ranges"].GetArray()) {
    if (!r.IsString()) return not_saved();
    saved.emplace_back(r.GetString());
  }
  auto restored = shard::ShardMap::Make((*doc)["epoch"].GetUint64(), saved, keys);
  if (!restored.ok()) return s.Error("path", restored.status().message());
  return restored;
}

// shardmap:get and shardmap:set (compare-and-swap) on the authoritative map.
Result<Message> ServeShardMap(shard::ShardMapHolder& holder, const Message& m) {
  auto current = holder.Current();
  auto op = m.GetString("shardmap").value_or("");
  if (op == "get") return DescribeMap(*current);
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
      if (!r.IsString()) return Status::Invalid("ranges: must be strings", R"({"field":"ranges"})");
      ranges.emplace_back(r.GetString());
    }
    auto next = shard::ShardMap::Make(*expected + 1, ranges, current->shard_keys());
    if (!next.ok()) return next.status();
    if (Status st = holder.CompareAndSwap(*expected, std::move(next).value()); !st.ok()) return st;
    return DescribeMap(*holder.Current());
  }
  return Status::Invalid("shardmap: must be get or set", R"({"field":"shardmap"})");
}

}  // namespace

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
      auto restored = ReadSavedMap(s, *path, *keys);
      if (!restored.ok()) return restored.status();
      if (restored->epoch() >= map->epoch()) map = std::move(restored);
    }
    holder = std::make_shared<shard::ShardMapHolder>(std::move(map).value());
    if (!path->empty()) {
      holder->OnChange([file = *path](const shard::ShardMap& next) -> Status {
        return WriteFileAtomically(file, JsonObject()
                                             .Add("epoch", next.epoch())
                                             .AddRaw("ranges", JsonStringArray(ShardNames(next)))
                                             .str());
      });
    }
    directory.Put(MapKey(*name), holder);
  }
  auto handler =
      MakeSyncHandler([holder](Message m, const Context&) { return ServeShardMap(*holder, m); });
  return ServiceInstance{handler, {fmt::format("shardmap:*,map:\"{}\"", *name)}, nullptr};
}

}  // namespace shardkit::services
