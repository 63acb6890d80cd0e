// The SQLite backend: one database file in WAL mode, one writer connection (commits are already
// serialized by the store) and a small pool of read-only connections, so reads never wait for a
// writer. Every statement is prepared once per connection and reused.
//
//   entities(kind, ksid BLOB(8, BE), id, version, expires_at, value)
//            PRIMARY KEY(kind, ksid, id) WITHOUT ROWID   + partial index on expires_at > 0
//   changes(seq INTEGER PRIMARY KEY, ksid, kind, id, op, version, value)
//   ids(kind, id, ksid) WITHOUT ROWID   (only kinds sharded by a field)
//   consumers(name, position) WITHOUT ROWID,  meta(key, value) WITHOUT ROWID
//   receipts(key, expires_at, body) WITHOUT ROWID   + index on expires_at (idempotency receipts)
// ksid is a big-endian BLOB so SQLite's memcmp order is the unsigned numeric order.
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>

#include <sqlite3.h>

#include "backend.h"
#include "key_codec.h"
#include "store_impl.h"
#include "write_fault.h"

namespace shardkit::store {
namespace internal {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS entities(
  kind TEXT NOT NULL, ksid BLOB NOT NULL, id TEXT NOT NULL,
  version INTEGER NOT NULL, expires_at INTEGER NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY(kind, ksid, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entities_by_expiry ON entities(expires_at) WHERE expires_at > 0;
CREATE TABLE IF NOT EXISTS changes(
  seq INTEGER PRIMARY KEY, ksid BLOB NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
  op INTEGER NOT NULL, version INTEGER NOT NULL, value TEXT NOT NULL, expires_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ids(
  kind TEXT NOT NULL, id TEXT NOT NULL, ksid BLOB NOT NULL, PRIMARY KEY(kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumers(name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipts(
  key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receipts_by_expiry ON receipts(expires_at);
)sql";

// The statements, one a line (SQL reads better unbroken).
// clang-format off
constexpr const char* kGet = "SELECT version, expires_at, value FROM entities WHERE kind=?1 AND ksid=?2 AND id=?3";
constexpr const char* kFindKsid = "SELECT ksid FROM ids WHERE kind=?1 AND id=?2";
constexpr const char* kScanKind = "SELECT kind, ksid, id, version, expires_at, value FROM entities WHERE kind=?1 AND ksid>=?2 AND ksid<?3 AND (ksid, id) > (?4, ?5) ORDER BY ksid, id";
constexpr const char* kScanAll = "SELECT kind, ksid, id, version, expires_at, value FROM entities WHERE ksid>=?1 AND ksid<?2 ORDER BY kind, ksid, id";
constexpr const char* kScanExpired = "SELECT kind, ksid, id, version, expires_at, value FROM entities WHERE expires_at > 0 AND expires_at <= ?1 LIMIT ?2";
constexpr const char* kPut = "INSERT OR REPLACE INTO entities(kind, ksid, id, version, expires_at, value) VALUES(?1,?2,?3,?4,?5,?6)";
constexpr const char* kDelete = "DELETE FROM entities WHERE kind=?1 AND ksid=?2 AND id=?3";
constexpr const char* kPutId = "INSERT OR REPLACE INTO ids(kind, id, ksid) VALUES(?1,?2,?3)";
constexpr const char* kDeleteId = "DELETE FROM ids WHERE kind=?1 AND id=?2";
constexpr const char* kAppendChange = "INSERT INTO changes(seq, ksid, kind, id, op, version, value, expires_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)";
constexpr const char* kReadChanges = "SELECT seq, ksid, kind, id, op, version, value, expires_at FROM changes WHERE seq>=?1 ORDER BY seq LIMIT ?2";
constexpr const char* kPutConsumer = "INSERT OR REPLACE INTO consumers(name, position) VALUES(?1,?2)";
constexpr const char* kDeleteConsumer = "DELETE FROM consumers WHERE name=?1";
constexpr const char* kTrim = "DELETE FROM changes WHERE seq<?1";
constexpr const char* kPutTrimPoint = "INSERT OR REPLACE INTO meta(key, value) VALUES('trimmed_below', ?1)";
constexpr const char* kGetTrimPoint = "SELECT value FROM meta WHERE key='trimmed_below'";
constexpr const char* kFeedBounds = "SELECT min(seq), max(seq) FROM changes";
constexpr const char* kConsumers = "SELECT name, position FROM consumers";
constexpr const char* kGetReceipt = "SELECT body FROM receipts WHERE key=?1";
constexpr const char* kPutReceipt = "INSERT OR REPLACE INTO receipts(key, expires_at, body) VALUES(?1,?2,?3)";
constexpr const char* kDeleteReceipt = "DELETE FROM receipts WHERE key=?1 AND expires_at=?2";
constexpr const char* kExpiredReceipts = "SELECT key, expires_at FROM receipts WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2";
// clang-format on

// One connection and its prepared statements; used by one thread at a time.
class Connection {
 public:
  ~Connection() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  static Result<std::unique_ptr<Connection>> Open(const std::string& file, bool read_only,
                                                  const StoreOptions& options) {
    auto c = std::unique_ptr<Connection>(new Connection);
    int flags = SQLITE_OPEN_NOMUTEX |
                (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(file.c_str(), &c->db_, flags, nullptr) != SQLITE_OK) {
      return Status::Internal("sqlite open " + file + ": " + sqlite3_errmsg(c->db_));
    }
    sqlite3_busy_timeout(c->db_, options.sqlite.busy_timeout_ms);
    std::string pragmas =
        "PRAGMA cache_size=-" + std::to_string(options.sqlite.cache_kib_per_connection) + ";";
    if (!read_only) {
      const char* sync = options.durability == Durability::kSync    ? "FULL"
                         : options.durability == Durability::kGroup ? "NORMAL"
                                                                    : "OFF";
      pragmas += "PRAGMA journal_mode=WAL; PRAGMA synchronous=" + std::string(sync) + ";";
      pragmas += kSchema;
    }
    if (Status s = c->Exec(pragmas.c_str()); !s.ok()) return s;
    return c;
  }

  Status Exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      Status s = Status::Internal(std::string("sqlite: ") + (error ? error : "error"));
      sqlite3_free(error);
      return s;
    }
    return Status::Ok();
  }

  // The prepared statement for `sql` (a static string), reset and unbound.
  Result<sqlite3_stmt*> Prepare(const char* sql) {
    sqlite3_stmt*& stmt = statements_[sql];
    if (stmt == nullptr &&
        sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      return Error("prepare");
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
  }

  // The disk fault behind the last failed statement ("disk full", …), or empty. Read before
  // anything else runs on the connection (a ROLLBACK replaces the error).
  std::string DiskCause() const {
    const int code = sqlite3_errcode(db_) & 0xff;  // the primary code of an extended one
    if (code == SQLITE_FULL) return WriteFault::CauseOfErrno(ENOSPC);
    // The system errno is the last OS error of the connection: it speaks for an I/O error only.
    if (code != SQLITE_IOERR && code != SQLITE_READONLY && code != SQLITE_CANTOPEN) return {};
    std::string cause = WriteFault::CauseOfErrno(sqlite3_system_errno(db_));
    // An I/O error is the disk's, whichever call's errno the connection kept last.
    if (cause.empty() && code == SQLITE_IOERR) cause = WriteFault::CauseOfErrno(EIO);
    return cause;
  }

  Status Error(std::string_view what) const {
    return Status::Internal("sqlite " + std::string(what) + ": " + sqlite3_errmsg(db_));
  }

 private:
  Connection() = default;
  sqlite3* db_ = nullptr;
  std::map<const char*, sqlite3_stmt*> statements_;
};

// Resets a statement when a use of it ends (releases its read snapshot).
struct StatementUse {
  sqlite3_stmt* stmt;
  ~StatementUse() { sqlite3_reset(stmt); }
};

// Bound without a copy: every caller steps the statement while `text` lives, and the next use
// clears the bindings first (Connection::Prepare).
void BindText(sqlite3_stmt* s, int i, std::string_view text) {
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}
void BindKsid(sqlite3_stmt* s, int i, uint64_t ksid) {
  std::string bytes = BigEndian64(ksid);
  sqlite3_bind_blob(s, i, bytes.data(), 8, SQLITE_TRANSIENT);
}
// The expiry scans' parameters: ?1 the time in ms, ?2 the most rows.
void BindExpiryScan(sqlite3_stmt* s, int64_t now_ms, size_t limit) {
  sqlite3_bind_int64(s, 1, now_ms);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(limit));
}
std::string_view ColumnText(sqlite3_stmt* s, int i) {
  const char* text = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return text == nullptr ? std::string_view() : std::string_view(text, sqlite3_column_bytes(s, i));
}
uint64_t ColumnKsid(sqlite3_stmt* s, int i) {
  const void* blob = sqlite3_column_blob(s, i);
  if (blob == nullptr || sqlite3_column_bytes(s, i) != 8) return 0;
  return ReadBigEndian64(std::string_view(static_cast<const char*>(blob), 8));
}
// Columns kind, ksid, id, version, expires_at, value.
EntityRecord ColumnRow(sqlite3_stmt* s) {
  return {std::string(ColumnText(s, 0)),
          ColumnKsid(s, 1),
          std::string(ColumnText(s, 2)),
          std::string(ColumnText(s, 5)),
          static_cast<uint64_t>(sqlite3_column_int64(s, 3)),
          sqlite3_column_int64(s, 4)};
}

class SqliteBackend final : public Backend {
 public:
  static Result<std::unique_ptr<Backend>> Open(const StoreOptions& options) {
    if (options.path.empty()) return Status::Invalid("path: the SQLite store needs a directory");
    std::error_code ec;
    std::filesystem::create_directories(options.path, ec);
    if (ec) return Status::Internal("sqlite: cannot create " + options.path + ": " + ec.message());
    const std::string file = options.path + "/store.db";
    auto backend = std::unique_ptr<SqliteBackend>(new SqliteBackend(
        options.name.empty() ? options.path : options.name, options.path, options.durability));
    Result<std::unique_ptr<Connection>> writer = Connection::Open(file, false, options);
    if (!writer.ok()) return writer.status();
    backend->writer_ = std::move(writer).value();
    for (int i = 0; i < std::max(1, options.sqlite.reader_connections); ++i) {
      Result<std::unique_ptr<Connection>> reader = Connection::Open(file, true, options);
      if (!reader.ok()) return reader.status();
      backend->idle_readers_.push_back(std::move(reader).value());
    }
    return std::unique_ptr<Backend>(std::move(backend));
  }

  Result<std::optional<EntityRecord>> Get(std::string_view kind, uint64_t ksid,
                                          std::string_view id) override {
    Reader reader(*this);
    return GetOn(*reader, kind, ksid, id);
  }

  // On the writer connection: its page cache stays valid across its own commits, where a
  // reader's is dropped at every commit, so a save's read of the current row costs a cached
  // B-tree descent instead of page reads from the WAL.
  Result<std::optional<EntityRecord>> GetForWrite(std::string_view kind, uint64_t ksid,
                                                  std::string_view id) override {
    std::lock_guard lock(writer_mu_);
    return GetOn(*writer_, kind, ksid, id);
  }

  Result<std::optional<uint64_t>> FindKsid(std::string_view kind, std::string_view id) override {
    Reader reader(*this);
    Result<sqlite3_stmt*> stmt = reader->Prepare(kFindKsid);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    BindText(*stmt, 1, kind);
    BindText(*stmt, 2, id);
    int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_DONE) return std::optional<uint64_t>();
    if (rc != SQLITE_ROW) return reader->Error("find ksid");
    return std::optional<uint64_t>(ColumnKsid(*stmt, 0));
  }

  Status Scan(const ScanSpec& spec, const RowVisitor& visit) override {
    Reader reader(*this);
    const bool one_kind = !spec.kind.empty();
    Result<sqlite3_stmt*> stmt = reader->Prepare(one_kind ? kScanKind : kScanAll);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    const int first = one_kind ? 2 : 1;
    if (one_kind) BindText(*stmt, 1, spec.kind);
    BindKsid(*stmt, first, spec.range.begin);
    if (spec.range.end != 0) {
      BindKsid(*stmt, first + 1, spec.range.end);
    } else {
      const std::string above_all(9, '\xff');  // longer than any 8-byte ksid, so greater
      sqlite3_bind_blob(*stmt, first + 1, above_all.data(), 9, SQLITE_TRANSIENT);
    }
    if (one_kind) {
      if (spec.after) {
        BindKsid(*stmt, 4, spec.after->first);
        BindText(*stmt, 5, spec.after->second);
      } else {
        sqlite3_bind_zeroblob(*stmt, 4, 0);  // below every ksid
        BindText(*stmt, 5, "");
      }
    }
    return StepRows(*reader, *stmt, visit, "scan");
  }

  Status ScanExpired(int64_t now_ms, size_t limit, const RowVisitor& visit) override {
    Reader reader(*this);
    Result<sqlite3_stmt*> stmt = reader->Prepare(kScanExpired);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    BindExpiryScan(*stmt, now_ms, limit);
    return StepRows(*reader, *stmt, visit, "scan expired");
  }

  // A failed commit rolls back whole, so while a disk fault lasts every write simply tries
  // again: the first to find space resumes writing.
  Status Commit(const WriteSet& writes) override {
    std::lock_guard lock(writer_mu_);
    Connection& c = *writer_;
    Status s = c.Exec("BEGIN IMMEDIATE");
    if (s.ok()) s = Apply(c, writes);
    if (s.ok()) s = c.Exec("COMMIT");
    if (s.ok()) {
      fault_.Clear();
      return s;
    }
    std::string cause = c.DiskCause();
    (void)c.Exec("ROLLBACK");
    if (cause.empty()) return s;
    fault_.Set(cause, s.message());
    return fault_.Refuse();
  }

  Status ConfirmSynced() override {
    return durability_ == Durability::kSync ? fault_.ConfirmSynced(path_) : Status::Ok();
  }

  StorageHealth Health() override { return fault_.Health(); }

  // Only writers look receipts up: on the writer connection, as GetForWrite.
  Result<std::optional<std::string>> GetReceipt(std::string_view key) override {
    std::lock_guard lock(writer_mu_);
    Connection& c = *writer_;
    Result<sqlite3_stmt*> stmt = c.Prepare(kGetReceipt);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    BindText(*stmt, 1, key);
    int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return c.Error("get receipt");
    const void* blob = sqlite3_column_blob(*stmt, 0);
    const int size = sqlite3_column_bytes(*stmt, 0);
    return std::optional<std::string>(
        blob == nullptr ? std::string() : std::string(static_cast<const char*>(blob), size));
  }

  Result<std::vector<std::pair<std::string, int64_t>>> ExpiredReceipts(int64_t now_ms,
                                                                       size_t limit) override {
    Reader reader(*this);
    Result<sqlite3_stmt*> stmt = reader->Prepare(kExpiredReceipts);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    BindExpiryScan(*stmt, now_ms, limit);
    std::vector<std::pair<std::string, int64_t>> out;
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW)
      out.emplace_back(std::string(ColumnText(*stmt, 0)), sqlite3_column_int64(*stmt, 1));
    if (rc != SQLITE_DONE) return reader->Error("scan receipts");
    return out;
  }

  Result<std::vector<ChangeRecord>> ReadChanges(uint64_t from_sequence, size_t limit) override {
    Reader reader(*this);
    Result<sqlite3_stmt*> stmt = reader->Prepare(kReadChanges);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    sqlite3_bind_int64(*stmt, 1, static_cast<int64_t>(from_sequence));
    sqlite3_bind_int64(*stmt, 2, static_cast<int64_t>(limit));
    std::vector<ChangeRecord> out;
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
      ChangeRecord& c = out.emplace_back();
      c.sequence = static_cast<uint64_t>(sqlite3_column_int64(*stmt, 0));
      c.ksid = ColumnKsid(*stmt, 1);
      c.kind = ColumnText(*stmt, 2);
      c.id = ColumnText(*stmt, 3);
      SetStoredOp(c, static_cast<uint8_t>(sqlite3_column_int(*stmt, 4)));
      c.version = static_cast<uint64_t>(sqlite3_column_int64(*stmt, 5));
      c.value = ColumnText(*stmt, 6);
      c.expires_at_ms = sqlite3_column_int64(*stmt, 7);
    }
    if (rc != SQLITE_DONE) return reader->Error("read changes");
    return out;
  }

  Result<FeedState> LoadFeedState() override {
    std::lock_guard lock(writer_mu_);
    Connection& c = *writer_;
    FeedState state;
    uint64_t first = 0, last = 0, trimmed_below = 0;
    {
      Result<sqlite3_stmt*> stmt = c.Prepare(kFeedBounds);
      if (!stmt.ok()) return stmt.status();
      StatementUse use{*stmt};
      if (sqlite3_step(*stmt) != SQLITE_ROW) return c.Error("load feed");
      first = static_cast<uint64_t>(sqlite3_column_int64(*stmt, 0));  // NULL reads as 0
      last = static_cast<uint64_t>(sqlite3_column_int64(*stmt, 1));
    }
    {
      Result<sqlite3_stmt*> stmt = c.Prepare(kGetTrimPoint);
      if (!stmt.ok()) return stmt.status();
      StatementUse use{*stmt};
      if (sqlite3_step(*stmt) == SQLITE_ROW)
        trimmed_below = static_cast<uint64_t>(sqlite3_column_int64(*stmt, 0));
    }
    state.last_sequence = std::max(last, trimmed_below > 0 ? trimmed_below - 1 : 0);
    state.first_retained = first != 0 ? first : state.last_sequence + 1;
    Result<sqlite3_stmt*> stmt = c.Prepare(kConsumers);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
      state.consumers[std::string(ColumnText(*stmt, 0))] =
          static_cast<uint64_t>(sqlite3_column_int64(*stmt, 1));
    }
    if (rc != SQLITE_DONE) return c.Error("load consumers");
    return state;
  }

 private:
  // Leases a reader connection from the pool for one call.
  class Reader {
   public:
    explicit Reader(SqliteBackend& backend) : backend_(backend) {
      std::unique_lock lock(backend_.readers_mu_);
      backend_.readers_cv_.wait(lock, [&] { return !backend_.idle_readers_.empty(); });
      connection_ = std::move(backend_.idle_readers_.back());
      backend_.idle_readers_.pop_back();
    }
    ~Reader() {
      {
        std::lock_guard lock(backend_.readers_mu_);
        backend_.idle_readers_.push_back(std::move(connection_));
      }
      backend_.readers_cv_.notify_one();
    }
    Connection* operator->() { return connection_.get(); }
    Connection& operator*() { return *connection_; }

   private:
    SqliteBackend& backend_;
    std::unique_ptr<Connection> connection_;
  };

  SqliteBackend(std::string name, std::string path, Durability durability)
      : path_(std::move(path)), durability_(durability), fault_(std::move(name)) {}

  static Result<std::optional<EntityRecord>> GetOn(Connection& c, std::string_view kind,
                                                   uint64_t ksid, std::string_view id) {
    Result<sqlite3_stmt*> stmt = c.Prepare(kGet);
    if (!stmt.ok()) return stmt.status();
    char ksid_bytes[8];  // outlives the step: bound without a copy (the hot read path)
    WriteBigEndian64(ksid_bytes, ksid);
    StatementUse use{*stmt};
    BindText(*stmt, 1, kind);
    sqlite3_bind_blob(*stmt, 2, ksid_bytes, 8, SQLITE_STATIC);
    BindText(*stmt, 3, id);
    int rc = sqlite3_step(*stmt);
    if (rc == SQLITE_DONE) return std::optional<EntityRecord>();
    if (rc != SQLITE_ROW) return c.Error("get");
    return std::optional<EntityRecord>(EntityRecord{
        std::string(kind), ksid, std::string(id), std::string(ColumnText(*stmt, 2)),
        static_cast<uint64_t>(sqlite3_column_int64(*stmt, 0)), sqlite3_column_int64(*stmt, 1)});
  }

  static Status StepRows(Connection& c, sqlite3_stmt* stmt, const RowVisitor& visit,
                         std::string_view what) {
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (!visit(ColumnRow(stmt))) return Status::Ok();
    }
    return rc == SQLITE_DONE ? Status::Ok() : c.Error(what);
  }

