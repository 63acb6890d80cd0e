// EntityStore: a durable collection of JSON entities grouped by kind, with optimistic concurrency,
// TTLs and a change feed. One interface, three backends: RocksDB, SQLite and memory (factories at
// the end). The store:* message service translates messages into these calls.
//
// Entities are JSON objects. The store owns two top-level fields: "id" (a string, unique per kind)
// and "version" (1 on insert, +1 per update). An entity is stored under the key
// (kind, ksid, id) where ksid = Ksid(shard key) (keyspace.h): listing a kind is a prefix scan and
// a ksid range is one contiguous key range. See docs/store.md for the on-disk layout.
//
// Errors (Status codes from <shardkit/message/status.h>):
//   invalid    bad input; the message starts with the offending field ("kind: must not be empty")
//              and details are {"field":"kind"}. Nothing was written.
//   not_found  no such live entity.
//   conflict   expected version mismatch or insert-only on an existing id.
//   internal   the engine failed (I/O error, corruption).
// An expired entity (TTL passed) is absent for every read and every precondition, even before
// PurgeExpired() deletes it.
//
// Idempotency keys (docs/store.md): every write takes an optional key. A write with a key that
// changes anything records a receipt — the key, a fingerprint of the request and the answer — in
// the same atomic write as its data, so it survives exactly when the data does. A later write
// with that key changes nothing and gets the recorded answer again; one whose request differs
// answers `conflict` with details {"field":"meta$.idempotency_key"}. A write that changed nothing
// (invalid, conflict, not_found) records no receipt: its retry is judged afresh. Receipts are kept
// StoreOptions::idempotency_ttl_ms and purged with expired entities; they are not in the change
// feed and do not move with a migrated range.
//
// Thread-safety: every method may be called concurrently from any thread. Writes (saves, removes,
// purges, feed changes) are serialized internally, so each is atomic and the change feed is in
// commit order; reads run in parallel with writes and see committed state only. Calls block on
// disk I/O: call them from a worker pool, not an I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/status.h>
#include <shardkit/store/change_feed.h>
#include <shardkit/store/keyspace.h>
#include <shardkit/store/options.h>
#include <shardkit/store/query.h>

namespace shardkit::store {

struct SaveRequest {
  std::string kind;
  // The entity id. Empty: the "id" of `ent` if it has one (it must then be a string), else a
  // generated one. If both are given they must be equal.
  std::string id;
  // The entity: JSON object text. Its "version" field, if any, is ignored (use expected_version).
  std::string ent;
  // Save only if the current version equals this; a missing (or expired) entity has version 0,
  // so expected_version 0 means "only if absent" and any other value fails on a missing entity.
  std::optional<uint64_t> expected_version;
  // Save only if no live entity has this id.
  bool insert_only = false;
  // The entity expires this many seconds after the save (> 0). nullopt: never. A save without a
  // ttl clears an earlier one (a save replaces the whole entity).
  std::optional<int64_t> ttl_seconds;
  // Checked like expected_version but not part of the request's identity (its idempotency
  // fingerprint): a shard router sends the version it found, so a save never lands on a copy that
  // moved to another shard meanwhile (docs/sharding.md, "Moving an entity between shards").
  std::optional<uint64_t> observed_version;
  // A step of a cross-shard move, sent by a shard router only. kMark turns the live entity into a
  // move marker: `ent` carries the reserved property "moving$" and expected_version is required.
  // kInsert writes the moved entity at exactly `at_version` where no live entity has the id
  // (expected_version is then only part of the fingerprint). Other saves refuse "moving$".
  enum class MoveStep { kNone, kMark, kInsert };
  MoveStep move = MoveStep::kNone;
  uint64_t at_version = 0;  // kInsert only
};

// The reserved property of a move marker (SaveRequest::MoveStep::kMark).
inline constexpr std::string_view kMovingField = "moving$";

struct EntityRef {
  std::string kind;
  std::string id;
};

// A stored entity with its key, as range scans see it.
struct EntityRecord {
  std::string kind;
  uint64_t ksid = 0;
  std::string id;
  std::string value;  // compact JSON with "id" and "version"
  uint64_t version = 0;
  int64_t expires_at_ms = 0;  // 0: never
};

// A stored entity read in place: the bytes stay valid only during the call that passes it.
struct EntityView {
  std::string_view value;  // compact JSON with "id" and "version"
  uint64_t version = 0;
  int64_t expires_at_ms = 0;  // 0: never
};

// Whether a store can write now. A full or read-only disk stops its writes (answered
// `unavailable`, naming the store and the cause) while reads go on; the next write after the
// cause is gone resumes them (docs/store.md, "A full disk").
struct StorageHealth {
  bool writable = true;
  std::string cause;            // why writes are refused ("disk full: …"); empty when writable
  uint64_t refused_writes = 0;  // writes refused for a disk fault since the store opened
};

class EntityStore {
 public:
  virtual ~EntityStore() = default;

