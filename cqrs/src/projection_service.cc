// ProjectionService: a runner thread commits read-model writes with their checkpoint; queries wait
// for min_position without blocking their caller.
#include "shardkit/cqrs/projection_service.h"

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <shardkit/message/json.h>
#include <spdlog/spdlog.h>

#include "bytes.h"
#include "rocksdb_open.h"
#include "shardkit/message/thread_name.h"
#include "wait.h"

namespace shardkit::cqrs {
namespace {

using internal::SteadyTime;
constexpr char kData = 'd';
const char* const kCheckpointKey = "mcheckpoint";

Status Engine(const rocksdb::Status& s, std::string_view what) {
  return internal::EngineError("read model", s, what);
}

std::string DataKey(std::string_view key) {
  std::string k(1, kData);
  k.append(key);
  return k;
}

// Committed state of the read model.
class DbView final : public ReadView {
 public:
  explicit DbView(rocksdb::DB* db) : db_(db) {}

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), DataKey(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return Engine(s, "get");
    return std::optional<std::string>(std::move(value));
  }

  Status Scan(std::string_view prefix, std::string_view after,
              const std::function<bool(std::string_view, std::string_view)>& visit) const override {
    const std::string start = DataKey(after.empty() ? prefix : after);
    const std::string full_prefix = DataKey(prefix);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(start);
    if (!after.empty() && it->Valid() && it->key().ToStringView() == start) it->Next();
    for (; it->Valid() && it->key().starts_with(full_prefix); it->Next()) {
      std::string_view key = it->key().ToStringView();
      key.remove_prefix(1);
      if (!visit(key, it->value().ToStringView())) break;
    }
    return it->status().ok() ? Status::Ok() : Engine(it->status(), "scan");
  }

 private:
  rocksdb::DB* db_;
};

// Committed state plus the batch's pending writes.
class OverlayView final : public StateView {
 public:
  OverlayView(const DbView& base,
              const std::map<std::string, std::optional<std::string>, std::less<>>& pending)
      : base_(base), pending_(pending) {}
  Result<std::optional<std::string>> Get(std::string_view key) const override {
    if (auto it = pending_.find(key); it != pending_.end()) return it->second;
    return base_.Get(key);
  }

 private:
  const DbView& base_;
  const std::map<std::string, std::optional<std::string>, std::less<>>& pending_;
};

class ProjectionServiceImpl final : public ProjectionService {
 public:
  ProjectionServiceImpl(std::unique_ptr<Projection> projection, std::unique_ptr<EventSource> source,
                        ProjectionOptions options, std::unique_ptr<rocksdb::DB> db,
                        uint64_t applied)
      : projection_(std::move(projection)),
        source_(std::move(source)),
        options_(std::move(options)),
        db_(std::move(db)),
        view_(db_.get()),
        applied_(applied) {}

  ~ProjectionServiceImpl() override { Stop(); }

  void Begin() override {
    {
      std::lock_guard lock(wake_->mu);
      if (wake_->stop || runner_.joinable()) return;
    }
    auto wake_flag = wake_;
    source_->SetWake([wake_flag] { wake_flag->Notify(); });
    runner_ = std::thread([this] {
      NameThisThread("sk-projection");
      Run();
    });
  }

