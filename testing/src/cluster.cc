// Cluster: N buses wired with shard routers, guarded memory stores, caches and fault-injectable
// links, all on one ManualClock and ManualScheduler.
#include <shardkit/testing/cluster.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <shardkit/message/json.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/id_generator.h>
#include <shardkit/store/service.h>
#include <shardkit/testing/capture.h>

namespace shardkit::testing {

Status Cluster::Node::Add(std::string_view pattern, std::shared_ptr<Handler> handler,
                          std::string description) {
  return bus_->Add(pattern, Recorded(*bus_, std::move(handler)), std::move(description));
}

std::shared_ptr<cache::EntityCache> Cluster::Node::cache(std::string_view kind) const {
  auto it = caches_.find(kind);
  return it == caches_.end() ? nullptr : it->second;
}

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)),
      clock_(options_.start_ms),
      scheduler_(&clock_),
      faults_(std::make_unique<FaultInjector>(scheduler_, options_.faults)) {
  auto map = shard::ShardMap::Make(options_.epoch, options_.ranges, options_.shard_keys);
  if (!map.ok()) {
    ADD_FAILURE() << "Cluster: " << map.status().ToString();
    return;
  }
  if (options_.nodes < 1) {
    ADD_FAILURE() << "Cluster: nodes must be at least 1";
    return;
  }
  authority_ = std::make_shared<shard::ShardMapHolder>(*map);
  shard::MapRefresher refresh = [authority = authority_]() -> Result<shard::ShardMap> {
    return *authority->Current();
  };

  for (int i = 0; i < options_.nodes; ++i) {
    auto node = std::make_unique<Node>();
    node->name_ = fmt::format("node{}", i);
    BusOptions bus_options;
    bus_options.clock = &clock_;
    bus_options.id_prefix = node->name_;
    node->bus_ = std::make_unique<Bus>(bus_options);
    nodes_.push_back(std::move(node));
  }

  // Shard k lives on node k % nodes, behind its guard and the fault injector ("shard:<range>").
  std::map<std::string, std::shared_ptr<Handler>> shard_services;
  for (size_t k = 0; k < map->shards().size(); ++k) {
    const std::string& name = map->shards()[k].name;
    store::StoreOptions store_options;
    store_options.clock = &clock_;
    store_options.shard_key_fields = options_.shard_keys;
    store_options.purge_interval_ms = 0;
    std::shared_ptr<store::EntityStore> s = std::move(store::NewMemoryStore(store_options)).value();
    stores_[name] = s;
    int owner = static_cast<int>(k % nodes_.size());
    owners_[name] = owner;
    nodes_[owner]->shards_.push_back(name);
    auto guard_map = std::make_shared<shard::ShardMapHolder>(*map);
    auto guard =
        shard::MakeShardGuard({name, guard_map, refresh, nullptr}, store::MakeStoreService(s));
    shard_services[name] = faults_->Wrap("shard:" + name, guard);
  }

  auto fail = [](const Status& s) {
    if (!s.ok()) ADD_FAILURE() << "Cluster: " << s.ToString();
  };
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& node = *nodes_[i];
    auto ids = std::make_shared<store::IdGenerator>(static_cast<uint32_t>(i + 1), &clock_);
    auto router =
        shard::MakeShardRouter({std::make_shared<shard::ShardMapHolder>(*map), refresh, ids});
    fail(node.Add("store:*", router, "shard router"));
    for (const auto& kind : options_.cached_kinds) {
      cache::CacheOptions cache_options = options_.cache;
      cache_options.clock = &clock_;
      auto entity_cache = cache::MakeEntityCache(cache_options);
      node.caches_[kind] = entity_cache;
      fail(node.Add(fmt::format("store:*,kind:\"{}\"", kind), entity_cache, kind + " cache"));
      fail(node.Add(fmt::format("store:*,kind:\"{}\",cache:true", kind), router,
                    "shard router (behind the cache)"));
    }
    for (const auto& [name, service] : shard_services) {
      int owner = owners_[name];
      std::shared_ptr<Handler> handler = service;
      std::string description = "shard " + name;
      if (owner != static_cast<int>(i)) {
        Bus* target = nodes_[owner]->bus_.get();
        std::string link = fmt::format("{}->{}", node.name_, nodes_[owner]->name_);
        handler =
            faults_->Wrap(link, MakeHandler([target](Message m, const Context&, ReplyFn reply) {
                            target->Act(std::move(m), std::move(reply));
                          }));
        description = fmt::format("shard {} on {} (link {})", name, nodes_[owner]->name_, link);
      }
      // kind:* makes the shard route beat a cache or router on store:*,kind:K (docs/sharding.md);
      // the router drops `cache` when it forwards, so one route per shard serves every kind.
      fail(node.Add(fmt::format("store:*,kind:*,shard:\"{}\"", name), handler, description));
    }
  }

  if (!options_.fixtures.empty()) {
    auto doc = ParseJson(options_.fixtures, "fixtures");
    if (!doc.ok() || !doc->IsObject()) {
      ADD_FAILURE() << "Cluster: fixtures: "
                    << (doc.ok() ? "must be an object of kind -> [entities]"
                                 : doc.status().ToString());
      return;
    }
    for (const auto& member : doc->GetObject()) {
      std::string kind(member.name.GetString(), member.name.GetStringLength());
      if (!member.value.IsArray()) {
        ADD_FAILURE() << "Cluster: fixtures." << kind << ": must be an array";
        continue;
      }
      size_t index = 0;
      for (const auto& ent : member.value.GetArray()) {
        Message save;
        save.SetString("store", "save").SetString("kind", kind);
        if (ent.IsObject()) save.SetObjectJson("ent", ToJsonText(ent));
        auto saved = Act(0, std::move(save));
        if (!saved.ok())
          ADD_FAILURE() << "Cluster: fixtures." << kind << "[" << index
                        << "]: " << saved.status().ToString();
        ++index;
      }
    }
  }
}

Cluster::~Cluster() { faults_->Clear(); }

PendingReply Cluster::Send(size_t node, Message message) {
  return testing::Send(*nodes_.at(node)->bus_, std::move(message));
}

Result<Message> Cluster::Act(size_t node, Message message) {
  std::string routing = message.RoutingString();
  PendingReply pending = Send(node, std::move(message));
  while (!pending.ready()) {
    if (!scheduler_.RunNext()) {
      return Status::Internal(
          fmt::format("cluster: no reply to '{}' and nothing scheduled (held forever?)", routing));
    }
  }
  return pending.get();
}

std::shared_ptr<store::EntityStore> Cluster::store(std::string_view range) const {
  auto it = stores_.find(range);
  return it == stores_.end() ? nullptr : it->second;
}

int Cluster::OwnerOf(std::string_view range) const {
  auto it = owners_.find(range);
  return it == owners_.end() ? -1 : it->second;
}

std::shared_ptr<const shard::ShardMap> Cluster::shard_map() const { return authority_->Current(); }

Status Cluster::SetShardMap(shard::ShardMap next) {
  return authority_->CompareAndSwap(authority_->Current()->epoch(), std::move(next));
}

}  // namespace shardkit::testing
