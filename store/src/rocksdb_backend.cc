// The RocksDB backend. Layout (docs/store.md):
//   default CF  kind \0 ksid(8, BE) id  ->  version(8, BE) expires_at_ms(8, BE) json
//   "changes"   sequence(8, BE)         ->  the change record (change_codec.h)
//   "expiry"    expires_at_ms(8, BE) entity key -> ""      (TTL index, read by PurgeExpired)
//   "meta"      "c" name -> position(8) | "i" kind \0 id -> ksid(8) | "t" -> trim point(8)
//               | "r" key -> receipt body | "x" expires_at_ms(8, BE) key -> ""  (receipt expiry)
// Every Commit is one WriteBatch across the column families, so data, feed and indexes agree
// after any crash.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include "backend.h"
#include "change_codec.h"
#include "key_codec.h"
#include "shardkit/store/rocksdb_options.h"
#include "shardkit/store/scheduler.h"
#include "store_impl.h"
#include "wal_sync.h"
#include "write_fault.h"

namespace shardkit::store {
namespace internal {
namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  return Status::Internal("rocksdb " + std::string(what) + ": " + s.ToString());
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

std::optional<EntityRecord> DecodeRow(std::string_view key, std::string_view value) {
  std::optional<DecodedKey> k = DecodeEntityKey(key);
  if (!k || value.size() < 16) return std::nullopt;
  return EntityRecord{
      std::string(k->kind),   k->ksid,
      std::string(k->id),     std::string(value.substr(16)),
      ReadBigEndian64(value), static_cast<int64_t>(ReadBigEndian64(value.substr(8)))};
}

std::string IdIndexKey(std::string_view kind, std::string_view id) {
  std::string key("i");
  key.append(kind);
  key.push_back('\0');
  key.append(id);
  return key;
}

// RocksDB's own log, warnings and errors only, goes to the node's log rather than to a LOG file in
// the store's directory: RocksDB's file writer aborts the process on the first message after an
// append failed, which a full disk brings.
class NodeLogger final : public rocksdb::Logger {
 public:
  explicit NodeLogger(std::string store)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), store_(std::move(store)) {}
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    spdlog::log(
        level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? spdlog::level::err : spdlog::level::warn,
        "store '{}': rocksdb: {}", store_, line);
  }

 private:
  const std::string store_;
};

// Tells a store's WriteFault what RocksDB's own error handling sees: a background error (a flush
// or compaction that finds the disk full stops writes too) and the end of a recovery. RocksDB's
// own recovery from a full disk polls every few seconds; the store's writes call Resume()
// instead (RocksDbBackend::Recover), sooner and in one place.
class FaultListener final : public rocksdb::EventListener {
 public:
  explicit FaultListener(std::shared_ptr<WriteFault> fault) : fault_(std::move(fault)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    const std::string text = error->ToString();
    fault_->Set(WriteFault::CauseOfText(text), text);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok()) fault_->Clear();
  }

 private:
  std::shared_ptr<WriteFault> fault_;
};

