// Internal to services/adapters: what the data service factories share, and the factories that
// RegisterDataServices (data_services.h) registers. One file per service type.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "shardkit/services/data_services.h"
#include "shardkit/services/registry.h"
#include "shardkit/shard/shard_router.h"

namespace shardkit::services {

template <typename T>
Status St(const Result<T>& r) {
  return r.ok() ? Status::Ok() : r.status();
}

// Shard maps and served shards are kept in the node's ServiceDirectory (registry.h).
inline std::string MapKey(const std::string& name) { return "shard-map/" + name; }
inline std::string ShardKey(const std::string& name) { return "shard/" + name; }
// The directory key of a map's pull (data_services.h), beside the map it refreshes.
std::string PullKey(const shard::ShardMapHolder* holder);

// The `shard_keys` table of a service's settings: kind -> field.
Result<std::map<std::string, std::string>> ShardKeys(const Settings& settings);
// The shard map named by the service's `map` key ("main"), or an error naming `map`.
Result<std::shared_ptr<shard::ShardMapHolder>> MapNamed(const ServiceContext& ctx);
// What a router or guard calls when it meets a newer epoch: the holder's map, pulled from the
// authority first when the holder is a follower.
shard::MapRefresher RefreshFrom(const ServiceContext& ctx,
                                std::shared_ptr<shard::ShardMapHolder> holder);

Result<ServiceInstance> MakeShardMap(const ServiceContext& ctx);            // shard_map.cc
Result<ServiceInstance> MakeStore(const ServiceContext& ctx);               // store.cc
Result<ServiceInstance> MakeShardRouterService(const ServiceContext& ctx);  // shard_router.cc
Result<ServiceInstance> MakeCache(const ServiceContext& ctx);               // cache.cc
Result<ServiceInstance> MakeSenecaEntity(const ServiceContext& ctx);        // seneca_entity.cc
Result<ServiceInstance> MakeMigrator(const ServiceContext& ctx);            // migrator.cc
void RegisterCqrsServices(ServiceRegistry& registry);                       // cqrs_services.cc

}  // namespace shardkit::services