  // Stores without a disk are always writable.
  virtual StorageHealth Health() { return {}; }

  // Saves (inserts or wholly replaces) one entity and returns it as stored: compact JSON with
  // "id" and "version" first. Appends one kSave change record (plus a kRemove — kExpire if it had
  // expired — for the old key when a changed shard-key field moves the entity to another ksid).
  virtual Result<std::string> Save(const SaveRequest& request,
                                   std::string_view idempotency_key = {}) = 0;

  // Saves many entities in ONE atomic write: the answers are per item, in order. An item that is
  // invalid or conflicts fails alone; all the others are written together (or, if the engine
  // fails, none is and every item answers the engine's error). Later items see earlier ones (two
  // saves of one id give versions n+1 and n+2). A key used for another request: every item
  // answers that conflict.
  virtual std::vector<Result<std::string>> SaveBatch(const std::vector<SaveRequest>& requests,
                                                     std::string_view idempotency_key = {}) = 0;

  // The live entity; not_found if absent or expired.
  virtual Result<std::string> Load(std::string_view kind, std::string_view id) = 0;
  // Load, with the entity's version and expiry, for a reader that keeps a copy (a cache must not
  // serve it past expires_at_ms). Not pure: by default Load's value with expires_at_ms 0 (never),
  // which is right for a store of your own without TTLs.
  virtual Result<EntityRecord> LoadRecord(std::string_view kind, std::string_view id) {
    auto value = Load(kind, id);
    if (!value.ok()) return value.status();
    EntityRecord record;
    record.kind = kind;
    record.id = id;
    record.value = std::move(value).value();
    return record;
  }
  // LoadRecord without copies: `use` sees the live entity where the engine holds it (RocksDB: in
  // its block cache) and copies what it keeps; it is not called for an absent or expired one
  // (not_found). By default through LoadRecord.
  virtual Status LoadInPlace(std::string_view kind, std::string_view id,
                             const std::function<void(const EntityView&)>& use) {
    auto record = LoadRecord(kind, id);
    if (!record.ok()) return record.status();
    use(EntityView{record->value, record->version, record->expires_at_ms});
    return Status::Ok();
  }
  // Load for each reference, answers in order.
  virtual std::vector<Result<std::string>> LoadBatch(const std::vector<EntityRef>& refs) = 0;

  // One page of the live entities matching `query` (query.h).
  virtual Result<ListPage> List(const Query& query) = 0;

