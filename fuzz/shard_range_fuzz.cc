// The shard-range notation ("40-80", "-40", "c0-", "-", "80-@sqlite") and shard maps built from
// it. Input: one range per line. An accepted range must print canonically and parse back to
// itself; an accepted map must cover the keyspace with every ksid owned by a shard containing it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/shard/shard_map.h>

#include "check.h"

namespace shard = shardkit::shard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> names;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    names.emplace_back(line);
    if (auto range = shard::ParseRange(line); range.ok()) {
      const std::string canonical = shard::FormatRange(*range);
      auto again = shard::ParseRange(canonical);
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(shard::FormatRange(*again) == canonical);
    }
    if (auto name = shard::CanonicalShardName(line); name.ok()) {
      auto again = shard::CanonicalShardName(*name);
      FUZZ_CHECK(again.ok() && *again == *name);
    }
  }
  auto map = shard::ShardMap::Make(7, names);
  if (!map.ok()) return 0;
  FUZZ_CHECK(!map->shards().empty());
  // Find is a linear scan: checking it for every shard of a 2,000-line input made each run
  // quadratic (about 1,200 runs/s); 64 shards spread over the map check the same code.
  const auto& shards = map->shards();
  for (size_t i = 0; i < shards.size(); i += std::max<size_t>(1, shards.size() / 64)) {
    FUZZ_CHECK(map->Find(shards[i].name) == &shards[i]);
    FUZZ_CHECK(&map->ShardFor(shards[i].range.begin) == &shards[i]);
  }
  FUZZ_CHECK(map->Find(shards.back().name) == &shards.back());
  for (uint64_t ksid : {uint64_t{0}, uint64_t{1} << 63, ~uint64_t{0}})
    FUZZ_CHECK(map->ShardFor(ksid).range.Contains(ksid));
  return 0;
}
