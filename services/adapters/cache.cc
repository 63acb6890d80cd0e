// cache: cache/'s entry cache as a service.
#include <fmt/format.h>

#include "adapters.h"
#include "node_stats.h"
#include "shardkit/cache/entity_cache.h"
#include "shardkit/cache/feed_follower.h"

namespace shardkit::services {

// cache: the entry cache. With `decorates = "<store service>"` the node installs it over that
// store's routes (it reaches the store as Prior); without, route it as store:*,kind:K and have
// the store (or a shard router, or another node) serve ...,cache:true.
// Also answers sys:cache,cmd:stats,name:<service name>.
//
// With `feed_kinds`, the cache follows those kinds' change feeds (store:changes through the
// node's bus, so over whatever link reaches the store) and drops every entry a write touches,
// writes made behind its back on the store's node included; `feed_shards` names the shards to
// follow when the store is sharded (docs/cache.md, "Writes behind the cache's back").
namespace {

Result<std::vector<cache::FeedSource>> FeedSources(const Settings& s) {
  auto kinds = s.GetStringList("feed_kinds", std::vector<std::string>{});
  auto shards = s.GetStringList("feed_shards", std::vector<std::string>{});
  for (const Status& st : {St(kinds), St(shards)}) {
    if (!st.ok()) return st;
  }
  if (kinds->empty() && !shards->empty())
    return s.Error("feed_shards", "needs feed_kinds: the kinds whose feeds to follow");
  std::vector<cache::FeedSource> sources;
  for (const std::string& kind : *kinds) {
    if (kind.empty()) return s.Error("feed_kinds", "a kind must not be empty");
    Message request;
    request.SetString("store", "changes").SetString("kind", kind);
    if (shards->empty()) sources.push_back({kind, request});
    for (const std::string& shard : *shards) {
      Message to_shard = request;
      to_shard.SetString("shard", shard);
      sources.push_back({kind + "@" + shard, std::move(to_shard)});
    }
  }
  return sources;
}

}  // namespace

Result<ServiceInstance> MakeCache(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"max_bytes", "ttl_ms", "not_found_ttl_ms", "cache_lists",
                               "list_ttl_ms", "decorates", "feed_kinds", "feed_shards", "policy"});
      !st.ok())
    return st;
  auto sources = FeedSources(s);
  if (!sources.ok()) return sources.status();
  if (!sources->empty() && ctx.bus == nullptr)
    return s.Error("feed_kinds", "a cache follows change feeds only inside a node");
  cache::CacheOptions options;
  auto max_bytes = s.GetInt("max_bytes", int64_t{64} << 20);
  auto ttl = s.GetInt("ttl_ms", 60'000);
  auto nf = s.GetInt("not_found_ttl_ms", 1'000);
  auto lists = s.GetBool("cache_lists", false);
  auto list_ttl = s.GetInt("list_ttl_ms", 5'000);
  auto decorates = s.GetString("decorates", "");
  auto policy = s.GetString("policy", "w-tinylfu");
  for (const Status& st :
       {St(max_bytes), St(ttl), St(nf), St(lists), St(list_ttl), St(decorates), St(policy)}) {
    if (!st.ok()) return st;
  }
  if (s.Has("decorates") && decorates->empty())
    return s.Error("decorates", "must name a store service of this node");
  if (*max_bytes <= 0) return s.Error("max_bytes", "must be positive");
  if (*ttl <= 0) return s.Error("ttl_ms", "must be positive");
  if (*nf < 0) return s.Error("not_found_ttl_ms", "must be 0 or more");
  if (*policy == "lru") {
    options.policy = cache::CachePolicy::kLru;
  } else if (*policy != "w-tinylfu") {
    return s.Error("policy", "must be w-tinylfu or lru");
  }
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
  std::string stats_pattern = fmt::format("sys:cache,cmd:stats,name:\"{}\"", ctx.name);
  ServiceInstance instance{handler, {stats_pattern}, nullptr};
  if (decorates->empty()) {
    instance.patterns.insert(instance.patterns.begin(), "store:*");
  } else {
    // A decorator: the store's routes become the cache's (the node overrides them).
    instance.decorates = {*decorates, "decorates", {"store"}};
  }
  // Its stats in sys:stats and /metrics while it runs (a newer instance, started by a reload
  // before this one stops, replaces the entry and keeps it).
  const std::string key = CacheKey(ctx.name);
  ServiceDirectory* directory = &ctx.environment.directory_or_process();
  directory->Put(key, cache);
  instance.stop = [cache, key, directory] {
    if (directory->Find<cache::EntityCache>(key) == cache) directory->Put(key, nullptr);
  };
  if (!sources->empty()) {
    cache::FeedFollowerOptions follow;
    follow.sources = std::move(sources).value();
    auto follower = std::make_shared<cache::FeedFollower>(*ctx.bus, cache, std::move(follow));
    instance.start = [follower] { follower->Start(); };
    instance.drain = [follower] { follower->Stop(); };
    instance.stop = [follower, unlist = instance.stop] {
      follower->Stop();
      unlist();
    };
  }
  return instance;
}

}  // namespace shardkit::services
