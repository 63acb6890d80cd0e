#include "store_impl.h"

#include <algorithm>

#include "entity_json.h"
#include "list_query.h"
#include "receipt.h"
#include "save_plan.h"
#include "shardkit/message/json.h"
#include "validation.h"

namespace shardkit::store::internal {
namespace {

constexpr size_t kPurgeBatch = 1000;

// A write to an entity that is a cross-shard move marker: the shard router completes the move
// first (docs/sharding.md), so a client sees this only when it writes to a shard directly.
Status MovingConflict(std::string_view kind, std::string_view id) {
  return Status::Conflict("moving$: " + std::string(kind) + " \"" + std::string(id) +
                              "\" is moving to another shard; a shard router completes the move",
                          R"({"field":"moving$"})");
}

// The cross-shard move rules of a save against the live row it replaces, if any
// (docs/sharding.md, "Moving an entity between shards"). Clears `present` when the row is a
// tombstone the save replaces.
Status CheckMoveRules(const ValidSave& save, const StoredHeader* live, bool& present) {
  using Step = SaveRequest::MoveStep;
  const MoveState state = live ? live->move : MoveState::kNone;
  if (state == MoveState::kMoving) return MovingConflict(save.kind, save.id);
  // A tombstone is absent to saves (versions start again), but a router's save that found none
  // there must not replace it: it may have missed the entity moving away.
  if (state == MoveState::kMoved) {
    if (save.move == Step::kMark) return MovingConflict(save.kind, save.id);
    present = save.observed_version && save.move != Step::kInsert &&
              *save.observed_version != live->version;
  }
  const uint64_t version = live ? live->version : 0;
  if (save.move == Step::kInsert && present) {
    return Status::Conflict("id: " + save.kind + " \"" + save.id + "\" already exists at version " +
                                std::to_string(version) +
                                " (a moved entity is inserted where it is absent)",
                            JsonObject().Add("field", "id").Add("version", version).str());
  }
  const uint64_t actual = present ? version : 0;
  const bool replaces_tombstone = state == MoveState::kMoved && !present;
  if (save.observed_version && !replaces_tombstone && *save.observed_version != actual) {
    return Status::Conflict("observed_version: the shard router found " +
                                std::to_string(*save.observed_version) + ", the store has " +
                                std::to_string(actual),
                            JsonObject()
                                .Add("field", "observed_version")
                                .Add("expected", *save.observed_version)
                                .Add("actual", actual)
                                .str());
  }
  return Status::Ok();
}

Status NotFound(std::string_view kind, std::string_view id) {
  return Status::NotFound("no " + std::string(kind) + " with id \"" + std::string(id) + "\"");
}

IdGenerator* OwnedIds(const StoreOptions& options, std::unique_ptr<IdGenerator>& owned) {
  if (options.id_generator != nullptr) return options.id_generator;
  owned = std::make_unique<IdGenerator>(0, options.clock);
  return owned.get();
}

}  // namespace

Result<std::unique_ptr<EntityStore>> NewStoreOn(std::unique_ptr<Backend> backend,
                                                const StoreOptions& options) {
  Result<FeedState> state = backend->LoadFeedState();
  if (!state.ok()) return state.status();
  auto store = std::make_unique<StoreImpl>(std::move(backend), options, std::move(state).value());
  if (Status s = store->CheckShardKeys(); !s.ok()) return s;
  return std::unique_ptr<EntityStore>(std::move(store));
}

namespace {
std::string ShardKeyOf(const StoreOptions& options, std::string_view kind) {
  auto it = options.shard_key_fields.find(std::string(kind));
  return it == options.shard_key_fields.end() ? "id" : it->second;
}
}  // namespace

Status StoreImpl::CheckShardKeys() {
  std::lock_guard lock(write_mu_);
  for (const auto& [kind, field] : feed_.shard_keys_locked()) {
    std::string wanted = ShardKeyOf(options_, kind);
    if (wanted != field) {
      return Status::Invalid("shard_key_fields: kind '" + kind + "' already has data sharded by '" +
                                 field + "'; its shard key cannot change to '" + wanted + "'",
                             "{\"field\":\"shard_key_fields\"}");
    }
  }
  return Status::Ok();
}

std::vector<std::pair<std::string, std::string>> StoreImpl::PlanNewShardKeys(WriteSet& writes) {
  std::vector<std::pair<std::string, std::string>> added;
  for (const EntityWrite& w : writes.entities) {
    if (w.remove || feed_.shard_keys_locked().count(w.row.kind)) continue;
    if (std::any_of(added.begin(), added.end(),
                    [&](const auto& a) { return a.first == w.row.kind; }))
      continue;
    added.emplace_back(w.row.kind, ShardKeyOf(options_, w.row.kind));
  }
  for (const auto& [kind, field] : added) FeedImpl::PlanShardKey(kind, field, writes);
  return added;
}

StoreImpl::StoreImpl(std::unique_ptr<Backend> backend, const StoreOptions& options,
                     FeedState feed_state)
    : options_(options),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Default()),
      ids_(*OwnedIds(options, owned_ids_)),
      backend_(std::move(backend)),
      feed_(*backend_, write_mu_, std::move(feed_state), options_) {
  if (options_.purge_interval_ms > 0) {
    // A failed round leaves the rows in place; they stay invisible and the next round retries.
    purge_task_ = scheduler().Every(std::chrono::milliseconds(options_.purge_interval_ms),
                                    [this] { (void)PurgeExpired(); });
  }
}

