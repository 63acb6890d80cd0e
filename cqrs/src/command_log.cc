// CommandLog on RocksDB: one writer thread turns the queued appends into group commits.
#include "shardkit/cqrs/command_log.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "bytes.h"
#include "rocksdb_open.h"
#include "shardkit/message/thread_name.h"

namespace shardkit::cqrs {
namespace {

using internal::NumberKey;
using internal::PutBe32;
using internal::PutBe64;
using internal::PutString;
using internal::TakeBe;
using internal::TakeString;

constexpr char kLog = 'L', kIndex = 'I', kDead = 'D', kMeta = 'M';

std::string EncodeCommand(std::string_view id, std::string_view key, std::string_view json) {
  std::string v;
  v.reserve(8 + id.size() + key.size() + json.size());
  PutString(v, id);
  PutString(v, key);
  v.append(json);
  return v;
}

std::optional<LoggedCommand> DecodeCommand(uint64_t position, std::string_view v) {
  auto id = TakeString(v);
  auto key = TakeString(v);
  if (!id || !key) return std::nullopt;
  return LoggedCommand{position, std::string(*id), std::string(*key), std::string(v)};
}

std::optional<DeadLetter> DecodeDeadLetter(uint64_t position, std::string_view v) {
  auto attempts = TakeBe(v, 4);
  auto error = TakeString(v);
  if (!attempts || !error) return std::nullopt;
  auto command = DecodeCommand(position, v);
  if (!command) return std::nullopt;
  return DeadLetter{std::move(*command), std::string(*error), static_cast<uint32_t>(*attempts)};
}

uint64_t PositionOfKey(const rocksdb::Slice& key) {
  std::string_view k(key.data() + 1, key.size() - 1);
  return TakeBe(k, 8).value_or(0);
}

Status Engine(const rocksdb::Status& s, std::string_view what) {
  return internal::EngineError("command log", s, what);
}

class RocksCommandLog final : public CommandLog {
 public:
  RocksCommandLog(CommandLogOptions options, std::unique_ptr<rocksdb::DB> db, uint64_t head)
      : options_(std::move(options)), db_(std::move(db)), head_(head) {
    writer_ = std::thread([this] {
      NameThisThread("sk-cmdlog");
      WriterLoop();
    });
  }

  ~RocksCommandLog() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    writer_.join();
    if (options_.durability != store::Durability::kNone) (void)db_->SyncWAL();
  }

  void Append(std::string command_id, std::string key, std::string json,
              AppendCallback done) override {
    if (!command_id.empty() && command_id[0] == '@') {
      done(Status::Invalid("command_id: must not start with '@' (reserved for generated ids)",
                           R"({"field":"command_id"})"));
      return;
    }
    {
      std::unique_lock lock(mu_);
      if (stop_) {
        lock.unlock();
        done(Status::Unavailable("command log: shutting down"));
        return;
      }
      if (queue_.size() >= options_.max_queue) {
        lock.unlock();
        done(Status::Overloaded(fmt::format("command log: {} appends queued", options_.max_queue)));
        return;
      }
      queue_.push_back(Item{
          std::move(command_id), std::move(key), std::move(json), std::move(done), {}, nullptr});
      if (!writer_idle_) return;  // the writer looks at the queue again before it sleeps
    }
    cv_.notify_one();
  }

  Result<std::vector<LoggedCommand>> Read(uint64_t from, size_t limit) const override {
    return Scan<LoggedCommand>(kLog, from, limit, DecodeCommand, "record", "read");
  }

  uint64_t Head() const override { return head_.load(std::memory_order_acquire); }

  uint64_t AddListener(std::function<void()> wake) override {
    std::lock_guard lock(listeners_mu_);
    listeners_.emplace(next_listener_, std::move(wake));
    return next_listener_++;
  }
  void RemoveListener(uint64_t id) override {
    std::lock_guard lock(listeners_mu_);
    listeners_.erase(id);
  }

