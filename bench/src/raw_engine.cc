#include "raw_engine.h"

#include <rocksdb/db.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "shardkit/store/rocksdb_options.h"

namespace shardkit::bench {
namespace {

std::string BigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

// Group durability as the store does it (Durability::kGroup): a write reaches the OS at once,
// and the WAL is fsynced once per group_sync_interval_ms while writes come in.
class GroupSyncer {
 public:
  GroupSyncer(int interval_ms, std::function<void()> sync)
      : interval_(interval_ms), sync_(std::move(sync)), thread_([this] { Run(); }) {}
  ~GroupSyncer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Wrote() { dirty_.store(true, std::memory_order_relaxed); }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(interval_), [this] { return stop_; })) {
      if (dirty_.exchange(false, std::memory_order_relaxed)) sync_();
    }
  }
  const int interval_;
  const std::function<void()> sync_;
  std::atomic<bool> dirty_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// RocksDB with the store's options and column families (store::RocksDbOpenOptions): entities in
// the default family, change records under big-endian sequence numbers in "changes".
class RawRocksDb final : public RawEngine {
 public:
  RawRocksDb(const std::string& path, const store::StoreOptions& o) {
    rocksdb::DBOptions db;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    store::RocksDbOpenOptions(o, db, families);
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(db, path, families, &handles_, &raw);
    if (!s.ok()) throw std::runtime_error("raw rocksdb: " + s.ToString());
    db_.reset(raw);
    sync_ = o.durability == store::Durability::kSync;
    if (o.durability == store::Durability::kGroup) {
      syncer_ = std::make_unique<GroupSyncer>(o.rocksdb.group_sync_interval_ms,
                                              [this] { (void)db_->SyncWAL(); });
    }
    // The bytes of one entity row and one change record as the store wrote them: the last of
    // each, written again under the keys this side writes.
    std::unique_ptr<rocksdb::Iterator> rows(db_->NewIterator({}, handles_[0]));
    rows->SeekToLast();
    std::unique_ptr<rocksdb::Iterator> changes(db_->NewIterator({}, handles_[1]));
    changes->SeekToLast();
    if (!rows->Valid() || !changes->Valid())
      throw std::runtime_error("raw rocksdb: the copied store holds no entity or change record");
    row_ = rows->value().ToString();
    change_ = changes->value().ToString();
    next_sequence_ = ReadBigEndian(changes->key().ToStringView()) + 1;
  }
  ~RawRocksDb() override {
    syncer_.reset();
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  }
  bool Get(const std::string& key, std::string& row) override {
    return db_->Get(rocksdb::ReadOptions(), handles_[0], key, &row).ok();
  }
  bool Write(const std::string& key) override {
    rocksdb::WriteBatch batch;
    (void)batch.Put(handles_[0], key, row_);
    (void)batch.Put(handles_[1], BigEndian64(next_sequence_++), change_);
    rocksdb::WriteOptions write;
    write.sync = sync_;
    bool ok = db_->Write(write, &batch).ok();
    if (syncer_) syncer_->Wrote();
    return ok;
  }

 private:
  static uint64_t ReadBigEndian(std::string_view in) {
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && i < in.size(); ++i)
      v = (v << 8) | static_cast<unsigned char>(in[i]);
    return v;
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
  bool sync_ = false;
  std::unique_ptr<GroupSyncer> syncer_;
  std::string row_, change_;
  uint64_t next_sequence_ = 0;
};