StoreImpl::~StoreImpl() {
  if (purge_task_ != 0) scheduler().Cancel(purge_task_);  // waits for a round in progress
}

Result<std::optional<EntityRecord>> StoreImpl::Current(std::string_view kind, std::string_view id,
                                                       const Overlay* overlay) {
  if (overlay != nullptr && !overlay->empty()) {
    auto it = overlay->find({std::string(kind), std::string(id)});
    if (it != overlay->end()) return it->second;
  }
  // A writer (it holds write_mu_) reads the row where its commits are made (Backend::GetForWrite).
  auto get = [&](uint64_t ksid) {
    return overlay != nullptr ? backend_->GetForWrite(kind, ksid, id)
                              : backend_->Get(kind, ksid, id);
  };
  if (!ShardedByField(options_, kind)) return get(Ksid(id));
  // Two reads, index then row: a reader without write_mu_ may read the index before a move of
  // the entity to another ksid and the row after it. One commit writes both, so an index entry
  // means the row exists: a row missing under one was moved meanwhile; read both again, the last
  // time under write_mu_, where no move can come between.
  bool moved = false;  // set by `read` when the row was missing under its index entry
  auto read = [&]() -> Result<std::optional<EntityRecord>> {
    Result<std::optional<uint64_t>> found = backend_->FindKsid(kind, id);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return std::optional<EntityRecord>();
    Result<std::optional<EntityRecord>> row = get(**found);
    moved = row.ok() && !row->has_value();
    return row;
  };
  for (int attempt = 0; overlay == nullptr && attempt < 3; ++attempt) {
    Result<std::optional<EntityRecord>> row = read();
    if (!moved) return row;
  }
  std::unique_lock<std::mutex> lock(write_mu_, std::defer_lock);
  if (overlay == nullptr) lock.lock();
  return read();
}

void StoreImpl::PlanRemoval(const EntityRecord& row, ChangeOp op, WriteSet& writes) {
  EntityWrite removal;
  removal.row.kind = row.kind;
  removal.row.ksid = row.ksid;
  removal.row.id = row.id;
  removal.remove = true;
  removal.previous_expires_at_ms = row.expires_at_ms;
  writes.entities.push_back(std::move(removal));
  if (ShardedByField(options_, row.kind))
    writes.id_index.push_back({row.kind, row.id, std::nullopt});
  writes.changes.push_back({0, row.ksid, row.kind, row.id, op, row.version, {}});
}

Result<StoredHeader> StoreImpl::Replaced(const ValidSave& save, const Overlay& overlay) {
  StoredHeader out;
  auto header_of = [&out](uint64_t ksid, const EntityView& row) {
    out = {true, ksid, row.version, row.expires_at_ms, MoveStateOf(row.value)};
  };
  // A row of this batch, or of a kind sharded by a field (its id index read first): as stored.
  if (!overlay.empty() || ShardedByField(options_, save.kind)) {
    Result<std::optional<EntityRecord>> current = Current(save.kind, save.id, &overlay);
    if (!current.ok()) return current.status();
    if (const std::optional<EntityRecord>& row = *current; row.has_value())
      header_of(row->ksid, ViewOf(*row));
    return out;
  }
  Result<bool> found = backend_->GetForWriteInPlace(
      save.kind, save.ksid, save.id, [&](const EntityView& row) { header_of(save.ksid, row); });
  if (!found.ok()) return found.status();
  return out;
}

