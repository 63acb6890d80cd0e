// The data service types a node config can name (data_services.h): the registration and what
// their factories share. Each type's factory is in its own file here; docs/configuration.md lists
// every key.
#include "shardkit/services/data_services.h"

#include <fmt/format.h>

#include <mutex>

#include "adapters.h"
#include "shardkit/message/json.h"

namespace shardkit::services {

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

shard::MapRefresher RefreshFrom(const ServiceContext& ctx,
                                std::shared_ptr<shard::ShardMapHolder> holder) {
  // Looked up at each call: in cluster mode the pull is registered after the services start.
  ServiceDirectory* directory = &ctx.environment.directory_or_process();
  return [holder, directory]() -> Result<shard::ShardMap> {
    if (auto pull = directory->Find<ShardMapPull>(PullKey(holder.get()))) (*pull)();
    return *holder->Current();
  };
}

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

void RegisterDataServices() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& registry = ServiceRegistry::Global();
    (void)registry.Register("shard-map", MakeShardMap);
    (void)registry.Register("store", MakeStore);
    (void)registry.Register("shard-router", MakeShardRouterService);
    (void)registry.Register("cache", MakeCache);
    (void)registry.Register("seneca-entity", MakeSenecaEntity);
    (void)registry.Register("migrator", MakeMigrator);
    RegisterCqrsServices(registry);
  });
}

}  // namespace shardkit::services
