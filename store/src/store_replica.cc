// StoreImpl as a replication target and a migration's claimed store (entity_store.h): another
// store's changes applied with their stream's position in the same batch, the positions read
// back, and the claim a migration puts on a store it is filling.
#include <map>
#include <optional>
#include <tuple>

#include "store_impl.h"
#include "validation.h"

namespace shardkit::store::internal {

Status StoreImpl::ApplyReplicated(std::string_view stream, const std::vector<ChangeRecord>& changes,
                                  uint64_t position, bool assume_absent) {
  if (Status s = CheckId(stream, "stream"); !s.ok()) return s;
  std::lock_guard lock(write_mu_);
  WriteSet writes;
  // Rows and id-index entries as this batch leaves them, so repeated keys chain correctly.
  std::map<std::tuple<std::string, uint64_t, std::string>, std::optional<EntityRecord>> rows;
  std::map<std::pair<std::string, std::string>, std::optional<uint64_t>> index;
  for (const ChangeRecord& c : changes) {
    if (c.op == ChangeOp::kMoved) {  // a feed marker: no data changes
      ChangeRecord copy = c;
      copy.sequence = 0;
      copy.replicated = true;
      writes.changes.push_back(std::move(copy));
      continue;
    }
    auto key = std::make_tuple(c.kind, c.ksid, c.id);
    std::optional<EntityRecord> current;
    if (auto it = rows.find(key); it != rows.end()) {
      current = it->second;
    } else if (!assume_absent) {
      Result<std::optional<EntityRecord>> got = backend_->GetForWrite(c.kind, c.ksid, c.id);
      if (!got.ok()) return got.status();
      current = std::move(got).value();
    }
    const int64_t previous_expiry = current ? current->expires_at_ms : 0;
    const bool by_field = ShardedByField(options_, c.kind);
    if (c.op == ChangeOp::kSave) {
      EntityRecord row{c.kind, c.ksid, c.id, c.value, c.version, c.expires_at_ms};
      writes.entities.push_back({row, false, previous_expiry});
      if (by_field) {
        writes.id_index.push_back({c.kind, c.id, c.ksid});
        index[{c.kind, c.id}] = c.ksid;
      }
      if (!assume_absent) rows[key] = std::move(row);  // a copy never repeats a key
    } else {
      if (current) {
        EntityWrite removal;
        removal.row.kind = c.kind;
        removal.row.ksid = c.ksid;
        removal.row.id = c.id;
        removal.remove = true;
        removal.previous_expires_at_ms = previous_expiry;
        writes.entities.push_back(std::move(removal));
      }
      if (by_field) {
        std::optional<uint64_t> indexed;
        if (auto it = index.find({c.kind, c.id}); it != index.end()) {
          indexed = it->second;
        } else if (!assume_absent) {
          Result<std::optional<uint64_t>> found = backend_->FindKsid(c.kind, c.id);
          if (!found.ok()) return found.status();
          indexed = *found;
        }
        // The entity may have moved to another ksid already: only drop an index entry of this key.
        if (indexed == c.ksid) {
          writes.id_index.push_back({c.kind, c.id, std::nullopt});
          index[{c.kind, c.id}] = std::nullopt;
        }
      }
      if (!assume_absent) rows[key] = std::nullopt;
    }
    ChangeRecord copy = c;
    copy.sequence = 0;
    copy.replicated = true;
    writes.changes.push_back(std::move(copy));
  }
  FeedImpl::PlanReplicaPosition(stream, position, writes);
  auto new_keys = PlanNewShardKeys(writes);
  if (Status s = feed_.CommitLocked(writes); !s.ok()) return s;
  feed_.SetReplicaPositionLocked(stream, position);
  for (const auto& [kind, field] : new_keys) feed_.SetShardKeyLocked(kind, field);
  return Status::Ok();
}

Result<uint64_t> StoreImpl::ReplicatedPosition(std::string_view stream) {
  std::lock_guard lock(write_mu_);
  return feed_.ReplicaPositionLocked(stream);
}

Result<std::map<std::string, uint64_t>> StoreImpl::ReplicatedStreams() {
  std::lock_guard lock(write_mu_);
  const auto& replicas = feed_.replicas_locked();
  return std::map<std::string, uint64_t>(replicas.begin(), replicas.end());
}

Status StoreImpl::Claim(std::string_view owner) {
  if (Status s = CheckId(owner, "owner"); !s.ok()) return s;
  std::lock_guard lock(write_mu_);
  const std::string& holder = feed_.claimant_locked();
  if (holder == owner) return Status::Ok();
  if (!holder.empty()) {
    return Status::Conflict("store is claimed by migration '" + holder + "'",
                            "{\"field\":\"owner\"}");
  }
  WriteSet writes;
  FeedImpl::PlanClaim(owner, true, writes);
  if (Status s = feed_.CommitLocked(writes); !s.ok()) return s;
  feed_.SetClaimantLocked(std::string(owner));
  return Status::Ok();
}

Status StoreImpl::ReleaseClaim(std::string_view owner) {
  std::lock_guard lock(write_mu_);
  if (owner.empty() || feed_.claimant_locked() != owner) return Status::Ok();
  WriteSet writes;
  FeedImpl::PlanClaim(owner, false, writes);
  if (Status s = feed_.CommitLocked(writes); !s.ok()) return s;
  feed_.SetClaimantLocked("");
  return Status::Ok();
}

Result<std::string> StoreImpl::Claimant() {
  std::lock_guard lock(write_mu_);
  return feed_.claimant_locked();
}

}  // namespace shardkit::store::internal