Result<std::string> StoreImpl::PlanSave(ValidSave& save, int64_t now_ms, Overlay* overlay,
                                        WriteSet& writes) {
  static const Overlay kNoOverlay;
  Result<StoredHeader> current = Replaced(save, overlay != nullptr ? *overlay : kNoOverlay);
  if (!current.ok()) return current.status();
  const bool live = current->found && !Expired(current->expires_at_ms, now_ms);
  bool present = live;  // false for a tombstone this save replaces
  if (Status s = CheckMoveRules(save, live ? &*current : nullptr, present); !s.ok()) return s;
  const uint64_t current_version = present ? current->version : 0;
  if (save.insert_only && present) {
    return Status::Conflict(
        "id: " + save.kind + " \"" + save.id + "\" already exists (insert only)",
        JsonObject().Add("field", "id").Add("version", current_version).str());
  }
  if (save.move != SaveRequest::MoveStep::kInsert && save.expected_version &&
      *save.expected_version != current_version) {
    return Status::Conflict("version: expected " + std::to_string(*save.expected_version) +
                                ", found " + std::to_string(current_version),
                            JsonObject()
                                .Add("field", "version")
                                .Add("expected", *save.expected_version)
                                .Add("actual", current_version)
                                .str());
  }
  const uint64_t version =
      save.move == SaveRequest::MoveStep::kInsert ? save.at_version : current_version + 1;
  std::string value = RenderStored(save.ent, save.id, version, save.ent_bytes);
  if (value.size() > options_.max_value_bytes) {
    return Status::InvalidField("ent", "stored entity of " + std::to_string(value.size()) +
                                           " bytes is above the limit of " +
                                           std::to_string(options_.max_value_bytes));
  }
  int64_t previous_expiry = 0;
  if (current->found) {
    if (current->ksid != save.ksid) {
      // A changed shard-key field moves the entity: the old key goes, with its own record.
      PlanRemoval({save.kind, current->ksid, save.id, {}, current->version, current->expires_at_ms},
                  live ? ChangeOp::kRemove : ChangeOp::kExpire, writes);
    } else {
      previous_expiry = current->expires_at_ms;
    }
  }
  // The change record and the reply copy the stored json; the row takes the planned one.
  writes.changes.push_back(
      {0, save.ksid, save.kind, save.id, ChangeOp::kSave, version, value, save.expires_at_ms});
  std::string stored = value;
  EntityWrite& write = writes.entities.emplace_back();
  write.row = {std::move(save.kind), save.ksid, std::move(save.id),
               std::move(value),     version,   save.expires_at_ms};
  write.previous_expires_at_ms = previous_expiry;
  const EntityRecord& row = write.row;
  if (ShardedByField(options_, row.kind)) writes.id_index.push_back({row.kind, row.id, row.ksid});
  if (overlay != nullptr) (*overlay)[{row.kind, row.id}] = row;
  return stored;
}

Result<StoreImpl::ReceiptLookup> StoreImpl::LookUpReceipt(std::string_view key,
                                                          uint64_t fingerprint, int64_t now_ms) {
  if (!Keyed(key)) return ReceiptLookup{};
  Result<std::optional<std::string>> body = backend_->GetReceipt(key);
  if (!body.ok()) return body.status();
  if (!body->has_value()) return ReceiptLookup{};
  std::optional<Receipt> receipt = DecodeReceipt(**body);
  if (!receipt)
    return Status::Internal("corrupt idempotency receipt under '" + std::string(key) + "'");
  // Expired but not purged yet: as if absent; the new receipt replaces it.
  if (receipt->expires_at_ms <= now_ms) return ReceiptLookup{std::nullopt, receipt->expires_at_ms};
  if (receipt->fingerprint != fingerprint) return KeyReusedError(key);
  return ReceiptLookup{std::move(receipt->answers), 0};
}

void StoreImpl::PlanReceipt(std::string_view key, uint64_t fingerprint,
                            const std::vector<Result<std::string>>& answers, int64_t now_ms,
                            const ReceiptLookup& found, WriteSet& writes) {
  if (found.stale_expiry != 0)
    writes.receipts.push_back({std::string(key), found.stale_expiry, {}, true});
  Receipt receipt{fingerprint, now_ms + options_.idempotency_ttl_ms, answers};
  writes.receipts.push_back({std::string(key), receipt.expires_at_ms, EncodeReceipt(receipt)});
}

