// cache: cache/'s entry cache as a service.
#include <fmt/format.h>

#include "adapters.h"
#include "shardkit/cache/entity_cache.h"

namespace shardkit::services {

// cache: the entry cache. With `decorates = "<store service>"` the node installs it over that
// store's routes (it reaches the store as Prior); without, route it as store:*,kind:K and have
// the store (or a shard router, or another node) serve ...,cache:true.
// Also answers sys:cache,cmd:stats,name:<service name>.
Result<ServiceInstance> MakeCache(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly(
          {"max_bytes", "ttl_ms", "not_found_ttl_ms", "cache_lists", "list_ttl_ms", "decorates"});
      !st.ok())
    return st;
  cache::CacheOptions options;
  auto max_bytes = s.GetInt("max_bytes", int64_t{64} << 20);
  auto ttl = s.GetInt("ttl_ms", 60'000);
  auto nf = s.GetInt("not_found_ttl_ms", 1'000);
  auto lists = s.GetBool("cache_lists", false);
  auto list_ttl = s.GetInt("list_ttl_ms", 5'000);
  auto decorates = s.GetString("decorates", "");
  for (const Status& st :
       {St(max_bytes), St(ttl), St(nf), St(lists), St(list_ttl), St(decorates)}) {
    if (!st.ok()) return st;
  }
  if (s.Has("decorates") && decorates->empty())
    return s.Error("decorates", "must name a store service of this node");
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
  std::string stats_pattern = fmt::format("sys:cache,cmd:stats,name:\"{}\"", ctx.name);
  if (decorates->empty()) return ServiceInstance{handler, {"store:*", stats_pattern}, nullptr};
  // A decorator: the store's routes become the cache's (the node overrides them).
  ServiceInstance instance{handler, {stats_pattern}, nullptr};
  instance.decorates = {*decorates, "decorates", {"store"}};
  return instance;
}

}  // namespace shardkit::services
