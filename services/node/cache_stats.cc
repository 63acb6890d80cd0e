#include "node_stats.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "prometheus_text.h"
#include "shardkit/cache/entity_cache.h"
#include "shardkit/message/json.h"

namespace shardkit::services {
namespace {

// (cache service name, its stats), in the order the caches started.
std::vector<std::pair<std::string, cache::CacheStats>> Caches(const ServiceDirectory& directory) {
  std::vector<std::pair<std::string, cache::CacheStats>> caches;
  for (const auto& [name, cache] : directory.FindAll<cache::EntityCache>(CacheKey("")))
    caches.emplace_back(name, cache->stats());
  return caches;
}

}  // namespace

void AddCacheStats(const ServiceDirectory& directory, JsonObject& out) {
  auto caches = Caches(directory);
  if (caches.empty()) return;
  JsonObject by_cache;
  for (const auto& [name, s] : caches) {
    by_cache.Add(name, JsonObject()
                           .Add("hits", s.hits)
                           .Add("misses", s.misses)
                           .AddDouble("hit_ratio", s.hit_ratio())
                           .Add("evictions", s.evictions)
                           .Add("bytes", s.bytes_used)
                           .Add("entries", s.entries)
                           .Add("invalidations", s.invalidations)
                           .Add("coalesced", s.coalesced));
  }
  out.Add("caches", by_cache);
}

std::string CacheMetricsText(const ServiceDirectory& directory) {
  using S = cache::CacheStats;
  return MetricsText(
      "shardkit_cache_", "cache", Caches(directory),
      Metric{"hits_total", "Loads answered from the cache.", &S::hits},
      Metric{"misses_total", "Loads the cache sent to the store.", &S::misses},
      Metric{"hit_ratio", "Hits over hits and misses since the cache started.", &S::hit_ratio},
      Metric{"evictions_total", "Entries dropped for room (or refused admission).", &S::evictions},
      Metric{"invalidations_total", "Keys dropped by writes and the feed.", &S::invalidations},
      Metric{"bytes", "Bytes the cache's entries are charged.", &S::bytes_used},
      Metric{"entries", "Entries cached.", &S::entries});
}

}  // namespace shardkit::services