Status StoreImpl::PurgeReceiptsLocked(int64_t now_ms) {
  for (;;) {
    Result<std::vector<std::pair<std::string, int64_t>>> expired =
        backend_->ExpiredReceipts(now_ms, kPurgeBatch);
    if (!expired.ok()) return expired.status();
    if (expired->empty()) return Status::Ok();
    WriteSet writes;
    for (auto& [key, expires_at_ms] : *expired)
      writes.receipts.push_back({std::move(key), expires_at_ms, {}, true});
    if (Status s = feed_.CommitLocked(writes); !s.ok()) return s;
    if (writes.receipts.size() < kPurgeBatch) return Status::Ok();
  }
}

Result<std::string> StoreImpl::Save(const SaveRequest& request, std::string_view idempotency_key) {
  std::vector<Result<std::string>> results =
      SaveItems(std::span<const SaveRequest>(&request, 1), idempotency_key);
  if (results.size() != 1) return Status::Internal("corrupt idempotency receipt: not one answer");
  return std::move(results.front());
}

std::vector<Result<std::string>> StoreImpl::SaveBatch(const std::vector<SaveRequest>& requests,
                                                      std::string_view idempotency_key) {
  return SaveItems(requests, idempotency_key);
}

std::vector<Result<std::string>> StoreImpl::SaveItems(std::span<const SaveRequest> requests,
                                                      std::string_view idempotency_key) {
  const bool keyed = Keyed(idempotency_key);
  if (keyed) {
    if (Status s = CheckIdempotencyKey(idempotency_key); !s.ok())
      return std::vector<Result<std::string>>(requests.size(), s);
  }
  // Parsing and validation need no lock; only the read-check-write part is serialized. The
  // parsed entities share one pool whose first block is here: a usual one allocates nothing.
  alignas(16) char first_block[4096];
  rapidjson::MemoryPoolAllocator<> pool(first_block, sizeof first_block);
  std::vector<Result<ValidSave>> valid;
  valid.reserve(requests.size());
  for (const SaveRequest& request : requests) {
    valid.push_back(ValidateSave(request, options_, ids_, clock_.NowMs(), pool));
  }
  std::vector<Result<std::string>> results;
  results.reserve(requests.size());
  std::lock_guard lock(write_mu_);
  const int64_t now_ms = clock_.NowMs();
  const uint64_t fingerprint = keyed ? FingerprintSaves(requests) : 0;
  Result<ReceiptLookup> found = LookUpReceipt(idempotency_key, fingerprint, now_ms);
  if (!found.ok()) return std::vector<Result<std::string>>(requests.size(), found.status());
  if (found->replay) return std::move(*found->replay);
  Overlay overlay;
  Overlay* tracked = requests.size() > 1 ? &overlay : nullptr;
  WriteSet& writes = save_writes_;
  struct ResetAfter {
    WriteSet& writes;
    ~ResetAfter() { writes.Reset(); }
  } reset_after{writes};
  for (Result<ValidSave>& save : valid) {
    results.push_back(save.ok() ? PlanSave(*save, now_ms, tracked, writes) : save.status());
  }
  if (writes.empty()) return results;
  if (keyed) PlanReceipt(idempotency_key, fingerprint, results, now_ms, *found, writes);
  auto new_keys = PlanNewShardKeys(writes);
  if (Status s = feed_.CommitLocked(writes); !s.ok()) {
    for (auto& r : results) {
      if (r.ok()) r = s;
    }
    return results;
  }
  for (const auto& [kind, field] : new_keys) feed_.SetShardKeyLocked(kind, field);
  return results;
}

Result<std::string> StoreImpl::Load(std::string_view kind, std::string_view id) {
  Result<EntityRecord> record = LoadRecord(kind, id);
  if (!record.ok()) return record.status();
  return std::move(record->value);
}

Result<EntityRecord> StoreImpl::LoadRecord(std::string_view kind, std::string_view id) {
  if (Status s = CheckKind(kind); !s.ok()) return s;
  if (Status s = CheckId(id); !s.ok()) return s;
  Result<std::optional<EntityRecord>> current = Current(kind, id, nullptr);
  if (!current.ok()) return current.status();
  if (!current->has_value() || Expired((*current)->expires_at_ms, clock_))
    return NotFound(kind, id);
  return std::move(**current);
}

