// Applier: one thread owns every piece of state below; replies come back through an Inbox.
#include "shardkit/cqrs/applier.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <rapidjson/writer.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/message/thread_name.h>
#include <spdlog/spdlog.h>

#include "wait.h"

namespace shardkit::cqrs {
namespace {

using internal::SteadyTime;
using std::chrono::milliseconds;

// What arrives from other threads: replies, replay requests, "the log moved", "stop".
struct Inbox {
  struct Completion {
    uint64_t position;
    uint64_t attempt;
    Result<Message> reply;
  };
  struct ReplayRequest {
    std::optional<uint64_t> position;
    std::function<void(Result<std::vector<Replayed>>)> done;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Completion> completions;  // guarded by mu
  std::vector<ReplayRequest> replays;   // guarded by mu
  bool stop = false;                    // guarded by mu
  bool log_moved = false;               // guarded by mu

  void Post(Completion c) {
    {
      std::lock_guard lock(mu);
      completions.push_back(std::move(c));
    }
    cv.notify_one();
  }
};

// `ent` with `field` set to `position` (added last, replacing an existing member).
std::string Stamped(std::string_view ent_json, const std::string& field, uint64_t position) {
  auto doc = ParseJson(ent_json, "ent");
  if (!doc.ok() || !doc->IsObject()) return std::string(ent_json);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& member : doc->GetObject()) {
    if (std::string_view(member.name.GetString(), member.name.GetStringLength()) == field) continue;
    member.name.Accept(writer);
    member.value.Accept(writer);
  }
  writer.Key(field.data(), static_cast<rapidjson::SizeType>(field.size()));
  writer.Uint64(position);
  writer.EndObject();
  return WrittenJson(buffer);
}

// The stamp of the entity in a store:load reply ({"ent":{…}}); 0 when absent.
uint64_t StampOf(const Message& reply, const std::string& field) {
  auto ent = reply.GetObjectJson("ent");
  if (!ent) return 0;
  auto doc = ParseJson(*ent, "ent");
  if (!doc.ok() || !doc->IsObject()) return 0;
  auto it = doc->FindMember(rapidjson::StringRef(field.data(), field.size()));
  return it != doc->MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
}

class ApplierImpl final : public Applier, public std::enable_shared_from_this<ApplierImpl> {
 public:
  ApplierImpl(std::shared_ptr<CommandLog> log, Bus& bus, ApplierOptions options)
      : log_(std::move(log)),
        bus_(bus),
        options_(std::move(options)),
        inbox_(std::make_shared<Inbox>()) {}

  ~ApplierImpl() override { Stop(); }

  Status Init() {
    auto applied = log_->GetMeta(options_.name + ":applied");
    if (!applied.ok()) return applied.status();
    auto sent = log_->GetMeta(options_.name + ":sent");
    if (!sent.ok()) return sent.status();
    applied_.store(*applied);
    persisted_applied_ = *applied;
    persisted_sent_ = *sent;
    in_doubt_until_ = *sent;
    next_read_ = *applied + 1;
    for (uint64_t from = 1;;) {
      auto letters = log_->ListDeadLetters(from, 4096);
      if (!letters.ok()) return letters.status();
      for (const DeadLetter& letter : *letters) ++parked_[letter.command.key].count;
      dead_letters_ += letters->size();
      if (letters->size() < 4096) break;
      from = letters->back().command.position + 1;
    }
    std::weak_ptr<Inbox> weak = inbox_;
    listener_ = log_->AddListener([weak] {
      if (auto inbox = weak.lock()) {
        {
          std::lock_guard lock(inbox->mu);
          inbox->log_moved = true;
        }
        inbox->cv.notify_one();
      }
    });
    return Status::Ok();
  }

  void Begin() override {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->stop || thread_.joinable()) return;
    thread_ = std::thread([this] {
      NameThisThread("sk-applier");
      Run();
    });
  }

