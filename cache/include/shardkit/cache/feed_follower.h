// FeedFollower: keeps a cache correct when other nodes write behind its back, by following the
// stores' change feeds (`store:changes`) and invalidating every key they touch.
//
// Each source is a store:changes request template (e.g. {"store":"changes","kind":"entry",
// "shard":"-80"}); the follower adds `from` and `limit`. Positions (the next sequence number per
// source) are saved to `state_path` after each batch is applied, so after a restart the follower
// replays from where it stopped: no invalidation is lost. If a source's feed was trimmed past the
// saved position, changes were missed: the follower clears the whole cache and continues from the
// feed's end. A source without a saved position starts at the feed's current end.
//
// Thread-safety: PollOnce may be called from one thread at a time; Start runs it on a background
// thread until Stop (or destruction).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <shardkit/cache/entity_cache.h>
#include <shardkit/message/bus.h>

namespace shardkit::cache {

struct FeedSource {
  std::string name;  // stable: positions are saved under it
  Message request;   // the store:changes template
};

struct FeedFollowerOptions {
  std::vector<FeedSource> sources;
  std::string state_path;  // file of positions; empty: not saved
  int poll_interval_ms = 100;
  size_t batch = 1000;
};

class FeedFollower {
 public:
  FeedFollower(Bus& bus, std::shared_ptr<EntityCache> cache, FeedFollowerOptions options);
  ~FeedFollower();

  // Reads every source from its position to the end, invalidating; returns how many changes were
  // applied, or the first error (positions of sources read before it are kept).
  Result<uint64_t> PollOnce();
  void Start();
  void Stop();

  // The next sequence number wanted from `source` (0 before the first poll).
  uint64_t position(const std::string& source) const;

 private:
  Status Load();
  Status Save() const;

  Bus& bus_;
  std::shared_ptr<EntityCache> cache_;
  FeedFollowerOptions options_;
  std::map<std::string, uint64_t> positions_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace shardkit::cache