Status StoreImpl::LoadInPlace(std::string_view kind, std::string_view id,
                              const std::function<void(const EntityView&)>& use) {
  // A kind sharded by a field reads its id index first (Current): through the record.
  if (ShardedByField(options_, kind)) return EntityStore::LoadInPlace(kind, id, use);
  if (Status s = CheckKind(kind); !s.ok()) return s;
  if (Status s = CheckId(id); !s.ok()) return s;
  // What the callback needs, behind one pointer: a std::function holds that much without
  // allocating.
  struct Read {
    const Clock& clock;
    const std::function<void(const EntityView&)>& use;
    bool live = false;
  } read{clock_, use};
  Result<bool> found = backend_->GetInPlace(kind, Ksid(id), id, [r = &read](const EntityView& row) {
    r->live = !Expired(row.expires_at_ms, r->clock);
    if (r->live) r->use(row);
  });
  if (!found.ok()) return found.status();
  return read.live ? Status::Ok() : NotFound(kind, id);
}

std::vector<Result<std::string>> StoreImpl::LoadBatch(const std::vector<EntityRef>& refs) {
  std::vector<Result<std::string>> results;
  results.reserve(refs.size());
  for (const EntityRef& ref : refs) results.push_back(Load(ref.kind, ref.id));
  return results;
}

Result<ListPage> StoreImpl::List(const Query& query) {
  Result<QueryPlan> plan = PlanQuery(query);
  if (!plan.ok()) return plan.status();
  Result<Selection> selection = SelectRows(*backend_, *plan, clock_.NowMs());
  if (!selection.ok()) return selection.status();
  ListPage page;
  page.next_cursor = std::move(selection->next_cursor);
  page.items.reserve(selection->rows.size());
  for (EntityRecord& row : selection->rows) {
    if (plan->fields.empty()) {
      page.items.push_back(std::move(row.value));
      continue;
    }
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseFullPrecisionFlag>(row.value.data(), row.value.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return Status::Internal("corrupt stored entity " + row.kind + "/" + row.id);
    }
    page.items.push_back(Project(doc, plan->fields));
  }
  return page;
}

Result<std::string> StoreImpl::Remove(std::string_view kind, std::string_view id,
                                      std::string_view idempotency_key) {
  if (Status s = CheckKind(kind); !s.ok()) return s;
  if (Status s = CheckId(id); !s.ok()) return s;
  const bool keyed = Keyed(idempotency_key);
  if (keyed) {
    if (Status s = CheckIdempotencyKey(idempotency_key); !s.ok()) return s;
  }
  std::lock_guard lock(write_mu_);
  const int64_t now_ms = clock_.NowMs();
  const uint64_t fingerprint = keyed ? FingerprintRemove(kind, id) : 0;
  Result<ReceiptLookup> found = LookUpReceipt(idempotency_key, fingerprint, now_ms);
  if (!found.ok()) return found.status();
  if (found->replay) {
    if (found->replay->size() != 1)
      return Status::Internal("corrupt idempotency receipt: not one answer");
    return std::move(found->replay->front());
  }
  const Overlay none;
  Result<std::optional<EntityRecord>> current = Current(kind, id, &none);
  if (!current.ok()) return current.status();
  if (!current->has_value() || Expired(**current, now_ms)) return NotFound(kind, id);
  const MoveState state = MoveStateOf((*current)->value);
  if (state == MoveState::kMoved) return NotFound(kind, id);  // the entity lives elsewhere
  if (state == MoveState::kMoving) return MovingConflict(kind, id);
  WriteSet writes;
  PlanRemoval(**current, ChangeOp::kRemove, writes);
  if (keyed) PlanReceipt(idempotency_key, fingerprint, {(*current)->value}, now_ms, *found, writes);
  if (Status s = feed_.CommitLocked(writes); !s.ok()) return s;
  return std::move((*current)->value);
}

Status StoreImpl::ClaimKey(std::string_view key, std::string_view request) {
  if (!Keyed(key)) return Status::Ok();
  if (Status s = CheckIdempotencyKey(key); !s.ok()) return s;
  const uint64_t fingerprint = FingerprintClaim(request);
  std::lock_guard lock(write_mu_);
  const int64_t now_ms = clock_.NowMs();
  Result<ReceiptLookup> found = LookUpReceipt(key, fingerprint, now_ms);
  if (!found.ok()) return found.status();
  if (found->replay) return Status::Ok();
  WriteSet writes;
  PlanReceipt(key, fingerprint, {std::string("{}")}, now_ms, *found, writes);
  return feed_.CommitLocked(writes);
}