  Result<uint64_t> GetMeta(std::string_view name) const override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), MetaKey(name), &value);
    if (s.IsNotFound()) return uint64_t{0};
    if (!s.ok()) return Engine(s, "get meta");
    std::string_view v(value);
    return TakeBe(v, 8).value_or(0);
  }

  Status PutMeta(const std::vector<std::pair<std::string, uint64_t>>& values) override {
    rocksdb::WriteBatch batch;
    for (const auto& [name, value] : values) {
      std::string v;
      PutBe64(v, value);
      batch.Put(MetaKey(name), v);
    }
    rocksdb::Status s = db_->Write(WriteOptions(), &batch);
    return s.ok() ? Status::Ok() : Engine(s, "put meta");
  }

  Status AddDeadLetter(const DeadLetter& letter) override {
    std::string v;
    PutBe32(v, letter.attempts);
    PutString(v, letter.error);
    v += EncodeCommand(letter.command.command_id, letter.command.key, letter.command.json);
    rocksdb::Status s = db_->Put(WriteOptions(), NumberKey(kDead, letter.command.position), v);
    return s.ok() ? Status::Ok() : Engine(s, "add dead letter");
  }

  Result<std::vector<DeadLetter>> ListDeadLetters(uint64_t from, size_t limit) const override {
    return Scan<DeadLetter>(kDead, from, limit, DecodeDeadLetter, "dead letter",
                            "list dead letters");
  }

  Result<std::vector<Replayed>> ReplayDeadLetters(std::vector<uint64_t> positions) override {
    std::sort(positions.begin(), positions.end());
    positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
    auto promise = std::make_shared<std::promise<Result<std::vector<Replayed>>>>();
    auto future = promise->get_future();
    {
      std::lock_guard lock(mu_);
      if (stop_) return Status::Unavailable("command log: shutting down");
      Item item;
      item.replay = std::move(positions);
      item.replay_done = [promise](Result<std::vector<Replayed>> r) {
        promise->set_value(std::move(r));
      };
      queue_.push_back(std::move(item));
    }
    cv_.notify_one();
    return future.get();
  }

 private:
  struct Item {
    std::string command_id, key, json;
    AppendCallback done;
    std::vector<uint64_t> replay;  // non-empty (or replay_done set): a replay request
    std::function<void(Result<std::vector<Replayed>>)> replay_done;
  };

  // Up to `limit` records under `prefix` from position `from` on, each decoded by `decode`
  // (nullopt: the record is corrupt, named `record` in the error).
  template <typename T>
  Result<std::vector<T>> Scan(char prefix, uint64_t from, size_t limit,
                              std::optional<T> (*decode)(uint64_t, std::string_view),
                              std::string_view record, std::string_view what) const {
    std::vector<T> out;
    const std::string start = NumberKey(prefix, from), end(1, prefix + 1);
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
      const uint64_t position = PositionOfKey(it->key());
      auto item = decode(position, it->value().ToStringView());
      if (!item)
        return Status::Internal(fmt::format("command log: corrupt {} at {}", record, position));
      out.push_back(std::move(*item));
    }
    if (!it->status().ok()) return Engine(it->status(), what);
    return out;
  }

  static std::string MetaKey(std::string_view name) {
    std::string key(1, kMeta);
    key.append(name);
    return key;
  }

  rocksdb::WriteOptions WriteOptions() const {
    rocksdb::WriteOptions wo;
    wo.sync = options_.durability == store::Durability::kSync;
    return wo;
  }

  void WriterLoop() {
    const auto interval = std::chrono::milliseconds(std::max(1, options_.group_sync_interval_ms));
    auto last_sync = std::chrono::steady_clock::now();
    bool dirty = false;
    std::vector<Item> batch;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        writer_idle_ = true;
        if (dirty && options_.durability == store::Durability::kGroup) {
          cv_.wait_until(lock, last_sync + interval, [&] { return stop_ || !queue_.empty(); });
        } else {
          cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        }
        writer_idle_ = false;
        if (stop_) {
          for (Item& item : queue_) Fail(item, Status::Unavailable("command log: shutting down"));
          queue_.clear();
          return;
        }
        while (!queue_.empty() && batch.size() < options_.max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (!batch.empty()) {
        Commit(batch);
        batch.clear();
        dirty = true;
      }
      if (dirty && options_.durability == store::Durability::kGroup &&
          std::chrono::steady_clock::now() - last_sync >= interval) {
        (void)db_->SyncWAL();
        last_sync = std::chrono::steady_clock::now();
        dirty = false;
      }
    }
  }

  static void Fail(Item& item, const Status& status) {
    if (item.done) item.done(status);
    if (item.replay_done) item.replay_done(status);
  }

  // Writes one batch of appends and replays; answers each item after the write.
  void Commit(std::vector<Item>& items) {
    rocksdb::WriteBatch wb;
    uint64_t head = head_.load(std::memory_order_relaxed);
    std::unordered_map<std::string, uint64_t> ids_in_batch;
    std::vector<Result<AppendResult>> appended;
    std::vector<Result<std::vector<Replayed>>> replayed;
    appended.reserve(items.size());
    std::string index_value;
    for (Item& item : items) {
      if (item.replay_done) {
        replayed.push_back(PlanReplay(item.replay, head, wb));
        appended.push_back(Status::Internal("unused"));
        continue;
      }
      replayed.push_back(Status::Internal("unused"));
      if (!item.command_id.empty()) {
        if (auto it = ids_in_batch.find(item.command_id); it != ids_in_batch.end()) {
          appended.push_back(AppendResult{it->second, item.command_id, true});
          continue;
        }
        std::string index_key(1, kIndex);
        index_key += item.command_id;
        rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), index_key, &index_value);
        if (s.ok()) {
          std::string_view v(index_value);
          appended.push_back(AppendResult{TakeBe(v, 8).value_or(0), item.command_id, true});
          continue;
        }
        if (!s.IsNotFound()) {
          appended.push_back(Engine(s, "index lookup"));
          continue;
        }
        ++head;
        std::string pos;
        PutBe64(pos, head);
        wb.Put(index_key, pos);
        ids_in_batch.emplace(item.command_id, head);
      } else {
        ++head;
        item.command_id = "@" + std::to_string(head);
      }
      wb.Put(NumberKey(kLog, head), EncodeCommand(item.command_id, item.key, item.json));
      appended.push_back(AppendResult{head, item.command_id, false});
    }
    if (wb.Count() > 0) {
      rocksdb::Status s = db_->Write(WriteOptions(), &wb);
      if (!s.ok()) {
        Status error = Engine(s, "append");
        for (Item& item : items) Fail(item, error);
        return;
      }
    }
    head_.store(head, std::memory_order_release);
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].replay_done) {
        items[i].replay_done(std::move(replayed[i]));
      } else {
        items[i].done(std::move(appended[i]));
      }
    }
    std::lock_guard lock(listeners_mu_);
    for (auto& [id, wake] : listeners_) wake();
  }

  // Adds the writes of one replay to `wb`; advances `head` only if every position is a dead letter.
  Result<std::vector<Replayed>> PlanReplay(const std::vector<uint64_t>& positions, uint64_t& head,
                                           rocksdb::WriteBatch& wb) {
    std::vector<DeadLetter> letters;
    for (uint64_t p : positions) {
      std::string value;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), NumberKey(kDead, p), &value);
      if (s.IsNotFound())
        return Status::NotFound(fmt::format("position: {} is not a dead letter", p));
      if (!s.ok()) return Engine(s, "read dead letter");
      auto letter = DecodeDeadLetter(p, value);
      if (!letter) return Status::Internal("command log: corrupt dead letter");
      letters.push_back(std::move(*letter));
    }
    std::vector<Replayed> out;
    for (const DeadLetter& letter : letters) {
      ++head;
      const LoggedCommand& c = letter.command;
      wb.Put(NumberKey(kLog, head), EncodeCommand(c.command_id, c.key, c.json));
      wb.Delete(NumberKey(kDead, c.position));
      out.push_back(Replayed{c.position, head});
    }
    return out;
  }

  const CommandLogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<uint64_t> head_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;    // guarded by mu_
  bool stop_ = false;         // guarded by mu_
  bool writer_idle_ = false;  // guarded by mu_: the writer waits on cv_ (appends must wake it)
  std::thread writer_;

  std::mutex listeners_mu_;
  std::map<uint64_t, std::function<void()>> listeners_;  // guarded by listeners_mu_
  uint64_t next_listener_ = 1;                           // guarded by listeners_mu_
};

}  // namespace

Result<std::unique_ptr<CommandLog>> CommandLog::Open(const CommandLogOptions& options) {
  if (options.path.empty())
    return Status::Invalid("path: must not be empty", R"({"field":"path"})");
  auto opened = internal::OpenDatabase("command log", options.path);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<rocksdb::DB> db = std::move(opened).value();
  // The head is the last L key (or 0).
  uint64_t head = 0;
  {
    const std::string end(1, kLog + 1);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    it->SeekForPrev(end);
    if (it->Valid() && !it->key().empty() && it->key()[0] == kLog) head = PositionOfKey(it->key());
    if (!it->status().ok()) return Engine(it->status(), "find head");
  }
  return std::unique_ptr<CommandLog>(new RocksCommandLog(options, std::move(db), head));
}

}  // namespace shardkit::cqrs
