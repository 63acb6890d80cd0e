// The demo's node configs: each a function of what the system has become, so an iteration changes
// the system by editing `System` and reloading the nodes whose config text changed.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace microblog {

struct System {
  std::string dir;
  // Where entry reads and writes go: the store, then the cache.
  std::string entries;
  std::vector<std::string> info_subscribers;  // who receives info:entry
  std::vector<std::string> entry_store_patterns = {"store:*,kind:entry"};
  bool index = false, social = false;
  std::vector<std::string> timeline_shards = {"-80", "80-"};
  // Timeline shards served by the node a live split added ("timeline-b"); the timeline node
  // routes their shard messages there.
  std::vector<std::string> remote_timeline_shards;
  std::map<std::string, std::string> url;  // node name -> internal tcp URL
};

std::string EntryStoreConfig(const System& s);
std::string PostConfig(const System& s);
std::string FrontConfig(const System& s);
std::string IndexConfig(const System& s);
std::string CacheConfig(const System& s);
std::string FollowConfig(const System& s);
std::string TimelineConfig(const System& s);
std::string TimelineShardsConfig(const System& s);
std::string FanoutConfig(const System& s);

}  // namespace microblog