  void Stop() override {
    {
      std::lock_guard lock(inbox_->mu);
      if (inbox_->stop && !thread_.joinable()) return;
      inbox_->stop = true;
    }
    inbox_->cv.notify_all();
    if (thread_.joinable()) thread_.join();
    if (listener_) log_->RemoveListener(listener_);
    listener_ = 0;
    std::vector<Inbox::ReplayRequest> replays;
    {
      std::lock_guard lock(inbox_->mu);
      replays.swap(inbox_->replays);
    }
    for (auto& r : replays) r.done(Status::Unavailable("applier stopped"));
  }

  void Replay(std::optional<uint64_t> position,
              std::function<void(Result<std::vector<Replayed>>)> done) override {
    {
      std::lock_guard lock(inbox_->mu);
      if (!inbox_->stop) {
        inbox_->replays.push_back({position, std::move(done)});
        done = nullptr;
      }
    }
    if (done) {
      done(Status::Unavailable("applier stopped"));
      return;
    }
    inbox_->cv.notify_one();
  }

  uint64_t applied() const override { return applied_.load(std::memory_order_acquire); }

  LagInfo Lag() const override {
    LagInfo info;
    info.name = options_.name;
    info.role = "applier";
    info.applied = applied();
    info.head = log_->Head();
    info.errors = errors_.load(std::memory_order_relaxed);
    info.dead_letters = dead_letters_.load(std::memory_order_relaxed);
    return info;
  }

 private:
  struct Pending {
    LoggedCommand command;
    Message message;  // what is sent: the command, marked (and stamped)
    bool is_save = false;
    bool is_remove = false;
    bool in_doubt = false;   // may have been applied already: verify before saving
    bool verifying = false;  // the attempt in flight is the verification load
    uint32_t attempts = 0;
    uint64_t attempt = 0;  // id of the latest attempt, to ignore late replies
  };
  struct Parking {
    uint64_t count = 0;      // dead letters of the key
    uint64_t unpark_at = 0;  // commands below this (not replayed) are still blocked
  };

  void Run() {
    for (;;) {
      std::vector<Inbox::Completion> completions;
      std::vector<Inbox::ReplayRequest> replays;
      {
        std::unique_lock lock(inbox_->mu);
        auto ready = [&] {
          return inbox_->stop || !inbox_->completions.empty() || !inbox_->replays.empty() ||
                 (unfinished_.size() < options_.max_buffered && log_->Head() >= next_read_);
        };
        internal::WaitReady(inbox_->cv, lock, NextWake(), ready);
        if (inbox_->stop) return;
        inbox_->log_moved = false;
        completions.swap(inbox_->completions);
        replays.swap(inbox_->replays);
      }
      for (auto& c : completions) OnReply(c);
      ExpireAttempts();
      FireTimers();
      for (auto& r : replays) DoReplay(r);
      ReadMore();
      Checkpoint();
      SendReady();
    }
  }

  SteadyTime NextWake() const {
    SteadyTime wake = SteadyTime::max();
    if (!timers_.empty()) wake = timers_.begin()->first;
    for (const auto& [pos, deadline] : in_flight_) wake = std::min(wake, deadline);
    return wake;
  }

  void ReadMore() {
    while (unfinished_.size() < options_.max_buffered && log_->Head() >= next_read_) {
      size_t room = std::min<size_t>(1024, options_.max_buffered - unfinished_.size());
      auto commands = log_->Read(next_read_, room);
      if (!commands.ok()) {
        spdlog::error("applier '{}': {}", options_.name, commands.status().ToString());
        return;
      }
      if (commands->empty()) return;
      for (LoggedCommand& c : *commands) {
        next_read_ = c.position + 1;
        Admit(std::move(c));
      }
    }
  }

  bool Blocked(const LoggedCommand& c) const {
    if (replayed_.count(c.position)) return false;
    auto it = parked_.find(c.key);
    return it != parked_.end() && (it->second.count > 0 || c.position < it->second.unpark_at);
  }