Result<bool> StoreImpl::ClearMoveMarker(std::string_view kind, std::string_view id,
                                        uint64_t version) {
  if (Status s = CheckKind(kind); !s.ok()) return s;
  if (Status s = CheckId(id); !s.ok()) return s;
  std::lock_guard lock(write_mu_);
  const Overlay none;
  Result<std::optional<EntityRecord>> current = Current(kind, id, &none);
  if (!current.ok()) return current.status();
  // Only the marker of this move: the id may since have moved back here as an entity.
  if (!current->has_value() || (*current)->version != version ||
      MoveStateOf((*current)->value) != MoveState::kMoving)
    return false;
  EntityRecord row = **current;
  row.value = MovedTombstone(row.value);
  row.expires_at_ms = clock_.NowMs() + kMovedTombstoneMs;
  WriteSet writes;
  writes.entities.push_back({row, false, (*current)->expires_at_ms});
  writes.changes.push_back(
      {0, row.ksid, row.kind, row.id, ChangeOp::kSave, row.version, row.value, row.expires_at_ms});
  if (Status s = feed_.CommitLocked(writes); !s.ok()) return s;
  return true;
}

Result<std::vector<std::string>> StoreImpl::RemoveWhere(const Query& query,
                                                        std::string_view idempotency_key) {
  Result<QueryPlan> plan = PlanQuery(query);
  if (!plan.ok()) return plan.status();
  const bool keyed = Keyed(idempotency_key);
  if (keyed) {
    if (Status s = CheckIdempotencyKey(idempotency_key); !s.ok()) return s;
  }
  std::lock_guard lock(write_mu_);
  const int64_t now_ms = clock_.NowMs();
  const uint64_t fingerprint = keyed ? FingerprintRemoveWhere(query) : 0;
  Result<ReceiptLookup> found = LookUpReceipt(idempotency_key, fingerprint, now_ms);
  if (!found.ok()) return found.status();
  if (found->replay) {
    std::vector<std::string> removed;
    for (Result<std::string>& answer : *found->replay) {
      if (!answer.ok()) return answer.status();
      removed.push_back(std::move(answer).value());
    }
    return removed;
  }
  Result<Selection> selection = SelectRows(*backend_, *plan, now_ms);
  if (!selection.ok()) return selection.status();
  WriteSet writes;
  std::vector<std::string> removed;
  removed.reserve(selection->rows.size());
  for (EntityRecord& row : selection->rows) {
    // A marker's move completes first; a tombstone's entity is elsewhere.
    if (MoveStateOf(row.value) != MoveState::kNone) continue;
    PlanRemoval(row, ChangeOp::kRemove, writes);
    removed.push_back(std::move(row.value));
  }
  if (!writes.empty()) {
    if (keyed) {
      std::vector<Result<std::string>> answers(removed.begin(), removed.end());
      PlanReceipt(idempotency_key, fingerprint, answers, now_ms, *found, writes);
    }
    if (Status s = feed_.CommitLocked(writes); !s.ok()) return s;
  }
  return removed;
}

Status StoreImpl::ScanRange(std::string_view kind, KsidRange range,
                            const std::function<bool(const EntityRecord&)>& visit) {
  if (!kind.empty()) {
    if (Status s = CheckKind(kind); !s.ok()) return s;
  }
  const int64_t now_ms = clock_.NowMs();
  return backend_->Scan({std::string(kind), range, std::nullopt},
                        [&](EntityRecord&& row) { return Expired(row, now_ms) || visit(row); });
}

Result<uint64_t> StoreImpl::PurgeExpired() {
  std::lock_guard lock(write_mu_);
  const int64_t now_ms = clock_.NowMs();
  uint64_t purged = 0;
  for (;;) {
    WriteSet writes;
    Status s = backend_->ScanExpired(now_ms, kPurgeBatch, [&](EntityRecord&& row) {
      PlanRemoval(row, ChangeOp::kExpire, writes);
      return true;
    });
    if (!s.ok()) return s;
    if (writes.entities.empty()) break;
    if (Status c = feed_.CommitLocked(writes); !c.ok()) return c;
    purged += writes.entities.size();
  }
  if (Status s = PurgeReceiptsLocked(now_ms); !s.ok()) return s;
  return purged;
}

}  // namespace shardkit::store::internal
