// Backend: the engine-specific part of an EntityStore, private to the store library.
//
// A backend stores rows and change records and commits a WriteSet atomically; it knows nothing of
// JSON, versions, validation or TTL rules. StoreImpl (store_impl.h) holds all of that once, for
// every engine, so the three backends cannot drift apart.
//
// Thread-safety: reads may run concurrently with each other and with one Commit. StoreImpl never
// calls Commit from two threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shardkit/message/clock.h>
#include <shardkit/message/status.h>
#include <shardkit/store/change_feed.h>
#include <shardkit/store/entity_store.h>

namespace shardkit::store::internal {

// The op byte of a change record as the backends store it, with the replicated mark in the high
// bit: a feed written before the mark existed reads as client changes.
inline uint8_t StoredOp(const ChangeRecord& c) {
  return static_cast<uint8_t>(static_cast<uint8_t>(c.op) | (c.replicated ? 0x80 : 0));
}
inline void SetStoredOp(ChangeRecord& c, uint8_t stored) {
  c.op = static_cast<ChangeOp>(stored & 0x7f);
  c.replicated = (stored & 0x80) != 0;
}

// Whether a row with this expiry (0: never) has expired at `now_ms`: the one rule for loads,
// saves and lists alike.
inline bool Expired(int64_t expires_at_ms, int64_t now_ms) {
  return expires_at_ms != 0 && expires_at_ms <= now_ms;
}
inline bool Expired(const EntityRecord& row, int64_t now_ms) {
  return Expired(row.expires_at_ms, now_ms);
}
// The same, reading `clock` only for a row that expires (most never do).
inline bool Expired(int64_t expires_at_ms, const Clock& clock) {
  return expires_at_ms != 0 && expires_at_ms <= clock.NowMs();
}
// A record as the view the in-place reads hand out.
inline EntityView ViewOf(const EntityRecord& row) {
  return EntityView{row.value, row.version, row.expires_at_ms};
}

// A row written (or deleted) by a commit.
struct EntityWrite {
  EntityRecord row;  // key (kind, ksid, id) and, unless remove, the new row
  bool remove = false;
  int64_t previous_expires_at_ms = 0;  // expiry of the row replaced or removed (0: none), so a
                                       // backend keeping an expiry index can drop its old entry
};

// An entry of the id index (kind, id) -> ksid, kept only for kinds sharded by a field.
struct IdIndexWrite {
  std::string kind;
  std::string id;
  std::optional<uint64_t> ksid;  // nullopt: delete the entry
};

struct ConsumerWrite {
  std::string name;
  std::optional<uint64_t> position;  // nullopt: delete
};

// An idempotency receipt (entity_store.h): `body` is opaque to the backend (receipt.h encodes
// it); `expires_at_ms` orders the purge.
struct ReceiptWrite {
  std::string key;
  int64_t expires_at_ms = 0;
  std::string body;     // empty with remove
  bool remove = false;  // delete the receipt of `key` that expires at `expires_at_ms`
};

// Everything one commit changes, applied all or nothing.
struct WriteSet {
  std::vector<EntityWrite> entities;
  std::vector<IdIndexWrite> id_index;
  std::vector<ChangeRecord> changes;
  std::vector<ConsumerWrite> consumers;
  std::vector<ReceiptWrite> receipts;
  // Non-zero: delete change records below this sequence and remember it (persisted), so the last
  // sequence survives a reopen even when every record was trimmed.
  uint64_t trim_below = 0;