class RocksDbBackend final : public Backend {
 public:
  static Result<std::unique_ptr<Backend>> Open(const StoreOptions& options) {
    if (options.path.empty()) return Status::Invalid("path: the RocksDB store needs a directory");
    rocksdb::DBOptions db_options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    RocksDbOpenOptions(options, db_options, families);
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    const std::string name = options.name.empty() ? options.path : options.name;
    db_options.info_log = std::make_shared<NodeLogger>(name);
    auto fault = std::make_shared<WriteFault>(name);
    db_options.listeners.push_back(std::make_shared<FaultListener>(fault));
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, families, &handles, &db);
    if (!s.ok()) return FromRocks(s, "open " + options.path);
    return std::unique_ptr<Backend>(new RocksDbBackend(db, handles, options, std::move(fault)));
  }

  ~RocksDbBackend() override {
    {
      std::lock_guard lock(sync_mu_);
      stopping_ = true;
    }
    if (sync_task_ != 0) scheduler_.Cancel(sync_task_);
    {
      // A sync taken off the schedule before the cancel may still be running.
      std::unique_lock lock(sync_mu_);
      sync_done_.wait(lock, [this] { return !syncing_; });
    }
    if (sync_scheduled_ && !fault_->active()) SyncWal();
    for (rocksdb::ColumnFamilyHandle* h : {entities_, changes_, expiry_, meta_}) {
      (void)db_->DestroyColumnFamilyHandle(h);
    }
    (void)db_->Close();
    delete db_;
  }

  // One point read: the key built on the stack, the value read pinned in the block cache and
  // copied once, the row's key fields taken from the arguments rather than decoded again.
  Result<std::optional<EntityRecord>> Get(std::string_view kind, uint64_t ksid,
                                          std::string_view id) override {
    std::optional<EntityRecord> out;
    Result<bool> found = ReadRow(kind, ksid, id, [&](const EntityView& row) {
      out = EntityRecord{std::string(kind),      ksid,        std::string(id),
                         std::string(row.value), row.version, row.expires_at_ms};
    });
    if (!found.ok()) return found.status();
    return out;
  }

  Result<bool> GetInPlace(std::string_view kind, uint64_t ksid, std::string_view id,
                          const std::function<void(const EntityView&)>& use) override {
    return ReadRow(kind, ksid, id, use);
  }
  // Get and GetForWrite read the same rows here.
  Result<bool> GetForWriteInPlace(std::string_view kind, uint64_t ksid, std::string_view id,
                                  const std::function<void(const EntityView&)>& use) override {
    return ReadRow(kind, ksid, id, use);
  }

  Result<std::optional<uint64_t>> FindKsid(std::string_view kind, std::string_view id) override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, IdIndexKey(kind, id), &value);
    if (s.IsNotFound()) return std::optional<uint64_t>();
    if (!s.ok() || value.size() != 8) return FromRocks(s, "get id index");
    return std::optional<uint64_t>(ReadBigEndian64(value));
  }

  Status Scan(const ScanSpec& spec, const RowVisitor& visit) override {
    if (spec.kind.empty()) return ScanAllKinds(spec.range, visit);
    std::string lower = KindKsidPrefix(spec.kind, spec.range.begin);
    std::string after_key;
    if (spec.after) {
      after_key = EntityKey(spec.kind, spec.after->first, spec.after->second);
      if (after_key > lower) lower = after_key;
    }
    const std::string upper =
        spec.range.end != 0 ? KindKsidPrefix(spec.kind, spec.range.end) : KindEnd(spec.kind);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, entities_));
    for (it->Seek(lower); it->Valid(); it->Next()) {
      if (!after_key.empty() && View(it->key()) == after_key) continue;
      std::optional<EntityRecord> row = DecodeRow(View(it->key()), View(it->value()));
      if (!row) return Status::Internal("rocksdb: corrupt row in scan");
      if (!visit(std::move(*row))) return Status::Ok();
    }
    return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "scan");
  }

  Status ScanExpired(int64_t now_ms, size_t limit, const RowVisitor& visit) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), expiry_));
    size_t seen = 0;
    for (it->SeekToFirst(); it->Valid() && seen < limit; it->Next()) {
      std::string_view key = View(it->key());
      const int64_t expires = static_cast<int64_t>(ReadBigEndian64(key));
      if (expires > now_ms) break;
      std::optional<DecodedKey> k = DecodeEntityKey(key.substr(8));
      if (!k) return Status::Internal("rocksdb: corrupt expiry index");
      Result<std::optional<EntityRecord>> row = Get(k->kind, k->ksid, k->id);
      if (!row.ok()) return row.status();
      if (!row->has_value() || (*row)->expires_at_ms != expires) continue;  // stale entry
      ++seen;
      if (!visit(std::move(**row))) break;
    }
    return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "scan expiry");
  }

  Status Commit(const WriteSet& writes) override {
    // Commits never overlap (backend.h): one batch and one buffer serve them all, and keep
    // their capacity from one commit to the next.
    rocksdb::WriteBatch& batch = batch_;
    batch.Clear();
    for (const EntityWrite& w : writes.entities) {
      EntityKeyBuffer key_buffer(w.row.kind, w.row.ksid, w.row.id);
      const std::string_view key = key_buffer.view();
      if (w.previous_expires_at_ms != 0) {
        (void)batch.Delete(expiry_, ExpiryKey(w.previous_expires_at_ms, key));
      }
      if (w.remove) {
        (void)batch.Delete(entities_, ToSlice(key));
        continue;
      }
      PutRow(batch, key, w.row);
      if (w.row.expires_at_ms != 0) {
        (void)batch.Put(expiry_, ExpiryKey(w.row.expires_at_ms, key), "");
      }
    }
    for (const IdIndexWrite& w : writes.id_index) {
      if (w.ksid) {
        (void)batch.Put(meta_, IdIndexKey(w.kind, w.id), BigEndian64(*w.ksid));
      } else {
        (void)batch.Delete(meta_, IdIndexKey(w.kind, w.id));
      }
    }
    for (const ChangeRecord& c : writes.changes) PutChange(batch, c);
    for (const ConsumerWrite& w : writes.consumers) {
      if (w.position) {
        (void)batch.Put(meta_, "c" + w.name, BigEndian64(*w.position));
      } else {
        (void)batch.Delete(meta_, "c" + w.name);
      }
    }
    for (const ReceiptWrite& w : writes.receipts) {
      std::string expiry(1, 'x');
      AppendBigEndian64(expiry, static_cast<uint64_t>(w.expires_at_ms));
      expiry.append(w.key);
      if (w.remove) {
        (void)batch.Delete(meta_, "r" + w.key);
        (void)batch.Delete(meta_, expiry);
      } else {
        (void)batch.Put(meta_, "r" + w.key, w.body);
        (void)batch.Put(meta_, expiry, "");
      }
    }
    if (writes.trim_below != 0) {
      (void)batch.DeleteRange(changes_, BigEndian64(0), BigEndian64(writes.trim_below));
      (void)batch.Put(meta_, "t", BigEndian64(writes.trim_below));
    }
    rocksdb::WriteOptions write;
    write.sync = durability_ == Durability::kSync;
    if (fault_->active()) {
      if (Status recovered = Recover(); !recovered.ok()) return recovered;
    }
    rocksdb::Status s = db_->Write(write, &batch);
    if (batch.GetDataSize() > kKeptBatchBytes) batch = rocksdb::WriteBatch();  // a bulk write's
    if (!s.ok() && !s.IsIOError()) return FromRocks(s, "write");
    if (!s.ok()) {  // the WAL file may be broken: no more writes before Recover
      fault_->Set(WriteFault::CauseOfText(s.ToString()), s.ToString());
      return fault_->Refuse();
    }
    if (durability_ == Durability::kGroup) ScheduleSync();
    return Status::Ok();
  }

  Status ConfirmSynced() override {
    return durability_ == Durability::kSync ? fault_->ConfirmSynced(path_) : Status::Ok();
  }

  StorageHealth Health() override { return fault_->Health(); }

  Result<std::optional<std::string>> GetReceipt(std::string_view key) override {
    std::string body;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, "r" + std::string(key), &body);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "get receipt");
    return std::optional<std::string>(std::move(body));
  }

  Result<std::vector<std::pair<std::string, int64_t>>> ExpiredReceipts(int64_t now_ms,
                                                                       size_t limit) override {
    std::vector<std::pair<std::string, int64_t>> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
    for (it->Seek("x"); it->Valid() && it->key().starts_with("x") && out.size() < limit;
         it->Next()) {
      std::string_view key = View(it->key()).substr(1);
      if (key.size() < 8) return Status::Internal("rocksdb: corrupt receipt expiry index");
      const auto expires = static_cast<int64_t>(ReadBigEndian64(key));
      if (expires > now_ms) break;
      out.emplace_back(std::string(key.substr(8)), expires);
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scan receipts");
    return out;
  }

  Result<std::vector<ChangeRecord>> ReadChanges(uint64_t from_sequence, size_t limit) override {
    std::vector<ChangeRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    for (it->Seek(BigEndian64(from_sequence)); it->Valid() && out.size() < limit; it->Next()) {
      std::optional<ChangeRecord> c =
          DecodeChange(ReadBigEndian64(View(it->key())), View(it->value()));
      if (!c) return Status::Internal("rocksdb: corrupt change record");
      out.push_back(std::move(*c));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "read changes");
    return out;
  }

  // A DeleteRange hides the trimmed records but frees nothing until compaction reaches them.
  // Whole files of trimmed records go at once (cheap, every round); the rest goes as the feed's
  // own compactions carry the range tombstone down. A manual compaction of the range (it flushes
  // the memtable first, so not every round) catches what a quiet feed's compactions leave.
  void ReclaimFeedSpace(uint64_t below) override {
    const std::string begin = BigEndian64(0), end = BigEndian64(below);
    const rocksdb::Slice b(begin), e(end);
    (void)rocksdb::DeleteFilesInRange(db_, changes_, &b, &e, /*include_end=*/false);
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = last_feed_compaction_s_.load();
    if (now - last < kFeedCompactionIntervalS ||
        !last_feed_compaction_s_.compare_exchange_strong(last, now))
      return;
    rocksdb::CompactRangeOptions options;
    options.exclusive_manual_compaction = false;  // automatic compactions keep running
    (void)db_->CompactRange(options, changes_, &b, &e);
  }

  Result<FeedState> LoadFeedState() override {
    FeedState state;
    std::optional<uint64_t> first, last;
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
      it->SeekToFirst();
      if (it->Valid()) first = ReadBigEndian64(View(it->key()));
      it->SeekToLast();
      if (it->Valid()) last = ReadBigEndian64(View(it->key()));
      if (!it->status().ok()) return FromRocks(it->status(), "load feed");
    }
    std::string trim;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, "t", &trim);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "load feed");
    const uint64_t trimmed_below = s.ok() && trim.size() == 8 ? ReadBigEndian64(trim) : 0;
    state.last_sequence = std::max(last.value_or(0), trimmed_below > 0 ? trimmed_below - 1 : 0);
    // ReclaimFeedSpace drops whole files of trimmed records, which may bare older copies of
    // trimmed keys: the trim point, not the first key, says where the feed starts.
    state.first_retained = std::max(first.value_or(state.last_sequence + 1), trimmed_below);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
    for (it->Seek("c"); it->Valid() && it->key().starts_with("c"); it->Next()) {
      if (it->value().size() != 8) return Status::Internal("rocksdb: corrupt consumer record");
      state.consumers[std::string(View(it->key()).substr(1))] = ReadBigEndian64(View(it->value()));
    }
    return state;
  }

 private:
  // The row of (kind, ksid, id) as the block cache (or memtable) holds it, pinned while `use`
  // runs; false if there is none.
  template <typename Use>
  Result<bool> ReadRow(std::string_view kind, uint64_t ksid, std::string_view id, Use&& use) {
    EntityKeyBuffer key(kind, ksid, id);
    rocksdb::PinnableSlice value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), entities_, ToSlice(key.view()), &value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "get");
    if (value.size() < 16)
      return Status::Internal("rocksdb: corrupt row under " + std::string(kind));
    const std::string_view row = View(value);
    use(EntityView{row.substr(16), ReadBigEndian64(row),
                   static_cast<int64_t>(ReadBigEndian64(row.substr(8)))});
    return true;
  }

  RocksDbBackend(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                 const StoreOptions& options, std::shared_ptr<WriteFault> fault)
      : db_(db),
        fault_(std::move(fault)),
        wal_sync_(options.path),
        entities_(handles[0]),
        changes_(handles[1]),
        expiry_(handles[2]),
        meta_(handles[3]),
        path_(options.path),
        durability_(options.durability),
        sync_interval_(std::max(1, options.rocksdb.group_sync_interval_ms)),
        scheduler_(options.scheduler != nullptr ? *options.scheduler : Scheduler::Shared()) {}

  // The row (version, expiry, json) under `key`: the header and the stored json go into the
  // batch as two slices, so the json is copied once.
  void PutRow(rocksdb::WriteBatch& batch, std::string_view key, const EntityRecord& row) {
    char header[16];
    WriteBigEndian64(header, row.version);
    WriteBigEndian64(header + 8, static_cast<uint64_t>(row.expires_at_ms));
    const rocksdb::Slice key_slice = ToSlice(key);
    const rocksdb::Slice parts[2] = {{header, sizeof header}, ToSlice(row.value)};
    (void)batch.Put(entities_, rocksdb::SliceParts(&key_slice, 1), rocksdb::SliceParts(parts, 2));
  }

  // The change record (change_codec.h) under its sequence, its json as a slice of its own.
  void PutChange(rocksdb::WriteBatch& batch, const ChangeRecord& c) {
    char sequence[8];
    WriteBigEndian64(sequence, c.sequence);
    scratch_.clear();
    AppendChangeHeader(c, scratch_);
    const rocksdb::Slice key_slice(sequence, sizeof sequence);
    const rocksdb::Slice parts[2] = {ToSlice(scratch_), ToSlice(c.value)};
    (void)batch.Put(changes_, rocksdb::SliceParts(&key_slice, 1), rocksdb::SliceParts(parts, 2));
  }

  static std::string ExpiryKey(int64_t expires_at_ms, std::string_view key) {
    std::string out;
    out.reserve(8 + key.size());
    AppendBigEndian64(out, static_cast<uint64_t>(expires_at_ms));
    out.append(key);
    return out;
  }

  // kGroup: writes reach the OS at once (sync=false); the first write after a sync asks the
  // scheduler for the next one, so an idle store never wakes and a write waits at most one
  // interval for its fsync.
  void ScheduleSync() {
    std::lock_guard lock(sync_mu_);
    if (sync_scheduled_ || stopping_) return;
    sync_scheduled_ = true;
    sync_task_ = scheduler_.After(std::chrono::milliseconds(sync_interval_), [this] { SyncNow(); });
  }

  void SyncNow() {
    {
      std::lock_guard lock(sync_mu_);
      if (stopping_) return;
      sync_scheduled_ = false;  // writes from here on need the next sync
      syncing_ = true;
    }
    // Writes go on meanwhile (wal_sync.h); while they are stopped by a fault, Recover's Resume()
    // flushes what the WAL holds.
    if (!fault_->active()) SyncWal();
    std::lock_guard lock(sync_mu_);
    syncing_ = false;
    sync_done_.notify_all();  // under the lock: the destructor may free this right after
  }

  void SyncWal() {
    std::string detail;
    if (const int error = wal_sync_.Sync(*db_, detail); error != 0)
      fault_->Set(WriteFault::CauseOfErrno(error), detail);
  }

  // While writes are stopped: at most once per interval, RocksDB's Resume() (it flushes the
  // memtables, holding every acknowledged write, and starts a new WAL file); OK once writes may go
  // on. Called by Commit (commits never overlap).
  Status Recover() {
    if (!fault_->RetryDue()) return fault_->Refuse();
    // A failed Resume() leaves the fault as it was: its error ("Resource busy" while flushing,
    // the same disk error) says nothing new.
    if (!db_->Resume().ok()) return fault_->Refuse();
    fault_->Clear();
    return Status::Ok();
  }

  Status ScanAllKinds(KsidRange range, const RowVisitor& visit) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), entities_));
    it->SeekToFirst();
    while (it->Valid()) {
      std::optional<EntityRecord> row = DecodeRow(View(it->key()), View(it->value()));
      if (!row) return Status::Internal("rocksdb: corrupt row in scan");
      if (row->ksid < range.begin) {
        it->Seek(KindKsidPrefix(row->kind, range.begin));  // jump into the range of this kind
      } else if (!range.Contains(row->ksid)) {
        it->Seek(KindEnd(row->kind));  // past the range: on to the next kind
      } else {
        if (!visit(std::move(*row))) return Status::Ok();
        it->Next();
      }
    }
    return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "scan");
  }

  rocksdb::DB* db_;
  // Reused by every Commit (they never overlap); a batch grown past kKeptBatchBytes by a bulk
  // write is given back.
  static constexpr size_t kKeptBatchBytes = size_t{1} << 20;
  rocksdb::WriteBatch batch_;
  std::string scratch_;
  const std::shared_ptr<WriteFault> fault_;
  WalSync wal_sync_;
  rocksdb::ColumnFamilyHandle* entities_;
  rocksdb::ColumnFamilyHandle* changes_;
  static constexpr int64_t kFeedCompactionIntervalS = 60;
  std::atomic<int64_t> last_feed_compaction_s_{INT64_MIN / 2};  // steady clock, seconds
  rocksdb::ColumnFamilyHandle* expiry_;
  rocksdb::ColumnFamilyHandle* meta_;
  const std::string path_;
  const Durability durability_;
  const int sync_interval_;
  Scheduler& scheduler_;
  std::mutex sync_mu_;
  std::condition_variable sync_done_;
  bool sync_scheduled_ = false;      // guarded by sync_mu_: a write awaits the next sync
  bool syncing_ = false;             // guarded by sync_mu_: SyncNow is syncing
  bool stopping_ = false;            // guarded by sync_mu_
  Scheduler::TaskId sync_task_ = 0;  // guarded by sync_mu_: the latest sync scheduled
};

}  // namespace
}  // namespace internal