  void Handle(Message query, const Context& context, ReplyFn reply) override {
    std::optional<uint64_t> min_position;
    if (const Value* v = query.Find("min_position")) {
      auto n = query.GetUint("min_position");
      if (!n || v->type != ValueType::kNumber)
        return reply(Status::InvalidField("min_position", "must be a non-negative integer"));
      min_position = *n;
    }
    int64_t timeout_ms = options_.default_timeout_ms;
    if (const Value* v = query.Find("timeout_ms")) {
      auto n = query.GetInt("timeout_ms");
      if (!n || *n < 0 || v->type != ValueType::kNumber)
        return reply(Status::InvalidField("timeout_ms", "must be a non-negative integer"));
      timeout_ms = std::min(*n, options_.max_timeout_ms);
    }
    if (!min_position || applied() >= *min_position) return Answer(query, reply);
    if (int64_t deadline = context.origin().deadline; deadline > 0 && context.bus() != nullptr) {
      timeout_ms =
          std::min(timeout_ms, std::max<int64_t>(0, deadline - context.bus()->clock().NowMs()));
    }
    {
      std::lock_guard lock(wake_->mu);
      if (!wake_->stop) {
        waiters_.push_back(Waiter{
            *min_position, std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms),
            std::move(query), std::move(reply)});
        wake_->flag = true;
        reply = nullptr;
      }
    }
    if (!reply) {
      wake_->cv.notify_all();
      return;
    }
    reply(Status::Unavailable(fmt::format("projection '{}' is stopped", projection_->name())));
  }

  LagInfo Lag() const override {
    LagInfo info;
    info.name = projection_->name();
    info.role = "projection";
    info.applied = applied();
    info.head = std::max(source_->Head(), info.applied);
    info.errors = errors_.load(std::memory_order_relaxed);
    return info;
  }

  uint64_t applied() const override { return applied_.load(std::memory_order_acquire); }

  bool WaitApplied(uint64_t position, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(wake_->mu);
    return wake_->cv.wait_for(lock, timeout, [&] { return applied() >= position; });
  }

  void Stop() override {
    {
      std::lock_guard lock(wake_->mu);
      wake_->stop = true;
    }
    wake_->cv.notify_all();
    if (runner_.joinable()) runner_.join();
    source_->SetWake(nullptr);
    std::list<Waiter> left;
    {
      std::lock_guard lock(wake_->mu);
      left.swap(waiters_);
    }
    for (Waiter& w : left) {
      if (applied() >= w.min_position) {
        Answer(w.query, w.reply);
      } else {
        w.reply(
            Status::Unavailable(fmt::format("projection '{}' is stopped", projection_->name())));
      }
    }
  }

