// StoreImpl: the one EntityStore implementation, over any Backend. It owns the rules every engine
// shares (validation, versions, TTL, change records, list semantics) and the write mutex that
// serializes writes; the Backend only stores rows.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>

#include <shardkit/store/entity_store.h>
#include <shardkit/store/id_generator.h>
#include <shardkit/store/scheduler.h>

#include "backend.h"
#include "feed_impl.h"
#include "save_plan.h"

namespace shardkit::store::internal {

// Wraps an opened backend into a store (loads the feed state, schedules the TTL purge).
Result<std::unique_ptr<EntityStore>> NewStoreOn(std::unique_ptr<Backend> backend,
                                                const StoreOptions& options);

class StoreImpl final : public EntityStore {
 public:
  StoreImpl(std::unique_ptr<Backend> backend, const StoreOptions& options, FeedState feed_state);
  ~StoreImpl() override;

  Result<std::string> Save(const SaveRequest& request,
                           std::string_view idempotency_key = {}) override;
  std::vector<Result<std::string>> SaveBatch(const std::vector<SaveRequest>& requests,
                                             std::string_view idempotency_key = {}) override;
  Result<std::string> Load(std::string_view kind, std::string_view id) override;
  Result<EntityRecord> LoadRecord(std::string_view kind, std::string_view id) override;
  Status LoadInPlace(std::string_view kind, std::string_view id,
                     const std::function<void(const EntityView&)>& use) override;
  std::vector<Result<std::string>> LoadBatch(const std::vector<EntityRef>& refs) override;
  Result<ListPage> List(const Query& query) override;
  Result<std::string> Remove(std::string_view kind, std::string_view id,
                             std::string_view idempotency_key = {}) override;
  Status ClaimKey(std::string_view key, std::string_view request) override;
  Result<bool> ClearMoveMarker(std::string_view kind, std::string_view id,
                               uint64_t version) override;
  Result<std::vector<std::string>> RemoveWhere(const Query& query,
                                               std::string_view idempotency_key = {}) override;
  Status ScanRange(std::string_view kind, KsidRange range,
                   const std::function<bool(const EntityRecord&)>& visit) override;
  Result<uint64_t> PurgeExpired() override;
  ChangeFeed& feed() override { return feed_; }
  StorageHealth Health() override { return backend_->Health(); }
  Status ApplyReplicated(std::string_view stream, const std::vector<ChangeRecord>& changes,
                         uint64_t position, bool assume_absent) override;
  Result<uint64_t> ReplicatedPosition(std::string_view stream) override;
  Result<std::map<std::string, uint64_t>> ReplicatedStreams() override;
  Status Claim(std::string_view owner) override;
  Status ReleaseClaim(std::string_view owner) override;
  Result<std::string> Claimant() override;

 private:
  // Rows written earlier in the same batch, by (kind, id); nullopt: removed.
  using Overlay = std::map<std::pair<std::string, std::string>, std::optional<EntityRecord>>;

  // The stored row of (kind, id), expired or not. Writers pass an overlay (empty if none) and
  // hold write_mu_; readers pass nullptr.
  Result<std::optional<EntityRecord>> Current(std::string_view kind, std::string_view id,
                                              const Overlay* overlay);
  // Save and SaveBatch: one save is not copied into a vector of one.
  std::vector<Result<std::string>> SaveItems(std::span<const SaveRequest> requests,
                                             std::string_view idempotency_key);
  // What `save` replaces (write_mu_ held): the batch's own row in `overlay` if it has one.
  Result<StoredHeader> Replaced(const ValidSave& save, const Overlay& overlay);
  // Appends the writes of one save to `writes`; the stored JSON or the item's error. `overlay`:
  // null when no later save of the same batch can read this one's row (a batch of one).
  Result<std::string> PlanSave(ValidSave& save, int64_t now_ms, Overlay* overlay, WriteSet& writes);
  // Appends the removal of `row` (with a kRemove or kExpire record) to `writes`.
  void PlanRemoval(const EntityRecord& row, ChangeOp op, WriteSet& writes);
  Scheduler& scheduler() const {
    return options_.scheduler != nullptr ? *options_.scheduler : Scheduler::Shared();
  }
  // Deletes expired receipts; call with write_mu_ held.
  Status PurgeReceiptsLocked(int64_t now_ms);
  // Whether a write with `key` records or replays a receipt (keys on, key given).
  bool Keyed(std::string_view key) const { return !key.empty() && options_.idempotency_ttl_ms > 0; }
  // What a keyed write finds under its key.
  struct ReceiptLookup {
    std::optional<std::vector<Result<std::string>>> replay;  // set: answer these, write nothing
    int64_t stale_expiry = 0;  // an expired receipt still stored under the key (0: none)
  };
  // Call with write_mu_ held. Nothing found for an unkeyed write; the reused-key conflict when the
  // live receipt is of another request.
  Result<ReceiptLookup> LookUpReceipt(std::string_view key, uint64_t fingerprint, int64_t now_ms);
  // Appends the receipt of a keyed write that changed something to `writes`.
  void PlanReceipt(std::string_view key, uint64_t fingerprint,
                   const std::vector<Result<std::string>>& answers, int64_t now_ms,
                   const ReceiptLookup& found, WriteSet& writes);
  // Adds the shard-key records of kinds written for the first time; call with write_mu_ held.
  std::vector<std::pair<std::string, std::string>> PlanNewShardKeys(WriteSet& writes);

 public:
  // invalid if a kind with data was written with another shard key than options give it.
  Status CheckShardKeys();

 private:
  const StoreOptions options_;
  const Clock& clock_;
  std::unique_ptr<IdGenerator> owned_ids_;
  IdGenerator& ids_;
  std::unique_ptr<Backend> backend_;
  std::mutex write_mu_;  // serializes every write, entity and feed
  // The writes SaveItems plans (write_mu_ held), kept from one call to the next so that a save
  // does not allocate their vectors again.
  WriteSet save_writes_;
  FeedImpl feed_;

  Scheduler::TaskId purge_task_ = 0;  // the periodic TTL purge (0: none)
};

}  // namespace shardkit::store::internal
