// shard-router: shard/'s router over a shard map of this node.
#include "adapters.h"
#include "shardkit/store/id_generator.h"

namespace shardkit::services {

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
  shard::ShardRouterOptions options{
      *map, RefreshFrom(ctx, *map),
      std::make_shared<store::IdGenerator>(static_cast<uint32_t>(*node_id),
                                           &ctx.environment.clock_or_system())};
  options.max_reply_bytes = ctx.max_reply_bytes;
  auto router = shard::MakeShardRouter(std::move(options));
  ServiceInstance instance{router, {"store:*"}, nullptr};
  instance.operations = {"store:changes"};
  return instance;
}

}  // namespace shardkit::services
