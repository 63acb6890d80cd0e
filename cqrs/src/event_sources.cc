// The two event sources: the command log (in process) and a store's change feed (by message).
#include <fmt/format.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/store/scheduler.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "shardkit/cqrs/projection_service.h"

namespace shardkit::cqrs {
namespace {

// A logged command as an event.
Event EventOfCommand(LoggedCommand command) {
  Event event;
  event.position = command.position;
  auto message = ParseMessage(command.json);
  if (message.ok()) {
    auto op = message->GetString("store");
    auto kind = message->GetString("kind");
    if (op && kind && (*op == "save" || *op == "remove")) {
      event.kind = *kind;
      event.id = command.key.substr(command.key.find('\0') + 1);
      if (*op == "save") {
        event.op = EventOp::kSave;
        event.value = std::string(message->GetObjectJson("ent").value_or("{}"));
      } else {
        event.op = EventOp::kRemove;
      }
    }
  }
  event.command = std::move(command.json);
  return event;
}

class CommandLogSource final : public EventSource {
 public:
  explicit CommandLogSource(std::shared_ptr<CommandLog> log) : log_(std::move(log)) {}
  ~CommandLogSource() override { SetWake(nullptr); }

  Result<std::vector<Event>> Read(uint64_t from, size_t limit) override {
    auto commands = log_->Read(from, limit);
    if (!commands.ok()) return std::move(commands).status();
    std::vector<Event> events;
    events.reserve(commands->size());
    for (LoggedCommand& c : *commands) events.push_back(EventOfCommand(std::move(c)));
    return events;
  }
  uint64_t Head() const override { return log_->Head(); }
  void SetWake(std::function<void()> wake) override {
    if (listener_) log_->RemoveListener(listener_);
    listener_ = wake ? log_->AddListener(std::move(wake)) : 0;
  }
  int64_t poll_interval_ms() const override { return 0; }

 private:
  std::shared_ptr<CommandLog> log_;
  uint64_t listener_ = 0;
};

// A save in a shard's feed may be a step of a shard router's cross-shard move
// (docs/sharding.md): the marker (the entity, still here, with `moving$`) changes nothing a
// read model shows, so it is kOther; the tombstone (`moving$.done`: the entity left this shard)
// is a removal. Anything else is a plain save.
EventOp MoveStep(const rapidjson::Value& ent) {
  if (!ent.IsObject()) return EventOp::kSave;
  auto moving = ent.FindMember("moving$");
  if (moving == ent.MemberEnd()) return EventOp::kSave;
  const rapidjson::Value& m = moving->value;
  const bool done = m.IsObject() && m.HasMember("done") && m["done"].IsTrue();
  return done ? EventOp::kRemove : EventOp::kOther;
}

// Reads by message; when a read finds nothing new, one long-poll (store:changes with wait_ms) is
// left open and its answer wakes the runner: a record is projected as soon as the store commits
// it, and an idle projection sends one request per wait_ms.
class ChangeFeedSource final : public EventSource {
 public:
  ChangeFeedSource(Bus& bus, Message request, int64_t poll_ms, int64_t wait_ms)
      : bus_(bus), request_(std::move(request)), poll_ms_(poll_ms), wait_ms_(wait_ms) {}
  ~ChangeFeedSource() override { SetWake(nullptr); }

  Result<std::vector<Event>> Read(uint64_t from, size_t limit) override {
    Message request = request_;
    request.SetUint("from", from);
    request.SetUint("limit", limit);
    auto reply = bus_.ActAndWait(std::move(request), std::chrono::seconds(10));
    if (!reply.ok()) return std::move(reply).status();
    if (auto last = reply->GetUint("last")) state_->head.store(*last, std::memory_order_release);
    auto changes = reply->GetArrayJson("changes");
    if (!changes) return Status::Internal("change feed reply: changes: missing");
    auto doc = ParseJson(*changes, "changes");
    if (!doc.ok()) return std::move(doc).status();
    std::vector<Event> events;
    for (const auto& c : doc->GetArray()) {
      if (!c.IsObject() || !c.HasMember("seq") || !c["seq"].IsUint64() || !c.HasMember("kind") ||
          !c["kind"].IsString() || !c.HasMember("id") || !c["id"].IsString() ||
          !c.HasMember("op")) {
        return Status::Internal("change feed reply: malformed change");
      }
      Event event;
      event.position = c["seq"].GetUint64();
      event.kind = c["kind"].GetString();
      event.id = c["id"].GetString();
      std::string_view op = c["op"].GetString();
      event.op = op == "save" ? EventOp::kSave : EventOp::kRemove;
      if (event.op == EventOp::kSave && c.HasMember("ent")) {
        event.op = MoveStep(c["ent"]);
        if (event.op == EventOp::kSave) event.value = ToJsonText(c["ent"]);
      }
      events.push_back(std::move(event));
    }
    if (events.empty()) WaitAfter(from);
    return events;
  }
  uint64_t Head() const override { return state_->head.load(std::memory_order_acquire); }