 private:
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    bool flag = true;   // guarded by mu: new events or a new waiter (true: read once at start)
    bool stop = false;  // guarded by mu
    void Notify() {
      {
        std::lock_guard lock(mu);
        flag = true;
      }
      cv.notify_all();
    }
  };
  struct Waiter {
    uint64_t min_position;
    SteadyTime deadline;
    Message query;
    ReplyFn reply;
  };

  void Answer(const Message& query, const ReplyFn& reply) {
    Result<Message> answer = Status::Internal("unanswered");
    try {
      answer = projection_->Query(query, view_);
    } catch (const std::exception& e) {
      answer = Status::Internal(
          fmt::format("projection '{}' query threw: {}", projection_->name(), e.what()));
    }
    reply(std::move(answer));
  }

  void Run() {
    const int64_t poll = source_->poll_interval_ms();
    bool retry_soon = false;
    for (;;) {
      {
        std::unique_lock lock(wake_->mu);
        SteadyTime wake_at = SteadyTime::max();
        for (const Waiter& w : waiters_) wake_at = std::min(wake_at, w.deadline);
        if (poll > 0 || retry_soon) {
          wake_at = std::min(wake_at, std::chrono::steady_clock::now() +
                                          std::chrono::milliseconds(retry_soon ? 100 : poll));
        }
        auto ready = [&] { return wake_->stop || wake_->flag || source_->Head() > applied(); };
        internal::WaitReady(wake_->cv, lock, wake_at, ready);
        if (wake_->stop) return;
        wake_->flag = false;
      }
      retry_soon = !CatchUp();
      AnswerWaiters();
    }
  }

  // Applies every available event; false after an error (retried a little later).
  bool CatchUp() {
    for (;;) {
      {
        std::lock_guard lock(wake_->mu);
        if (wake_->stop) return true;
      }
      auto events = source_->Read(applied() + 1, options_.batch_size);
      if (!events.ok() && events.status().code() == Code::kNotFound) {
        if (Status s = Rebuild(events.status()); !s.ok()) {
          spdlog::error("projection '{}': rebuilding: {}", projection_->name(), s.ToString());
          return false;
        }
        continue;
      }
      if (!events.ok()) {
        spdlog::warn("projection '{}': reading events: {}", projection_->name(),
                     events.status().ToString());
        return false;
      }
      if (events->empty()) return true;
      if (Status s = ApplyBatch(*events); !s.ok()) {
        spdlog::error("projection '{}': {}", projection_->name(), s.ToString());
        return false;
      }
      AnswerWaiters();
    }
  }

  // The source no longer holds the events after the checkpoint (a change feed trimmed past it):
  // the read model is cleared and rebuilt from the source's snapshot of the current state, or,
  // for a source without one, from the first event it still has.
  Status Rebuild(const Status& missing) {
    auto details = ParseJson(missing.details_json(), "details");
    if (!details.ok() || !details->IsObject() || !details->HasMember("first_retained") ||
        !(*details)["first_retained"].IsUint64() || (*details)["first_retained"].GetUint64() == 0)
      return Status::Internal("the source's not_found names no first_retained: " +
                              missing.ToString());
    const uint64_t first = (*details)["first_retained"].GetUint64();
    const bool snapshot = source_->has_snapshot();
    spdlog::error(
        "projection '{}': the source no longer holds the events after {} ({}); rebuilding the "
        "read model from scratch, {}",
        projection_->name(), applied(), missing.message(),
        snapshot ? "from a snapshot of the source's current state"
                 : fmt::format("from event {}: entities last changed before it are missing from "
                               "it until they change again",
                               first));
    if (!snapshot) return Reset(first - 1);
    // Cleared with checkpoint 0 first: a crash during the snapshot starts it again.
    if (Status s = Reset(0); !s.ok()) return s;
    auto position =
        source_->Snapshot([this](const std::vector<Event>& events) { return ApplyBatch(events); });
    if (!position.ok()) return std::move(position).status();
    return Reset(*position, /*clear=*/false);
  }

  // Sets the checkpoint to `position`, clearing the read model first unless `clear` is false.
  Status Reset(uint64_t position, bool clear = true) {
    rocksdb::WriteBatch batch;
    if (clear) batch.DeleteRange(std::string(1, kData), std::string(1, kData + 1));
    std::string checkpoint;
    internal::PutBe64(checkpoint, position);
    batch.Put(kCheckpointKey, checkpoint);
    rocksdb::WriteOptions wo;
    wo.sync = options_.durability == store::Durability::kSync;
    if (rocksdb::Status s = db_->Write(wo, &batch); !s.ok()) return Engine(s, "rebuild");
    {
      std::lock_guard lock(wake_->mu);
      applied_.store(position, std::memory_order_release);
    }
    return Status::Ok();
  }

  Status ApplyBatch(const std::vector<Event>& events) {
    std::map<std::string, std::optional<std::string>, std::less<>> pending;
    OverlayView state(view_, pending);
    for (const Event& event : events) {
      Result<std::vector<Write>> writes = Status::Internal("unapplied");
      try {
        writes = projection_->Apply(event, state);
      } catch (const std::exception& e) {
        writes = Status::Internal(e.what());
      }
      if (!writes.ok()) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("projection '{}': event {} skipped: {}", projection_->name(), event.position,
                     writes.status().ToString());
        continue;
      }
      for (Write& w : *writes) pending[std::move(w.key)] = std::move(w.value);
    }
    rocksdb::WriteBatch batch;
    for (const auto& [key, value] : pending) {
      if (value) {
        batch.Put(DataKey(key), *value);
      } else {
        batch.Delete(DataKey(key));
      }
    }
    const uint64_t last = events.back().position;
    std::string checkpoint;
    internal::PutBe64(checkpoint, last);
    batch.Put(kCheckpointKey, checkpoint);
    rocksdb::WriteOptions wo;
    wo.sync = options_.durability == store::Durability::kSync;
    rocksdb::Status s = db_->Write(wo, &batch);
    if (!s.ok()) return Engine(s, "commit");
    {
      std::lock_guard lock(wake_->mu);
      applied_.store(last, std::memory_order_release);
    }
    wake_->cv.notify_all();  // WaitApplied callers
    if (options_.on_applied) options_.on_applied(last);
    return Status::Ok();
  }

  // Answers the waiters whose position is applied or whose time is up.
  void AnswerWaiters() {
    std::list<Waiter> done;
    const uint64_t now_applied = applied();
    const SteadyTime now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(wake_->mu);
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        auto next = std::next(it);
        if (it->min_position <= now_applied || it->deadline <= now)
          done.splice(done.end(), waiters_, it);
        it = next;
      }
    }
    for (Waiter& w : done) {
      if (w.min_position <= now_applied) {
        Answer(w.query, w.reply);
      } else {
        w.reply(Status::Timeout(
            fmt::format("projection '{}' has applied {} < min_position {}", projection_->name(),
                        now_applied, w.min_position),
            fmt::format(R"({{"applied":{},"min_position":{}}})", now_applied, w.min_position)));
      }
    }
  }

  std::unique_ptr<Projection> projection_;
  std::unique_ptr<EventSource> source_;
  const ProjectionOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  DbView view_;
  std::atomic<uint64_t> applied_;
  std::atomic<uint64_t> errors_{0};
  std::shared_ptr<Signal> wake_ = std::make_shared<Signal>();
  std::list<Waiter> waiters_;  // guarded by wake_->mu
  std::thread runner_;
};

}  // namespace

