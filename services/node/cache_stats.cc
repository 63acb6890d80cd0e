#include "cache_stats.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "feed_stats.h"
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
  auto caches = Caches(directory);
  if (caches.empty()) return {};
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    for (const auto& [cache, stats] : caches)
      out += fmt::format("{}{{cache=\"{}\"}} {}\n", name, LabelValue(cache), value(stats));
  };
  using S = cache::CacheStats;
  family("shardkit_cache_hits_total", "counter", "Loads answered from the cache.",
         [](const S& s) { return s.hits; });
  family("shardkit_cache_misses_total", "counter", "Loads the cache sent to the store.",
         [](const S& s) { return s.misses; });
  family("shardkit_cache_hit_ratio", "gauge", "Hits over hits and misses since the cache started.",
         [](const S& s) { return s.hit_ratio(); });
  family("shardkit_cache_evictions_total", "counter",
         "Entries dropped for room (or refused admission).",
         [](const S& s) { return s.evictions; });
  family("shardkit_cache_invalidations_total", "counter", "Keys dropped by writes and the feed.",
         [](const S& s) { return s.invalidations; });
  family("shardkit_cache_bytes", "gauge", "Bytes the cache's entries are charged.",
         [](const S& s) { return s.bytes_used; });
  family("shardkit_cache_entries", "gauge", "Entries cached.",
         [](const S& s) { return s.entries; });
  return out;
}

}  // namespace shardkit::services
