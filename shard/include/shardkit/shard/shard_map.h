// ShardMap: which shard owns which part of the keyspace, at which epoch.
//
// Shards own half-open ksid ranges written in Vitess notation: hex byte strings for the bounds,
// an empty bound meaning the start or the end of the keyspace:
//   "-40"   [0x0000000000000000, 0x4000000000000000)
//   "40-80" [0x4000000000000000, 0x8000000000000000)
//   "c0-"   [0xc000000000000000, end of keyspace]
//   "-"     the whole keyspace (one shard)
// A bound has 2 to 16 hex digits (whole bytes), "4080" meaning 0x4080000000000000.
//
// A shard name is its range, optionally tagged with its owner: "80-@sqlite". The tag lets a
// replacement (same range, another store or node) be routed apart from the shard it replaces.
//
// A valid map covers the keyspace exactly: no gap, no overlap. Every change of the map increments
// its epoch; routed messages carry the epoch so a shard can refuse a message routed by a stale map.
//
// The map also fixes each kind's shard key: the top-level entity field whose value is hashed
// (default "id"). Once a kind has data its shard key never changes (ShardRouter refuses it).
//
// Thread-safety: ShardMap is an immutable value once built. ShardMapHolder is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/status.h>
#include <shardkit/message/thread_slots.h>
#include <shardkit/store/keyspace.h>

namespace shardkit::shard {

// Parses one range in Vitess notation; errors are `invalid` and quote the range.
Result<store::KsidRange> ParseRange(std::string_view text);
// The canonical notation of a range ("40-80", "-40", "c0-", "-").
std::string FormatRange(const store::KsidRange& range);
// The canonical name of a shard: its canonical range plus "@tag" if tagged.
Result<std::string> CanonicalShardName(std::string_view text);

struct Shard {
  std::string name;  // the canonical name (range[@tag]); what `shard:<name>` carries
  store::KsidRange range;
};

class ShardMap {
 public:
  // Validates and builds a map: ranges in any order, covering the keyspace exactly.
  // Errors name the offending range: "shard map: ranges '-40' and '30-80' overlap".
  static Result<ShardMap> Make(uint64_t epoch, const std::vector<std::string>& ranges,
                               std::map<std::string, std::string> shard_keys = {});

  uint64_t epoch() const { return epoch_; }
  // In keyspace order.
  const std::vector<Shard>& shards() const { return shards_; }
  // The shard owning `ksid`.
  const Shard& ShardFor(uint64_t ksid) const;
  // The shard named `name` (canonical notation), or nullptr.
  const Shard* Find(std::string_view name) const;
  // The shard key field of `kind` ("id" unless configured).
  const std::string& ShardKeyOf(std::string_view kind) const;
  const std::map<std::string, std::string>& shard_keys() const { return shard_keys_; }

  // A copy with another epoch and the same shards (for tests and migrations).
  ShardMap WithEpoch(uint64_t epoch) const;

 private:
  uint64_t epoch_ = 0;
  std::vector<Shard> shards_;
  std::map<std::string, std::string> shard_keys_;
};

// The current map of a router or a shard: read lock-free-ish, replaced by compare-and-swap.
class ShardMapHolder {
 public:
  explicit ShardMapHolder(ShardMap initial);

  std::shared_ptr<const ShardMap> Current() const;
  // Replaces the map if the current epoch is `expected_epoch` and next's epoch is greater;
  // `conflict` (naming both epochs) otherwise.
  Status CompareAndSwap(uint64_t expected_epoch, ShardMap next);
  // Called after every successful swap, with the new map, before CompareAndSwap returns (e.g. to
  // persist it). If it fails, the swap is undone and its error returned.
  void OnChange(std::function<Status(const ShardMap&)> persist);

 private:
  // Every routed message reads the map, from its thread's slot; a change takes mu_ and
  // publishes to every slot.
  mutable std::mutex mu_;
  SnapshotSlots<ShardMap> current_;
  std::function<Status(const ShardMap&)> persist_;  // guarded by mu_
};

}  // namespace shardkit::shard