  void Admit(LoggedCommand command) {
    if (Blocked(command)) {
      BlockedLetter(std::move(command));
      return;
    }
    auto parsed = ParseMessage(command.json);
    if (!parsed.ok()) {
      ToDeadLetters(DeadLetter{std::move(command), parsed.status().ToString(), 0});
      return;
    }
    Pending p;
    p.message = std::move(parsed).value();
    for (const auto& [name, value] : options_.mark) p.message.SetString(name, value);
    auto op = p.message.GetString("store");
    p.is_save = op && *op == "save";
    p.is_remove = op && *op == "remove";
    if (p.is_save && !options_.stamp_field.empty()) {
      if (auto ent = p.message.GetObjectJson("ent")) {
        p.message.SetObjectJson("ent", Stamped(*ent, options_.stamp_field, command.position));
      }
    }
    p.in_doubt = command.position <= in_doubt_until_;
    p.command = std::move(command);
    const uint64_t pos = p.command.position;
    auto& queue = keys_[p.command.key];
    queue.push_back(pos);
    unfinished_.emplace(pos, std::move(p));
    if (queue.size() == 1) ready_.push_back(pos);
  }

  void SendReady() {
    while (!ready_.empty() && in_flight_.size() < options_.max_in_flight) {
      uint64_t pos = ready_.front();
      ready_.pop_front();
      auto it = unfinished_.find(pos);
      if (it == unfinished_.end()) continue;
      Send(pos, it->second);
    }
  }

  void Send(uint64_t pos, Pending& p) {
    const uint64_t attempt = ++p.attempt;
    in_flight_[pos] = std::chrono::steady_clock::now() + milliseconds(options_.reply_timeout_ms);
    Message message;
    p.verifying = p.in_doubt && p.is_save && !options_.stamp_field.empty();
    if (p.verifying) {
      message.SetString("store", "load");
      if (auto kind = p.message.GetString("kind")) message.SetString("kind", *kind);
      message.SetString("id", p.command.key.substr(p.command.key.find('\0') + 1));
      for (const auto& [name, value] : options_.mark) message.SetString(name, value);
    } else {
      message = p.message;
    }
    message.meta().deadline = bus_.clock().NowMs() + options_.reply_timeout_ms;
    bus_.Act(std::move(message), [inbox = inbox_, pos, attempt](Result<Message> reply) {
      inbox->Post({pos, attempt, std::move(reply)});
    });
  }

  void OnReply(Inbox::Completion& c) {
    auto it = unfinished_.find(c.position);
    if (it == unfinished_.end() || it->second.attempt != c.attempt || !in_flight_.count(c.position))
      return;
    in_flight_.erase(c.position);
    Pending& p = it->second;
    if (p.verifying) {
      if (c.reply.ok() && StampOf(*c.reply, options_.stamp_field) >= c.position) {
        Finish(c.position);
        return;
      }
      // Only the store's own not_found proves absence; no_route (nobody answered) proves nothing.
      if (c.reply.ok() || c.reply.status().code() == Code::kNotFound) {
        p.in_doubt = false;  // proven not applied: save now
        ready_.push_front(c.position);
        return;
      }
      Failure(p, c.reply.status());
      return;
    }
    if (c.reply.ok() || (p.is_remove && c.reply.status().code() == Code::kNotFound)) {
      Finish(c.position);
      return;
    }
    Failure(p, c.reply.status());
  }

  void ExpireAttempts() {
    const SteadyTime now = std::chrono::steady_clock::now();
    std::vector<uint64_t> expired;
    for (const auto& [pos, deadline] : in_flight_) {
      if (deadline <= now) expired.push_back(pos);
    }
    for (uint64_t pos : expired) {
      in_flight_.erase(pos);
      Pending& p = unfinished_.at(pos);
      p.in_doubt = true;  // it may still be applied: verify before the next save
      Failure(p, Status::Timeout(fmt::format("no reply within {} ms", options_.reply_timeout_ms)));
    }
  }

