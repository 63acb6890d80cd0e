// FeedImpl: the ChangeFeed of a StoreImpl. It numbers change records, tracks the retained range
// and the consumers, and shares the store's write mutex so feed writes and entity writes are one
// serial order.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <shardkit/message/clock.h>
#include <shardkit/store/change_feed.h>
#include <shardkit/store/options.h>
#include <shardkit/store/scheduler.h>

#include "backend.h"
#include "feed_history.h"

namespace shardkit::store::internal {

class FeedImpl final : public ChangeFeed {
 public:
  // Schedules the retention rounds of options.feed_retention (none when its interval is 0).
  FeedImpl(Backend& backend, std::mutex& write_mu, FeedState state, const StoreOptions& options);
  ~FeedImpl() override;

  Result<std::vector<ChangeRecord>> ReadChanges(uint64_t from_sequence, size_t limit) override;
  uint64_t LastSequence() const override { return last_sequence_.load(std::memory_order_acquire); }
  uint64_t FirstRetainedSequence() const override {
    return first_retained_.load(std::memory_order_acquire);
  }
  Status RegisterConsumer(std::string_view name, uint64_t position) override;
  Status AdvanceConsumer(std::string_view name, uint64_t position) override;
  Status RemoveConsumer(std::string_view name) override;
  std::map<std::string, uint64_t> Consumers() const override;
  Result<uint64_t> TrimFeed() override;
  Result<TrimReport> TrimRetained() override;
  FeedStats Stats() const override;
  void WhenAppended(uint64_t after_sequence, std::function<void()> wake) override;

  // For the store, with the write mutex held: commits `writes` after numbering its change
  // records from LastSequence() + 1, and publishes the new last sequence if it succeeded. An
  // error after the engine applied the commit is possible (Backend::ConfirmSynced).
  Status CommitLocked(WriteSet& writes);

  // Replication positions (positions in ANOTHER store's feed, see EntityStore::ApplyReplicated)
  // are kept with the consumers under a reserved name prefix, so they commit atomically with the
  // data; they are not consumers of this feed and never hold back trimming.
  static constexpr std::string_view kReplicaPrefix = "replica$";
  uint64_t ReplicaPositionLocked(std::string_view stream) const;
  // Adds the position write to `writes`; call SetReplicaPositionLocked after a successful commit.
  static void PlanReplicaPosition(std::string_view stream, uint64_t position, WriteSet& writes);
  void SetReplicaPositionLocked(std::string_view stream, uint64_t position);

  // The shard-key field each kind's data was first written with, persisted the same way: once a
  // kind has data its shard key is fixed (a store opened with another one refuses to open).
  static constexpr std::string_view kShardKeyPrefix = "shardkey$";
  const std::map<std::string, std::string, std::less<>>& shard_keys_locked() const {
    return shard_keys_;
  }
  // The claim of a migration on this store (EntityStore::Claim), persisted the same way.
  static constexpr std::string_view kClaimPrefix = "claim$";
  const std::string& claimant_locked() const { return claimant_; }
  const std::map<std::string, uint64_t, std::less<>>& replicas_locked() const { return replicas_; }
  // Adds the claim's write (`held` false: its deletion) to `writes`.
  static void PlanClaim(std::string_view owner, bool held, WriteSet& writes);
  void SetClaimantLocked(std::string owner) { claimant_ = std::move(owner); }

  static void PlanShardKey(std::string_view kind, std::string_view field, WriteSet& writes);
  void SetShardKeyLocked(std::string_view kind, std::string_view field);

 private:
  // CommitLocked without Backend::ConfirmSynced: OK once the engine applied the commit.
  Status ApplyLocked(WriteSet& writes);
  Status CheckPosition(uint64_t position) const;
  // Deletes the records below `below` (> FirstRetainedSequence()); call with write_mu_ held.
  Status TrimBelowLocked(uint64_t below);
  // The lowest position of a registered consumer, or `limit` if none is lower.
  uint64_t LowestConsumerLocked(uint64_t limit) const;
  // Removes the consumers behind `target` that lag beyond max_consumer_lag_ms; returns the
  // target lowered to the positions of the others. Call with write_mu_ held.
  Result<uint64_t> DropLaggardsLocked(uint64_t target, int64_t now_ms,
                                      std::vector<std::string>& dropped);
  // Calls (and forgets) every wake waiting for a record up to `sequence`.
  void WakeUpTo(uint64_t sequence);

  Backend& backend_;
  std::mutex& write_mu_;
  std::atomic<uint64_t> last_sequence_;
  std::atomic<uint64_t> first_retained_;
  std::map<std::string, uint64_t, std::less<>> consumers_;  // guarded by write_mu_
  std::map<std::string, uint64_t, std::less<>>
      replicas_;  // guarded by write_mu_: stream -> position
  std::map<std::string, std::string, std::less<>>
      shard_keys_;        // guarded by write_mu_: kind -> field
  std::string claimant_;  // guarded by write_mu_; empty: unclaimed
  const FeedRetention retention_;
  const Clock& clock_;
  Scheduler& scheduler_;
  FeedHistory history_;         // guarded by write_mu_
  uint64_t trimmed_total_ = 0;  // guarded by write_mu_
  uint64_t dropped_total_ = 0;  // guarded by write_mu_
  Scheduler::TaskId trim_task_ = 0;
  std::mutex wakes_mu_;  // after write_mu_ when both are held
  std::vector<std::pair<uint64_t, std::function<void()>>> wakes_;  // guarded by wakes_mu_
};

}  // namespace shardkit::store::internal