  // Removes a live entity and returns its last value; not_found if absent or expired (or a
  // moved entity's tombstone); conflict if it is a cross-shard move marker.
  virtual Result<std::string> Remove(std::string_view kind, std::string_view id,
                                     std::string_view idempotency_key = {}) = 0;
  // The last step of a cross-shard move: the move marker of (kind, id) at `version` becomes a
  // tombstone that expires after 10 minutes; true if it did, false if there is no such
  // marker (already cleared: idempotent). Not pure, so stores of your own keep compiling; they
  // then refuse the step (and a router over them cannot finish moves).
  virtual Result<bool> ClearMoveMarker(std::string_view /*kind*/, std::string_view /*id*/,
                                       uint64_t /*version*/) {
    return Status::InvalidField("move", "this store does not take a shard router's move steps");
  }
  // Records that idempotency key `key` was used for `request` (any text that identifies the
  // request, e.g. its JSON): OK the first time and for the same request again; the reused-key
  // `conflict` (field meta$.idempotency_key) when the key's live receipt is of another request.
  // Writes only a receipt. A shard router claims a key here before a write that may touch several
  // shards (docs/sharding.md). OK without a write when keys are turned off. Not pure, so stores
  // of your own keep compiling; they then refuse it.
  virtual Status ClaimKey(std::string_view /*key*/, std::string_view /*request*/) {
    return Status::InvalidField("store", "this store does not take a shard router's key claims");
  }
  // Removes, in one atomic write, exactly the entities List(query) would return (filters, sort,
  // cursor, skip and limit apply; `fields` does not) and returns their full last values.
  // The "remove everything needs an explicit all:true" rule belongs to the message service.
  virtual Result<std::vector<std::string>> RemoveWhere(const Query& query,
                                                       std::string_view idempotency_key = {}) = 0;

  // Visits live entities with ksid in `range`, in key order (kind, ksid, id), of one kind or of
  // all kinds if `kind` is empty, until `visit` returns false. For shard splits and copies: the
  // visitor must not call back into the store.
  virtual Status ScanRange(std::string_view kind, KsidRange range,
                           const std::function<bool(const EntityRecord&)>& visit) = 0;

  // Deletes every expired entity, appending a kExpire change record for each; returns how many.
  // Also deletes expired idempotency receipts (not counted). Also runs in the background every
  // StoreOptions::purge_interval_ms.
  virtual Result<uint64_t> PurgeExpired() = 0;

  // The store's change feed; lives as long as the store.
  virtual ChangeFeed& feed() = 0;

  // --- Replication (live migration) -------------------------------------------------------------
  // Applies `changes` read from ANOTHER store's feed verbatim — a save writes the record's value,
  // version and expiry under its (kind, ksid, id); a remove or expire deletes that key — and
  // records `position` (a sequence number of the other feed) as the applied position of `stream`,
  // all in one atomic write, so a crash never applies a change twice or skips one. Each applied
  // change is appended to this store's own feed (new sequence numbers) for its own consumers.
  // Filtering by range is the caller's job. `assume_absent`: the caller guarantees no key of
  // `changes` exists here yet (a bulk copy into an emptied range), which skips a read per key.
  virtual Status ApplyReplicated(std::string_view stream, const std::vector<ChangeRecord>& changes,
                                 uint64_t position, bool assume_absent = false) = 0;
  // The position last recorded for `stream`; 0 if none.
  virtual Result<uint64_t> ReplicatedPosition(std::string_view stream) = 0;
  // Every stream with a recorded position: a store that replicated from anywhere is not fresh.
  virtual Result<std::map<std::string, uint64_t>> ReplicatedStreams() = 0;

  // --- Claims (live migration) ------------------------------------------------------------------
  // A migration claims every store it uses, and the claim is persisted in the store itself, so a
  // second migration cannot take the same store whichever coordinator starts it. Claim is
  // idempotent for its holder; `conflict` naming the holder for anyone else.
  virtual Status Claim(std::string_view owner) = 0;
  // Drops `owner`'s claim; a no-op if `owner` does not hold it.
  virtual Status ReleaseClaim(std::string_view owner) = 0;
  // The holder of the claim; empty if unclaimed.
  virtual Result<std::string> Claimant() = 0;
};

// Opens (creating if needed) a RocksDB store in options.path.
Result<std::unique_ptr<EntityStore>> OpenRocksDbStore(const StoreOptions& options);
// Opens (creating if needed) a SQLite store: the database file options.path + "/store.db".
Result<std::unique_ptr<EntityStore>> OpenSqliteStore(const StoreOptions& options);
// A new, empty store in memory (for tests and caches); durability and path are ignored.
Result<std::unique_ptr<EntityStore>> NewMemoryStore(const StoreOptions& options);

}  // namespace shardkit::store