  bool has_snapshot() const override { return request_.GetString("kind").has_value(); }
  // The last sequence first, then every entity of the kind, page by page: a change committed
  // meanwhile is in the pages or after that sequence (or both: projections apply states).
  Result<uint64_t> Snapshot(const ApplySnapshot& apply) override {
    Message head = request_;
    head.SetUint("limit", 1);
    auto last = bus_.ActAndWait(std::move(head), std::chrono::seconds(10));
    if (!last.ok()) return std::move(last).status();
    const uint64_t position = last->GetUint("last").value_or(0);
    const std::string kind(*request_.GetString("kind"));
    std::string cursor;
    do {
      Message list = request_;
      list.SetString("store", "list");
      JsonObject q;
      q.Add("limit$", 1000);
      if (!cursor.empty()) q.Add("cursor$", cursor);
      list.SetObjectJson("q", q.str());
      auto page = bus_.ActAndWait(std::move(list), std::chrono::seconds(30));
      if (!page.ok()) return std::move(page).status();
      auto items = ParseJson(page->GetArrayJson("items").value_or("[]"), "items");
      if (!items.ok() || !items->IsArray()) return Status::Internal("snapshot: malformed items");
      std::vector<Event> events;
      for (const auto& item : items->GetArray()) {
        if (!item.IsObject() || !item.HasMember("id") || !item["id"].IsString())
          return Status::Internal("snapshot: an item without an id");
        if (MoveStep(item) != EventOp::kSave) continue;  // a cross-shard move's marker
        Event event;
        event.op = EventOp::kSave;
        event.kind = kind;
        event.id = item["id"].GetString();
        event.value = ToJsonText(item);
        events.push_back(std::move(event));
      }
      if (!events.empty()) {
        if (Status s = apply(events); !s.ok()) return s;
      }
      cursor = std::string(page->GetString("cursor").value_or(""));
    } while (!cursor.empty());
    return position;
  }

  void SetWake(std::function<void()> wake) override {
    std::lock_guard lock(state_->mu);
    state_->wake = std::move(wake);
  }
  // Only a safety net: the long-poll's answer wakes the runner.
  int64_t poll_interval_ms() const override { return wait_ms_ + poll_ms_; }

 private:
  struct State {
    std::mutex mu;
    std::function<void()> wake;  // guarded by mu
    bool waiting = false;        // guarded by mu: a long-poll is open
    std::atomic<uint64_t> head{0};
  };

  // Opens a long-poll for a record at or past `from` (unless one is open already).
  void WaitAfter(uint64_t from) {
    {
      std::lock_guard lock(state_->mu);
      if (state_->waiting || !state_->wake) return;
      state_->waiting = true;
    }
    Message request = request_;
    request.SetUint("from", from);
    request.SetUint("limit", 1);
    request.SetInt("wait_ms", wait_ms_);
    request.meta().deadline = bus_.clock().NowMs() + wait_ms_ + 10'000;
    const auto sent = std::chrono::steady_clock::now();
    bus_.Act(std::move(request), [state = state_, sent, poll_ms = poll_ms_](Result<Message> r) {
      const bool news = r.ok() && r->GetArrayJson("changes").value_or("[]") != "[]";
      if (r.ok()) {
        if (auto last = r->GetUint("last")) state->head.store(*last, std::memory_order_release);
      }
      auto wake = [state] {
        std::function<void()> wake;
        {
          std::lock_guard lock(state->mu);
          state->waiting = false;
          wake = state->wake;
        }
        if (wake) wake();
      };
      // An error, or a store that answered at once without waiting: not again before poll_ms.
      const auto early =
          sent + std::chrono::milliseconds(poll_ms) - std::chrono::steady_clock::now();
      if (news || early <= std::chrono::steady_clock::duration::zero()) return wake();
      store::Scheduler::Shared().After(
          std::chrono::duration_cast<std::chrono::milliseconds>(early) +
              std::chrono::milliseconds(1),
          std::move(wake));
    });
  }

  Bus& bus_;
  const Message request_;
  const int64_t poll_ms_;
  const int64_t wait_ms_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace

std::unique_ptr<EventSource> MakeCommandLogSource(std::shared_ptr<CommandLog> log) {
  return std::make_unique<CommandLogSource>(std::move(log));
}

std::unique_ptr<EventSource> MakeChangeFeedSource(Bus& bus, Message request,
                                                  int64_t poll_interval_ms, int64_t wait_ms) {
  return std::make_unique<ChangeFeedSource>(bus, std::move(request),
                                            std::max<int64_t>(1, poll_interval_ms),
                                            std::max<int64_t>(1, wait_ms));
}

}  // namespace shardkit::cqrs