  bool empty() const {
    return entities.empty() && id_index.empty() && changes.empty() && consumers.empty() &&
           receipts.empty() && trim_below == 0;
  }
  // Empties the set for the next commit, keeping the room of its vectors unless a batch grew them.
  void Reset() {
    constexpr size_t kKept = 16;
    auto reset = [](auto& v) {
      if (v.capacity() > kKept) v = {};
      v.clear();
    };
    reset(entities);
    reset(id_index);
    reset(changes);
    reset(consumers);
    reset(receipts);
    trim_below = 0;
  }
};

// What a scan reads: one kind (or all kinds when empty), a ksid range, optionally starting
// strictly after a (ksid, id) position of that kind.
struct ScanSpec {
  std::string kind;
  KsidRange range;
  std::optional<std::pair<uint64_t, std::string>> after;
};

// The persisted feed state, read once at open.
struct FeedState {
  uint64_t last_sequence = 0;   // max(last record, trim point - 1)
  uint64_t first_retained = 1;  // first record, or last_sequence + 1 if none
  std::map<std::string, uint64_t> consumers;
};

// Visitors return false to stop.
using RowVisitor = std::function<bool(EntityRecord&&)>;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Result<std::optional<EntityRecord>> Get(std::string_view kind, uint64_t ksid,
                                                  std::string_view id) = 0;
  // Get without a copy: `use` sees the row in place, during the call; false if there is none.
  virtual Result<bool> GetInPlace(std::string_view kind, uint64_t ksid, std::string_view id,
                                  const std::function<void(const EntityView&)>& use) {
    return UseRow(Get(kind, ksid, id), use);
  }
  // Get for a writer: the caller holds the store's write lock, so no Commit runs meanwhile. It
  // reads the same committed row as Get; an engine may read it where commits are made (SQLite:
  // a reader connection drops its page cache whenever another connection committed).
  virtual Result<std::optional<EntityRecord>> GetForWrite(std::string_view kind, uint64_t ksid,
                                                          std::string_view id) {
    return Get(kind, ksid, id);
  }
  // GetForWrite without a copy, as GetInPlace is Get without one.
  virtual Result<bool> GetForWriteInPlace(std::string_view kind, uint64_t ksid, std::string_view id,
                                          const std::function<void(const EntityView&)>& use) {
    return UseRow(GetForWrite(kind, ksid, id), use);
  }
  virtual Result<std::optional<uint64_t>> FindKsid(std::string_view kind, std::string_view id) = 0;
  // Rows (expired ones included) in key order (kind, ksid, id).
  virtual Status Scan(const ScanSpec& spec, const RowVisitor& visit) = 0;
  // Rows with 0 < expires_at_ms <= now_ms, at most `limit` of them, in no particular order.
  virtual Status ScanExpired(int64_t now_ms, size_t limit, const RowVisitor& visit) = 0;
  virtual Status Commit(const WriteSet& writes) = 0;
  // After a Commit that succeeded and is already visible: whether it stands, for a store that
  // syncs every commit (write_fault.h, WriteFault::ConfirmSynced); an error makes its outcome
  // unknown to the writer.
  virtual Status ConfirmSynced() { return Status::Ok(); }
  // The receipt of `key` (expired or not), or nullopt. Writers only call it (holding the store's
  // write lock), so an engine may read it as GetForWrite does.
  virtual Result<std::optional<std::string>> GetReceipt(std::string_view key) = 0;
  // Keys and expiries of receipts with expires_at_ms <= now_ms, at most `limit`.
  virtual Result<std::vector<std::pair<std::string, int64_t>>> ExpiredReceipts(int64_t now_ms,
                                                                               size_t limit) = 0;
  virtual Result<std::vector<ChangeRecord>> ReadChanges(uint64_t from_sequence, size_t limit) = 0;
  virtual Result<FeedState> LoadFeedState() = 0;
  // Called after records below `below` were trimmed, without the write lock: gives their space
  // back where deleting alone does not (RocksDB). SQLite reuses freed pages by itself.
  virtual void ReclaimFeedSpace(uint64_t below) { (void)below; }
  // Whether writes are stopped by a disk fault (write_fault.h); a backend without a disk is
  // always writable.
  virtual StorageHealth Health() { return {}; }

 protected:
  // A row read as a record, handed to `use` as a view (the in-place reads of an engine that has
  // no cheaper way); false if there is none.
  static Result<bool> UseRow(Result<std::optional<EntityRecord>> row,
                             const std::function<void(const EntityView&)>& use) {
    if (!row.ok()) return row.status();
    if (!row->has_value()) return false;
    use(ViewOf(**row));
    return true;
  }
};

}  // namespace shardkit::store::internal
