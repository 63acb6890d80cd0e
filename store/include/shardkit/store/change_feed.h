// ChangeFeed: the ordered log of every mutation of an EntityStore.
//
// Every save, remove and expiry appends one ChangeRecord in the same write batch / transaction as
// the data it describes, so after any crash the feed and the data agree: the latest record of a
// (kind, ksid, id) is its stored value, or a tombstone if it is absent. Sequence numbers start at 1
// and are contiguous (no gaps, never reused, also across trims and reopens).
//
// Consumers (migrations, projections, remote caches) register a *position*: the sequence number of
// the next record they still need. TrimFeed() deletes only records below the lowest registered
// position; with no consumer registered nothing is trimmed (a consumer about to register must not
// find a hole). Consumer positions are persisted with the store.
//
// Thread-safety: all methods may be called from any thread; writes are serialized with the
// store's entity writes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/status.h>

namespace shardkit::store {

// kMoved is not a data change: a live migration appends it to a shard's feed when the shard's
// range moves to other shards (its cutover), right after the last change the shard took for that
// range. Its value is {"epoch":E,"to":{"<shard>":<next sequence to read there>,…}}: a consumer
// reads this feed up to the marker, then continues on each named shard's feed at the position
// given — no change missed, none seen twice (docs/migration.md, "Feed consumers").
enum class ChangeOp : uint8_t { kSave = 1, kRemove = 2, kExpire = 3, kMoved = 4 };

// "save", "remove", "expire", "moved".
std::string_view ChangeOpName(ChangeOp op);

struct ChangeRecord {
  uint64_t sequence = 0;
  uint64_t ksid = 0;
  std::string kind;
  std::string id;
  ChangeOp op = ChangeOp::kSave;
  uint64_t version = 0;  // kSave: the new version; kRemove/kExpire: the version that went away
  std::string value;     // kSave: the stored entity (compact JSON); otherwise empty (tombstone)
  int64_t expires_at_ms = 0;  // kSave: when the saved entity expires (0: never)
  // Written by ApplyReplicated: a change another store's feed already holds (a migration's copy
  // or replication). Replicators skip it, so a migration never carries its own traffic back.
  bool replicated = false;

  friend bool operator==(const ChangeRecord&, const ChangeRecord&) = default;
};

// What one retention round did (ChangeFeed::TrimRetained).
struct TrimReport {
  uint64_t trimmed = 0;              // records deleted
  std::vector<std::string> dropped;  // consumers dropped for lagging beyond max_consumer_lag_ms
};

// A registered consumer as stats and metrics show it.
struct FeedConsumerStats {
  std::string name;
  uint64_t position = 0;     // the next sequence it needs
  uint64_t lag_records = 0;  // records from its position to the head
  int64_t lag_ms = 0;        // how long ago the record at its position was written (0: at head)
};

// The feed's size: records and bytes retained, and the counters of its retention.
struct FeedStats {
  uint64_t records = 0;
  uint64_t bytes = 0;  // approximate: keys, values and a fixed overhead per record
  uint64_t first_retained = 1;
  uint64_t last_sequence = 0;
  uint64_t trimmed_total = 0;            // records trimmed since the store was opened
  uint64_t dropped_consumers_total = 0;  // consumers dropped since the store was opened
  std::vector<FeedConsumerStats> consumers;
};

class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;

  // Up to `limit` records with sequence >= from_sequence, in sequence order; fewer (or none) at
  // the end of the feed. invalid if from_sequence == 0 or limit == 0; not_found if records at or
  // above from_sequence were trimmed (the caller missed changes and must resynchronise).
  virtual Result<std::vector<ChangeRecord>> ReadChanges(uint64_t from_sequence, size_t limit) = 0;

  // The sequence number of the latest record; 0 for a store that never changed.
  virtual uint64_t LastSequence() const = 0;
  // The lowest sequence number still readable (LastSequence() + 1 when the feed is empty).
  virtual uint64_t FirstRetainedSequence() const = 0;

  // Registers `name` at `position` (the next sequence it needs). invalid if the name is empty or
  // contains NUL, or the position is below FirstRetainedSequence() or above LastSequence() + 1;
  // conflict if the name is already registered.
  virtual Status RegisterConsumer(std::string_view name, uint64_t position) = 0;
  // Moves a consumer forward. not_found for an unknown name; invalid if the position moves
  // backwards or beyond LastSequence() + 1.
  virtual Status AdvanceConsumer(std::string_view name, uint64_t position) = 0;
  // not_found for an unknown name.
  virtual Status RemoveConsumer(std::string_view name) = 0;
  // name -> position of every registered consumer.
  virtual std::map<std::string, uint64_t> Consumers() const = 0;

  // Deletes the records below the lowest registered position; returns how many were deleted
  // (0 when no consumer is registered).
  virtual Result<uint64_t> TrimFeed() = 0;

  // One retention round (StoreOptions::feed_retention; the scheduler runs it every interval):
  // deletes the records older than retention_ms, then the oldest while the feed holds more than
  // max_bytes, but never a record a consumer within max_consumer_lag_ms of the head still needs.
  // A consumer further behind than that which holds the trim back is removed (logged, counted);
  // its next read below FirstRetainedSequence() is not_found. With no consumer registered,
  // retention still trims. Deletes in bounded batches, releasing the write lock between them.
  virtual Result<TrimReport> TrimRetained() = 0;

  // The feed's records, bytes, bounds and consumers with their lag.
  virtual FeedStats Stats() const = 0;

  // Calls `wake` once, as soon as LastSequence() > after_sequence: at once on this thread if it
  // already is, else on the thread that commits such a record, right after the commit, with the
  // store's write lock held — so `wake` must only signal (notify a condition, post work), never
  // call into the store. Readers of the feed wait for a record with it instead of polling.
  // Pending wakes are dropped, not called, when the feed is destroyed.
  virtual void WhenAppended(uint64_t after_sequence, std::function<void()> wake) = 0;
};

}  // namespace shardkit::store
