// FeedFollower: keeps a cache correct when other nodes write behind its back, by following the
// stores' change feeds (`store:changes`) and invalidating every key they touch.
//
// Each source is a store:changes request template (e.g. {"store":"changes","kind":"entry",
// "shard":"-80"}); the follower adds `from` and `limit`. Positions (the next sequence number per
// source) are saved to `state_path` after each batch is applied, so after a restart the follower
// replays from where it stopped: no invalidation is lost. If a source's feed was trimmed past the
// saved position, changes were missed: the follower clears the whole cache and continues from the
// feed's end. A source without a saved position starts at the feed's current end, and the cache
// is cleared then: what it held before had not been followed.
//
// Live migrations: when a source's shard moves (split, merge, replace), its feed ends with a
// `moved` marker naming the new owners and where to read them (store/change_feed.h). The
// follower retires the source and follows the new owners from those positions — the changes
// before the move on the old shard, the changes after it on the new ones: none missed, none
// twice. The new sources (named "<source>><shard>", the request with `shard` replaced) and the
// retired ones are saved with the positions, so a restart keeps following the new owners even
// though the configured sources still name the old shard.
//
// Waking: Start runs PollOnce on a background thread; when a round finds nothing, the thread sends
// each source one long-poll (store:changes with `wait_ms`, docs/messages.md) and sleeps until one
// of them answers with a change (the store answers as soon as one is committed) or all of them
// time out, so a write behind the cache's back is followed at once and an idle follower costs one
// request per source every `wait_ms`. A store that answers at once (an older node ignoring
// wait_ms) is asked again only every `poll_interval_ms`.
//
// Thread-safety: PollOnce may be called from one thread at a time; Start runs it on a background
// thread until Stop (or destruction).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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
  std::string state_path;      // file of positions; empty: not saved
  int poll_interval_ms = 100;  // least time between two rounds that found nothing
  int wait_ms = 10'000;        // how long one long-poll waits for a change
  size_t batch = 1000;
  // Optional: called for every change applied (after its invalidation), in feed order per source.
  std::function<void(std::string_view kind, std::string_view id, std::string_view op,
                     uint64_t version)>
      on_change;
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
  // The sources followed now (configured ones not retired, plus those added by moves).
  std::vector<std::string> sources() const;

 private:
  Status Load();
  Status Save() const;
  // A source seen for the first time: its position becomes the feed's end.
  Status StartAtTail(const FeedSource& source);
  // Applies what `source` holds past its position (following a move marker); the changes applied.
  Result<uint64_t> ReadSource(const FeedSource& source);

  Bus& bus_;
  std::shared_ptr<EntityCache> cache_;
  FeedFollowerOptions options_;
  // Follows a `moved` marker of map epoch `epoch` (0: unknown) of `source`: retires it, adds the
  // new owners.
  Status FollowMove(const FeedSource& source, std::string_view to_json, uint64_t epoch);
  // A marker of an older move than the one that last named `source` as a new owner (read late,
  // after that newer move): the position to read on from, or nullopt to follow the marker.
  std::optional<uint64_t> StaleMarker(const std::string& source, uint64_t epoch);

  std::map<std::string, uint64_t> positions_;
  std::vector<FeedSource> added_;  // sources added by moves
  std::set<std::string> retired_;  // sources whose shard moved
  // A source a newer move named while it still had an older move's marker ahead: that move's
  // epoch and the position it gave (persisted).
  struct Resume {
    uint64_t epoch = 0;
    uint64_t position = 0;
  };
  std::map<std::string, Resume> resume_;
  // Sleeps until a source may have changes (see above) or Stop.
  void WaitForChange();

  std::atomic<bool> stop_{false};
  std::thread thread_;
  // The long-polls of the current wait; Stop wakes it.
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    size_t answered = 0;         // guarded by mu
    bool changed = false;        // guarded by mu: an answer had changes
    bool stop = false;           // guarded by mu
    std::set<std::string> open;  // guarded by mu: sources with a long-poll not yet answered
  };
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
};

}  // namespace shardkit::cache