  void FireTimers() {
    const SteadyTime now = std::chrono::steady_clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      ready_.push_back(timers_.begin()->second);
      timers_.erase(timers_.begin());
    }
  }

  void Failure(Pending& p, const Status& status) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (status.code() == Code::kNoRoute) {
      // Nothing answers the target yet (a node still starting, a reload in progress): the
      // command was not refused, so wait without spending an attempt.
      if (!waiting_for_route_)
        spdlog::warn("applier '{}': {}; commands wait for a route", options_.name,
                     status.message());
      waiting_for_route_ = true;
      timers_.emplace(std::chrono::steady_clock::now() + milliseconds(NoRouteWaitMs()),
                      p.command.position);
      return;
    }
    ++p.attempts;
    const bool permanent = (status.code() == Code::kInvalid || status.code() == Code::kConflict) &&
                           !(p.in_doubt && p.is_save && !options_.stamp_field.empty());
    if (permanent || p.attempts >= options_.max_attempts) {
      DeadLetterKey(p.command.position, status.ToString());
      return;
    }
    int64_t backoff = options_.initial_backoff_ms;
    for (uint32_t i = 1; i < p.attempts && backoff < options_.max_backoff_ms; ++i) backoff *= 2;
    backoff = std::min(backoff, options_.max_backoff_ms);
    timers_.emplace(std::chrono::steady_clock::now() + milliseconds(backoff), p.command.position);
  }

  int64_t NoRouteWaitMs() const {
    return std::clamp<int64_t>(options_.max_backoff_ms / 4, options_.initial_backoff_ms, 100);
  }

  // The command at `pos` (its key's front) is done: the next of its key may go.
  void Finish(uint64_t pos) {
    waiting_for_route_ = false;
    auto it = unfinished_.find(pos);
    auto queue = keys_.find(it->second.command.key);
    queue->second.pop_front();
    if (queue->second.empty()) {
      keys_.erase(queue);
    } else {
      ready_.push_back(queue->second.front());
    }
    replayed_.erase(pos);
    unfinished_.erase(it);
  }

  // The key's front failed for good: it and every later command of the key become dead letters,
  // and the key stays parked until a replay.
  void DeadLetterKey(uint64_t pos, std::string error) {
    Pending& front = unfinished_.at(pos);
    const std::string key = front.command.key;
    ToDeadLetters(DeadLetter{front.command, std::move(error), front.attempts});
    std::deque<uint64_t> rest = std::move(keys_.at(key));
    keys_.erase(key);
    rest.pop_front();
    replayed_.erase(pos);
    unfinished_.erase(pos);
    for (uint64_t later : rest) {
      BlockedLetter(std::move(unfinished_.at(later).command));
      replayed_.erase(later);
      unfinished_.erase(later);
    }
  }

  void BlockedLetter(LoggedCommand command) {
    ToDeadLetters(DeadLetter{std::move(command),
                             "blocked: an earlier command of this key is a dead letter", 0});
  }

  void ToDeadLetters(DeadLetter letter) {
    Status s = log_->AddDeadLetter(letter);
    if (!s.ok())
      spdlog::error("applier '{}': dead letter {} not recorded: {}", options_.name,
                    letter.command.position, s.ToString());
    ++parked_[letter.command.key].count;
    dead_letters_.fetch_add(1, std::memory_order_relaxed);
  }

  void DoReplay(Inbox::ReplayRequest& request) {
    std::vector<DeadLetter> letters;
    for (uint64_t from = 1;;) {
      auto page = log_->ListDeadLetters(from, 4096);
      if (!page.ok()) {
        request.done(page.status());
        return;
      }
      for (auto& l : *page) letters.push_back(std::move(l));
      if (page->size() < 4096) break;
      from = letters.back().command.position + 1;
    }
    std::vector<uint64_t> positions;
    if (request.position) {
      auto it = std::find_if(letters.begin(), letters.end(), [&](const DeadLetter& l) {
        return l.command.position == *request.position;
      });
      if (it == letters.end()) {
        request.done(
            Status::NotFound(fmt::format("position: {} is not a dead letter", *request.position)));
        return;
      }
      const std::string key = it->command.key;
      for (const auto& l : letters) {
        if (l.command.key == key) positions.push_back(l.command.position);
      }
    } else {
      for (const auto& l : letters) positions.push_back(l.command.position);
    }
    auto replayed = log_->ReplayDeadLetters(positions);
    if (replayed.ok()) {
      std::unordered_map<uint64_t, const DeadLetter*> by_position;
      for (const auto& l : letters) by_position[l.command.position] = &l;
      for (const Replayed& r : *replayed) {
        Parking& parking = parked_[by_position.at(r.from)->command.key];
        if (parking.count > 0) --parking.count;
        parking.unpark_at = std::max(parking.unpark_at, r.position);
        replayed_.insert(r.position);
        dead_letters_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    request.done(std::move(replayed));
  }

  void Checkpoint() {
    const uint64_t applied = unfinished_.empty() ? next_read_ - 1 : unfinished_.begin()->first - 1;
    const uint64_t sent = next_read_ - 1;
    if (applied == persisted_applied_ && sent <= persisted_sent_) return;
    Status s = log_->PutMeta({{options_.name + ":applied", applied},
                              {options_.name + ":sent", std::max(sent, persisted_sent_)}});
    if (!s.ok()) {
      spdlog::error("applier '{}': checkpoint failed: {}", options_.name, s.ToString());
      return;
    }
    persisted_applied_ = applied;
    persisted_sent_ = std::max(sent, persisted_sent_);
    applied_.store(applied, std::memory_order_release);
  }

  std::shared_ptr<CommandLog> log_;
  Bus& bus_;
  const ApplierOptions options_;
  std::shared_ptr<Inbox> inbox_;
  std::thread thread_;
  uint64_t listener_ = 0;

  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> dead_letters_{0};

  // Applier thread only.
  uint64_t next_read_ = 1;
  uint64_t in_doubt_until_ = 0;
  uint64_t persisted_applied_ = 0;
  uint64_t persisted_sent_ = 0;
  bool waiting_for_route_ = false;                              // logged once per wait
  std::map<uint64_t, Pending> unfinished_;                      // read, not yet done
  std::unordered_map<std::string, std::deque<uint64_t>> keys_;  // key -> its unfinished, in order
  std::unordered_map<std::string, Parking> parked_;
  std::set<uint64_t> replayed_;                 // replayed positions not yet done
  std::deque<uint64_t> ready_;                  // key fronts to send
  std::map<uint64_t, SteadyTime> in_flight_;    // position -> reply deadline
  std::multimap<SteadyTime, uint64_t> timers_;  // backoff: when -> position
};

}  // namespace

Result<std::shared_ptr<Applier>> Applier::Open(std::shared_ptr<CommandLog> log, Bus& bus,
                                               ApplierOptions options) {
  if (options.name.empty())
    return Status::Invalid("name: must not be empty", R"({"field":"name"})");
  if (options.max_attempts == 0)
    return Status::Invalid("max_attempts: must be positive", R"({"field":"max_attempts"})");
  auto applier = std::make_shared<ApplierImpl>(std::move(log), bus, std::move(options));
  if (Status s = applier->Init(); !s.ok()) return s;
  return std::shared_ptr<Applier>(std::move(applier));
}

Result<std::shared_ptr<Applier>> Applier::Start(std::shared_ptr<CommandLog> log, Bus& bus,
                                                ApplierOptions options) {
  auto applier = Open(std::move(log), bus, std::move(options));
  if (applier.ok()) (*applier)->Begin();
  return applier;
}

}  // namespace shardkit::cqrs