  // Runs one prepared statement to completion with `bind` applied.
  template <typename Bind>
  static Status Run(Connection& c, const char* sql, Bind bind) {
    Result<sqlite3_stmt*> stmt = c.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    StatementUse use{*stmt};
    bind(*stmt);
    return sqlite3_step(*stmt) == SQLITE_DONE ? Status::Ok() : c.Error("write");
  }

  // The statement each write runs, and its parameters.
  static const char* SqlOf(const EntityWrite& w) { return w.remove ? kDelete : kPut; }
  static const char* SqlOf(const IdIndexWrite& w) { return w.ksid ? kPutId : kDeleteId; }
  static const char* SqlOf(const ChangeRecord&) { return kAppendChange; }
  static const char* SqlOf(const ConsumerWrite& w) {
    return w.position ? kPutConsumer : kDeleteConsumer;
  }
  static const char* SqlOf(const ReceiptWrite& w) {
    return w.remove ? kDeleteReceipt : kPutReceipt;
  }

  static void Bind(sqlite3_stmt* st, const EntityWrite& w) {
    const EntityRecord& r = w.row;
    BindText(st, 1, r.kind);
    BindKsid(st, 2, r.ksid);
    BindText(st, 3, r.id);
    if (w.remove) return;  // the key is all a delete takes
    sqlite3_bind_int64(st, 4, static_cast<int64_t>(r.version));
    sqlite3_bind_int64(st, 5, r.expires_at_ms);
    BindText(st, 6, r.value);
  }
  static void Bind(sqlite3_stmt* st, const IdIndexWrite& w) {
    BindText(st, 1, w.kind);
    BindText(st, 2, w.id);
    if (w.ksid) BindKsid(st, 3, *w.ksid);
  }
  static void Bind(sqlite3_stmt* st, const ChangeRecord& ch) {
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(ch.sequence));
    BindKsid(st, 2, ch.ksid);
    BindText(st, 3, ch.kind);
    BindText(st, 4, ch.id);
    sqlite3_bind_int(st, 5, StoredOp(ch));
    sqlite3_bind_int64(st, 6, static_cast<int64_t>(ch.version));
    BindText(st, 7, ch.value);
    sqlite3_bind_int64(st, 8, ch.expires_at_ms);
  }
  static void Bind(sqlite3_stmt* st, const ConsumerWrite& w) {
    BindText(st, 1, w.name);
    if (w.position) sqlite3_bind_int64(st, 2, static_cast<int64_t>(*w.position));
  }
  static void Bind(sqlite3_stmt* st, const ReceiptWrite& w) {
    BindText(st, 1, w.key);
    sqlite3_bind_int64(st, 2, w.expires_at_ms);
    if (!w.remove)
      sqlite3_bind_blob(st, 3, w.body.data(), static_cast<int>(w.body.size()), SQLITE_TRANSIENT);
  }

