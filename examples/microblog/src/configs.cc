#include "configs.h"

#include <fmt/format.h>

namespace microblog {
namespace {

std::string NodeHeader(const std::string& name, bool external_http = false) {
  std::string toml = fmt::format(R"([node]
name = "{}"
threads = 1
stop_grace_ms = 2000
)",
                                 name);
  if (external_http) {
    toml += R"(
[[listener]]               # the entry point for clients: internal properties stripped, no sys:*
url = "http://127.0.0.1:0"
external = true
)";
  }
  toml += R"(
[[listener]]               # internal: other nodes, reloads, shardkit act
url = "tcp://127.0.0.1:0"

[[listener]]               # internal: /metrics, /health, POST /act for curl
url = "http://127.0.0.1:0"
)";
  return toml;
}

std::string Route(const std::string& pattern, const std::string& to) {
  return fmt::format("\n[[route]]\npattern = '{}'\nto = \"{}\"\n", pattern, to);
}

std::string TomlList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += fmt::format("{}'{}'", i ? ", " : "", items[i]);
  return out + "]";
}

// A RocksDB store per timeline shard, its data under <dir>/data/<node>.<shard>.
std::string TimelineStores(const System& s, const std::string& node,
                           const std::vector<std::string>& shards) {
  std::string toml;
  for (const auto& shard : shards) {
    toml += fmt::format(R"(
[[service]]
name = "timeline-shard{2}"
type = "store"
backend = "rocksdb"
path = "{0}/data/{1}.{2}"
shard = "{2}"
)",
                        s.dir, node, shard);
  }
  return toml;
}

}  // namespace

std::string EntryStoreConfig(const System& s) {
  return NodeHeader("entry-store") + fmt::format(R"(
[[service]]
name = "entry-store"
type = "store"
backend = "rocksdb"
path = "{}/data/entries"
patterns = {}
)",
                                                 s.dir, TomlList(s.entry_store_patterns));
}

std::string PostConfig(const System& s) {
  std::string toml = NodeHeader("post") + R"(
[[service]]
name = "post"
type = "microblog.post"
)" + Route("store:*,kind:entry", s.entries);
  if (!s.info_subscribers.empty()) {
    toml += fmt::format(R"(
[[service]]                # info:entry goes to every subscriber before the post is answered
name = "info"
type = "microblog.broadcast"
patterns = ["info:entry"]
to = {}
)",
                        TomlList(s.info_subscribers));
  }
  return toml;
}

std::string FrontConfig(const System& s) {
  std::string toml = NodeHeader("front", true) + Route("post:entry", s.url.at("post")) +
                     Route("store:load,kind:entry", s.entries) +
                     Route("store:list,kind:entry", s.entries);
  if (s.index) toml += Route("search:query", s.url.at("index"));
  if (s.social) {
    toml += Route("follow:*", s.url.at("follow")) + Route("timeline:list", s.url.at("timeline"));
  }
  return toml;
}

std::string IndexConfig(const System&) {
  return NodeHeader("index") + R"(
[[service]]                # info:entry -> search:insert (to itself), search:query
name = "index"
type = "microblog.index"
)";
}

std::string CacheConfig(const System& s) {
  return NodeHeader("entry-cache") + R"(
[[service]]
name = "entry-cache"
type = "cache"
patterns = ['store:*,kind:entry', 'sys:cache,cmd:stats,name:"entry-cache"']
)" + Route("store:*,kind:entry,cache:true", s.url.at("entry-store"));
}

std::string FollowConfig(const System& s) {
  return NodeHeader("follow") + fmt::format(R"(
[[service]]
name = "follow"
type = "microblog.follow"

[[service]]
name = "follow-store"
type = "store"
backend = "rocksdb"
path = "{}/data/follows"
patterns = ["store:*,kind:follow"]
)",
                                            s.dir);
}

std::string TimelineConfig(const System& s) {
  std::string toml = NodeHeader("timeline") + fmt::format(R"(
[[service]]                # a user's timeline rows live on one shard: sharded by user
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
path = "{0}/data/timeline-map.json"
shard_keys = {{ timeline = "user" }}

[[service]]
name = "timeline"
type = "microblog.timeline"

[[service]]
name = "router"
type = "shard-router"
patterns = ["store:*,kind:timeline"]

[[service]]
name = "migrator"
type = "migrator"
dir = "{0}/data/migrations"
)",
                                                          s.dir);
  toml += TimelineStores(s, "timeline", s.timeline_shards);
  for (const auto& shard : s.remote_timeline_shards)
    toml += Route(fmt::format(R"(store:*,kind:*,shard:"{}")", shard), s.url.at("timeline-b"));
  return toml;
}

// A node added for a split's targets: its map follows the timeline node's (the authority), so
// each store's guard takes its range the moment a cutover names it.
std::string TimelineShardsConfig(const System& s) {
  return NodeHeader("timeline-b") +
         fmt::format(R"(
[[service]]
name = "map"
type = "shard-map"
from = "{}"
refresh_ms = 0
)",
                     s.url.at("timeline")) +
         TimelineStores(s, "timeline-b", s.remote_timeline_shards);
}

std::string FanoutConfig(const System& s) {
  return NodeHeader("fanout") + R"(
[[service]]                # info:entry -> follow:list,kind:followers -> timeline:insert each
name = "fanout"
type = "microblog.fanout"
)" + Route("follow:*", s.url.at("follow")) +
         Route("timeline:*", s.url.at("timeline"));
}

}  // namespace microblog