void RocksDbOpenOptions(const StoreOptions& options, rocksdb::DBOptions& db,
                        std::vector<rocksdb::ColumnFamilyDescriptor>& families) {
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(options.rocksdb.bloom_bits_per_key));
  table.block_cache = rocksdb::NewLRUCache(options.rocksdb.block_cache_bytes);
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  db.max_background_jobs = options.rocksdb.max_background_jobs;
  db.keep_log_file_num = 3;
  // A WAL file is deleted only once every column family has flushed what it holds: the cap
  // keeps the rarely written families from pinning them all (RocksDbTuning::max_wal_bytes).
  db.max_total_wal_size = options.rocksdb.max_wal_bytes;
  families = {{rocksdb::kDefaultColumnFamilyName, cf_options},
              {"changes", cf_options},
              {"expiry", cf_options},
              {"meta", cf_options}};
}

Result<std::unique_ptr<EntityStore>> OpenRocksDbStore(const StoreOptions& options) {
  // RocksDB creates its own directory but not missing parents; SQLite's opener does the same.
  if (std::error_code ec;
      !options.path.empty() && !std::filesystem::create_directories(options.path, ec) && ec) {
    return Status::Internal("cannot create " + options.path + ": " + ec.message());
  }
  Result<std::unique_ptr<internal::Backend>> backend = internal::RocksDbBackend::Open(options);
  if (!backend.ok()) return backend.status();
  return internal::NewStoreOn(std::move(backend).value(), options);
}

}  // namespace shardkit::store