Result<std::shared_ptr<ProjectionService>> ProjectionService::Open(
    std::unique_ptr<Projection> projection, std::unique_ptr<EventSource> source,
    ProjectionOptions options) {
  if (!projection)
    return Status::Invalid("projection: must not be null", R"({"field":"projection"})");
  if (!source) return Status::Invalid("source: must not be null", R"({"field":"source"})");
  if (options.path.empty())
    return Status::Invalid("path: must not be empty", R"({"field":"path"})");
  if (options.batch_size == 0)
    return Status::Invalid("batch_size: must be positive", R"({"field":"batch_size"})");
  auto opened = internal::OpenDatabase("read model", options.path);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<rocksdb::DB> db = std::move(opened).value();
  std::string value;
  uint64_t applied = 0;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kCheckpointKey, &value);
  if (s.ok()) {
    std::string_view v(value);
    applied = internal::TakeBe(v, 8).value_or(0);
  } else if (!s.IsNotFound()) {
    return Engine(s, "read checkpoint");
  }
  auto service = std::make_shared<ProjectionServiceImpl>(
      std::move(projection), std::move(source), std::move(options), std::move(db), applied);
  return std::shared_ptr<ProjectionService>(std::move(service));
}

Result<std::shared_ptr<ProjectionService>> ProjectionService::Start(
    std::unique_ptr<Projection> projection, std::unique_ptr<EventSource> source,
    ProjectionOptions options) {
  auto service = Open(std::move(projection), std::move(source), std::move(options));
  if (service.ok()) (*service)->Begin();
  return service;
}

Status SwapRoutes(Bus& bus, const std::vector<std::string>& patterns,
                  std::shared_ptr<Handler> handler, std::string description) {
  std::vector<Pattern> parsed;
  for (const std::string& text : patterns) {
    auto pattern = Pattern::Parse(text);
    if (!pattern.ok()) return std::move(pattern).status();
    parsed.push_back(std::move(pattern).value());
  }
  return bus.Update([&](Router& router) -> Status {
    for (const Pattern& pattern : parsed) {
      while (router.Get(pattern)) {
        if (Status s = router.Remove(pattern); !s.ok()) return s;
      }
      if (Status s = router.Add(pattern, handler, description); !s.ok()) return s;
    }
    return Status::Ok();
  });
}

}  // namespace shardkit::cqrs