// SQLite with the store's pragmas and tables (store/src/sqlite_backend.cc): reads on a read-only
// connection, each write one BEGIN IMMEDIATE … COMMIT holding the entity row and a change row.
class RawSqlite final : public RawEngine {
 public:
  RawSqlite(const std::string& path, const store::StoreOptions& o) {
    const std::string file = path + "/store.db";
    const std::string cache =
        "PRAGMA cache_size=-" + std::to_string(o.sqlite.cache_kib_per_connection) + ";";
    const char* sync = o.durability == store::Durability::kSync    ? "FULL"
                       : o.durability == store::Durability::kGroup ? "NORMAL"
                                                                   : "OFF";
    writer_ = Open(file, SQLITE_OPEN_READWRITE,
                   cache + "PRAGMA journal_mode=WAL; PRAGMA synchronous=" + sync + ";");
    reader_ = Open(file, SQLITE_OPEN_READONLY, cache);
    get_ = Prepare(reader_,
                   "SELECT version, expires_at, value FROM entities WHERE kind=?1 AND "
                   "ksid=?2 AND id=?3");
    put_ = Prepare(writer_,
                   "INSERT OR REPLACE INTO entities(kind, ksid, id, version, expires_at, value) "
                   "VALUES(?1,?2,?3,?4,?5,?6)");
    change_ = Prepare(writer_,
                      "INSERT INTO changes(seq, ksid, kind, id, op, version, value, expires_at) "
                      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    sqlite3_stmt* last = Prepare(writer_,
                                 "SELECT max(seq), (SELECT value FROM changes ORDER BY "
                                 "seq DESC LIMIT 1) FROM changes");
    if (sqlite3_step(last) != SQLITE_ROW || sqlite3_column_type(last, 1) == SQLITE_NULL)
      throw std::runtime_error("raw sqlite: the copied store holds no change record");
    next_sequence_ = sqlite3_column_int64(last, 0) + 1;
    value_.assign(reinterpret_cast<const char*>(sqlite3_column_text(last, 1)),
                  sqlite3_column_bytes(last, 1));
    sqlite3_finalize(last);
  }
  ~RawSqlite() override {
    for (sqlite3_stmt* s : {get_, put_, change_}) sqlite3_finalize(s);
    sqlite3_close_v2(reader_);
    sqlite3_close_v2(writer_);
  }
  bool Get(const std::string& key, std::string& row) override {
    Bind(get_, key);
    bool found = sqlite3_step(get_) == SQLITE_ROW;
    if (found)
      row.assign(reinterpret_cast<const char*>(sqlite3_column_text(get_, 2)),
                 sqlite3_column_bytes(get_, 2));
    sqlite3_reset(get_);
    return found;
  }
  bool Write(const std::string& key) override {
    bool ok = sqlite3_exec(writer_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
    Bind(put_, key);
    sqlite3_bind_int64(put_, 4, 2);
    sqlite3_bind_int64(put_, 5, 0);
    sqlite3_bind_text(put_, 6, value_.data(), static_cast<int>(value_.size()), SQLITE_STATIC);
    ok = ok && sqlite3_step(put_) == SQLITE_DONE;
    sqlite3_reset(put_);
    sqlite3_bind_int64(change_, 1, next_sequence_++);
    sqlite3_bind_blob(change_, 2, key.data() + kind_end(key) + 1, 8, SQLITE_STATIC);
    sqlite3_bind_text(change_, 3, key.data(), static_cast<int>(kind_end(key)), SQLITE_STATIC);
    const size_t id_at = kind_end(key) + 9;
    sqlite3_bind_text(change_, 4, key.data() + id_at, static_cast<int>(key.size() - id_at),
                      SQLITE_STATIC);
    sqlite3_bind_int64(change_, 5, 1);
    sqlite3_bind_int64(change_, 6, 2);
    sqlite3_bind_text(change_, 7, value_.data(), static_cast<int>(value_.size()), SQLITE_STATIC);
    sqlite3_bind_int64(change_, 8, 0);
    ok = ok && sqlite3_step(change_) == SQLITE_DONE;
    sqlite3_reset(change_);
    return sqlite3_exec(writer_, ok ? "COMMIT" : "ROLLBACK", nullptr, nullptr, nullptr) ==
               SQLITE_OK &&
           ok;
  }

 private:
  static size_t kind_end(const std::string& key) { return key.find('\0'); }
  // Binds the store's key (kind \0 ksid(8) id) as ?1 kind, ?2 ksid, ?3 id.
  static void Bind(sqlite3_stmt* stmt, const std::string& key) {
    const size_t nul = kind_end(key);
    sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(nul), SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 2, key.data() + nul + 1, 8, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, key.data() + nul + 9, static_cast<int>(key.size() - nul - 9),
                      SQLITE_STATIC);
  }
  static sqlite3* Open(const std::string& file, int flags, const std::string& pragmas) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(file.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK ||
        sqlite3_exec(db, pragmas.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::string error = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close_v2(db);
      throw std::runtime_error("raw sqlite " + file + ": " + error);
    }
    return db;
  }
  static sqlite3_stmt* Prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("raw sqlite: ") + sqlite3_errmsg(db));
    return stmt;
  }
  sqlite3* writer_ = nullptr;
  sqlite3* reader_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* change_ = nullptr;
  std::string value_;
  int64_t next_sequence_ = 0;
};

}  // namespace

std::unique_ptr<RawEngine> OpenRawEngine(const std::string& backend, const std::string& path,
                                         const store::StoreOptions& options) {
  if (backend == "sqlite") return std::make_unique<RawSqlite>(path, options);
  return std::make_unique<RawRocksDb>(path, options);
}

}  // namespace shardkit::bench