  // Runs each write's statement in order; the first error stops it.
  template <typename Write>
  static Status RunEach(Connection& c, const std::vector<Write>& writes) {
    for (const Write& w : writes) {
      Status s = Run(c, SqlOf(w), [&](sqlite3_stmt* st) { Bind(st, w); });
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  static Status Apply(Connection& c, const WriteSet& writes) {
    Status s = RunEach(c, writes.entities);
    if (s.ok()) s = RunEach(c, writes.id_index);
    if (s.ok()) s = RunEach(c, writes.changes);
    if (s.ok()) s = RunEach(c, writes.consumers);
    if (s.ok()) s = RunEach(c, writes.receipts);
    if (!s.ok() || writes.trim_below == 0) return s;
    auto bind = [&](sqlite3_stmt* st) {
      sqlite3_bind_int64(st, 1, static_cast<int64_t>(writes.trim_below));
    };
    s = Run(c, kTrim, bind);
    return s.ok() ? Run(c, kPutTrimPoint, bind) : s;
  }

  const std::string path_;
  const Durability durability_;
  std::mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // guarded by writer_mu_
  WriteFault fault_;
  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;  // guarded by readers_mu_
};

}  // namespace
}  // namespace internal

Result<std::unique_ptr<EntityStore>> OpenSqliteStore(const StoreOptions& options) {
  Result<std::unique_ptr<internal::Backend>> backend = internal::SqliteBackend::Open(options);
  if (!backend.ok()) return backend.status();
  return internal::NewStoreOn(std::move(backend).value(), options);
}

}  // namespace shardkit::store
