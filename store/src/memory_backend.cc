// The memory backend: ordered maps under one reader/writer lock, keyed exactly like RocksDB
// (key_codec.h) so that scans have the same order.
#include <map>
#include <set>
#include <shared_mutex>

#include "backend.h"
#include "key_codec.h"
#include "store_impl.h"

namespace shardkit::store {
namespace internal {
namespace {

class MemoryBackend final : public Backend {
 public:
  Result<std::optional<EntityRecord>> Get(std::string_view kind, uint64_t ksid,
                                          std::string_view id) override {
    std::shared_lock lock(mu_);
    auto it = rows_.find(EntityKey(kind, ksid, id));
    if (it == rows_.end()) return std::optional<EntityRecord>();
    return std::optional<EntityRecord>(it->second);
  }

  Result<std::optional<uint64_t>> FindKsid(std::string_view kind, std::string_view id) override {
    std::shared_lock lock(mu_);
    auto it = id_index_.find(EntityKey(kind, 0, id));
    if (it == id_index_.end()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(it->second);
  }

  Status Scan(const ScanSpec& spec, const RowVisitor& visit) override {
    // Copy under the lock, visit outside it: a visitor may take its time.
    std::vector<EntityRecord> rows;
    {
      std::shared_lock lock(mu_);
      auto it = spec.kind.empty() ? rows_.begin()
                                  : rows_.lower_bound(KindKsidPrefix(spec.kind, spec.range.begin));
      const std::string end = spec.kind.empty() ? std::string() : KindEnd(spec.kind);
      for (; it != rows_.end() && (end.empty() || it->first < end); ++it) {
        const EntityRecord& row = it->second;
        if (!spec.range.Contains(row.ksid)) continue;
        if (spec.after &&
            std::make_pair(row.ksid, std::string_view(row.id)) <=
                std::make_pair(spec.after->first, std::string_view(spec.after->second))) {
          continue;
        }
        rows.push_back(row);
      }
    }
    for (EntityRecord& row : rows) {
      if (!visit(std::move(row))) break;
    }
    return Status::Ok();
  }

  Status ScanExpired(int64_t now_ms, size_t limit, const RowVisitor& visit) override {
    std::vector<EntityRecord> rows;
    {
      std::shared_lock lock(mu_);
      for (auto it = expiry_.begin();
           it != expiry_.end() && it->first <= now_ms && rows.size() < limit; ++it) {
        rows.push_back(rows_.at(it->second));
      }
    }
    for (EntityRecord& row : rows) {
      if (!visit(std::move(row))) break;
    }
    return Status::Ok();
  }

  Status Commit(const WriteSet& writes) override {
    std::unique_lock lock(mu_);
    for (const EntityWrite& w : writes.entities) {
      std::string key = EntityKey(w.row.kind, w.row.ksid, w.row.id);
      if (w.previous_expires_at_ms != 0) expiry_.erase({w.previous_expires_at_ms, key});
      if (w.remove) {
        rows_.erase(key);
        continue;
      }
      if (w.row.expires_at_ms != 0) expiry_.insert({w.row.expires_at_ms, key});
      rows_[std::move(key)] = w.row;
    }
    for (const IdIndexWrite& w : writes.id_index) {
      std::string key = EntityKey(w.kind, 0, w.id);
      if (w.ksid) {
        id_index_[key] = *w.ksid;
      } else {
        id_index_.erase(key);
      }
    }
    for (const ChangeRecord& c : writes.changes) changes_[c.sequence] = c;
    for (const ConsumerWrite& w : writes.consumers) {
      if (w.position) {
        consumers_[w.name] = *w.position;
      } else {
        consumers_.erase(w.name);
      }
    }
    for (const ReceiptWrite& w : writes.receipts) {
      if (w.remove) {
        receipts_.erase(w.key);
        receipt_expiry_.erase({w.expires_at_ms, w.key});
        continue;
      }
      receipts_[w.key] = w.body;
      receipt_expiry_.insert({w.expires_at_ms, w.key});
    }
    if (writes.trim_below != 0)
      changes_.erase(changes_.begin(), changes_.lower_bound(writes.trim_below));
    return Status::Ok();
  }

  Result<std::optional<std::string>> GetReceipt(std::string_view key) override {
    std::shared_lock lock(mu_);
    auto it = receipts_.find(std::string(key));
    if (it == receipts_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Result<std::vector<std::pair<std::string, int64_t>>> ExpiredReceipts(int64_t now_ms,
                                                                       size_t limit) override {
    std::shared_lock lock(mu_);
    std::vector<std::pair<std::string, int64_t>> out;
    for (auto it = receipt_expiry_.begin();
         it != receipt_expiry_.end() && it->first <= now_ms && out.size() < limit; ++it) {
      out.emplace_back(it->second, it->first);
    }
    return out;
  }

  Result<std::vector<ChangeRecord>> ReadChanges(uint64_t from_sequence, size_t limit) override {
    std::shared_lock lock(mu_);
    std::vector<ChangeRecord> out;
    for (auto it = changes_.lower_bound(from_sequence); it != changes_.end() && out.size() < limit;
         ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  Result<FeedState> LoadFeedState() override { return FeedState{}; }  // always new and empty

 private:
  std::shared_mutex mu_;
  std::map<std::string, EntityRecord> rows_;          // EntityKey -> row
  std::set<std::pair<int64_t, std::string>> expiry_;  // (expires_at_ms, EntityKey)
  std::map<std::string, uint64_t> id_index_;          // EntityKey(kind, 0, id) -> ksid
  std::map<uint64_t, ChangeRecord> changes_;
  std::map<std::string, uint64_t> consumers_;
  std::map<std::string, std::string> receipts_;               // key -> body
  std::set<std::pair<int64_t, std::string>> receipt_expiry_;  // (expires_at_ms, key)
};

}  // namespace
}  // namespace internal

Result<std::unique_ptr<EntityStore>> NewMemoryStore(const StoreOptions& options) {
  return internal::NewStoreOn(std::make_unique<internal::MemoryBackend>(), options);
}

}  // namespace shardkit::store
