// RemoteStore (remote_store.h): the migration's view of a source or target store on another node.
#include "remote_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <thread>
#include <utility>

#include "adapters.h"
#include "shardkit/message/clock.h"
#include "shardkit/message/json.h"
#include "shardkit/shard/write_gate.h"
#include "shardkit/store/replication.h"

namespace shardkit::services {
namespace {

using store::ChangeRecord;
using store::EntityRecord;

Status NotOverTheNetwork(std::string_view what) {
  return Status::Invalid(fmt::format(
      "{}: a migration's remote store answers replication only; send it to the store's node",
      what));
}

class RemoteStore;

// The feed of a remote store as a migration needs it: its head, and, for the reverse replication
// a rollback waits for, its records and the consumer that keeps them from being trimmed.
class RemoteFeed final : public store::ChangeFeed {
 public:
  explicit RemoteFeed(RemoteStore& store) : store_(store) {}
  Result<std::vector<ChangeRecord>> ReadChanges(uint64_t from, size_t limit) override;
  uint64_t LastSequence() const override;
  uint64_t FirstRetainedSequence() const override { return 1; }
  Status RegisterConsumer(std::string_view name, uint64_t position) override {
    return ConsumerOp(name, "register", position);
  }
  Status AdvanceConsumer(std::string_view name, uint64_t position) override {
    return ConsumerOp(name, "advance", position);
  }
  Status RemoveConsumer(std::string_view name) override { return ConsumerOp(name, "remove", 0); }
  std::map<std::string, uint64_t> Consumers() const override;
  Result<uint64_t> TrimFeed() override { return 0; }
  Result<store::TrimReport> TrimRetained() override { return store::TrimReport{}; }
  store::FeedStats Stats() const override { return {}; }
  // A long poll of the node's store:changes (at most kPollMs), then `wake`, on the calling thread:
  // the replicator waiting on it stops within that time.
  void WhenAppended(uint64_t after, std::function<void()> wake) override;

 private:
  static constexpr int kPollMs = 200;
  Status ConsumerOp(std::string_view name, std::string_view op, uint64_t position);
  RemoteStore& store_;
};

class RemoteStore final : public store::EntityStore {
 public:
  explicit RemoteStore(RemoteStoreOptions options)
      : options_(std::move(options)), runtime_(1), feed_(*this) {}
  ~RemoteStore() override {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [&] { return in_flight_ == 0; });
  }

  Status Connect() {
    auto endpoint = ParseEndpoint(options_.node);
    if (!endpoint.ok()) return endpoint.status();
    ClientOptions client_options;
    client_options.timeout = options_.timeout;
    client_options.connections = 1;  // one connection: batches arrive in the order sent
    client_options.max_message_bytes = 64 << 20;
    auto client = MakeClient(runtime_, *endpoint, client_options);
    if (!client.ok()) return client.status();
    client_ = std::move(client).value();
    return St(State());
  }

  // The store's replication state; `extra` adds fields (stream, claim, release, scan, feed,
  // consumer, gate). `bounded`: unavailable after `position_timeout` (asked with gates closed).
  Result<Message> State(Message extra = {}, bool bounded = false) const {
    extra.SetString("store", "replication");
    if (bounded)
      extra.meta().deadline = SystemClock::Default().NowMs() + options_.position_timeout.count();
    return Call(std::move(extra));
  }
  // The head of the store's feed; unavailable after `position_timeout`.
  Result<Message> Head() const { return State({}, /*bounded=*/true); }
  std::string name() const {
    return fmt::format("{} {} on node {}", options_.role, options_.shard, options_.node);
  }
  // Any message to the store (store:changes long polls).
  Result<Message> Ask(Message m) const { return Call(std::move(m)); }

  Status ApplyReplicated(std::string_view stream, const std::vector<ChangeRecord>& changes,
                         uint64_t position, bool assume_absent) override {
    Message m;
    m.SetString("store", "replicate").SetString("stream", stream).SetUint("position", position);
    m.SetArrayJson("changes", store::ChangesToReplicationJson(changes));
    if (assume_absent) m.SetBool("assume_absent", true);
    if (assume_absent && position == 0) return Send(std::move(m));
    if (Status s = Flush(); !s.ok()) return s;
    return St(Call(std::move(m)));
  }
  Result<uint64_t> ReplicatedPosition(std::string_view stream) override {
    auto state = State(Message().SetString("stream", stream));
    if (!state.ok()) return state.status();
    return state->GetUint("position").value_or(0);
  }
  Result<std::map<std::string, uint64_t>> ReplicatedStreams() override {
    auto state = State();
    if (!state.ok()) return state.status();
    auto doc = ParseJson(state->GetObjectJson("streams").value_or("{}"), "streams");
    if (!doc.ok()) return doc.status();
    std::map<std::string, uint64_t> streams;
    for (const auto& m : doc->GetObject()) {
      if (m.value.IsUint64()) streams[m.name.GetString()] = m.value.GetUint64();
    }
    return streams;
  }
  Status Claim(std::string_view owner) override {
    return St(State(Message().SetString("claim", owner)));
  }
  Status ReleaseClaim(std::string_view owner) override {
    return St(State(Message().SetString("release", owner)));
  }
  Result<std::string> Claimant() override {
    auto state = State();
    if (!state.ok()) return state.status();
    return std::string(state->GetString("claimant").value_or(""));
  }
  Status ScanRange(std::string_view kind, store::KsidRange range,
                   const std::function<bool(const EntityRecord&)>& visit) override;
  store::ChangeFeed& feed() override { return feed_; }

  Result<std::string> Save(const store::SaveRequest&, std::string_view) override {
    return NotOverTheNetwork("save");
  }
  std::vector<Result<std::string>> SaveBatch(const std::vector<store::SaveRequest>& r,
                                             std::string_view) override {
    return std::vector<Result<std::string>>(r.size(), NotOverTheNetwork("save"));
  }
  Result<std::string> Load(std::string_view, std::string_view) override {
    return NotOverTheNetwork("load");
  }
  std::vector<Result<std::string>> LoadBatch(const std::vector<store::EntityRef>& r) override {
    return std::vector<Result<std::string>>(r.size(), NotOverTheNetwork("load"));
  }
  Result<store::ListPage> List(const store::Query&) override { return NotOverTheNetwork("list"); }
  Result<std::string> Remove(std::string_view, std::string_view, std::string_view) override {
    return NotOverTheNetwork("remove");
  }
  Result<std::vector<std::string>> RemoveWhere(const store::Query&, std::string_view) override {
    return NotOverTheNetwork("remove");
  }
  Result<uint64_t> PurgeExpired() override { return NotOverTheNetwork("purge"); }

 private:
  Result<Message> Call(Message m) const {
    m.SetUint("v", store::kReplicationProtocol).SetString("shard", options_.shard);
    auto reply = CallAndWait(*client_, std::move(m));
    if (!reply.ok()) return Named(reply.status());
    return reply;
  }
  // A failure, naming the node and the store.
  Status Named(const Status& s) const {
    return Status(s.code(), fmt::format("{}: {}", name(), s.message()), s.details_json());
  }

  // A copy batch: sent without waiting for its answer unless `window` are in flight already.
  Status Send(Message m) {
    m.SetUint("v", store::kReplicationProtocol).SetString("shard", options_.shard);
    {
      std::unique_lock<std::mutex> lock(mu_);
      idle_.wait(lock, [&] { return in_flight_ < options_.window; });
      if (!failed_.ok()) return std::exchange(failed_, Status::Ok());  // reported once
      ++in_flight_;
    }
    Context context(nullptr, nullptr, m.meta());
    client_->Handle(std::move(m), context, [this](Result<Message> r) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!r.ok() && failed_.ok()) failed_ = Named(r.status());
      --in_flight_;
      idle_.notify_all();
    });
    return Status::Ok();
  }
  // Waits for every copy batch in flight; the first failure among them.
  Status Flush() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [&] { return in_flight_ == 0; });
    return std::exchange(failed_, Status::Ok());
  }

  const RemoteStoreOptions options_;
  IoRuntime runtime_;
  std::shared_ptr<Handler> client_;
  RemoteFeed feed_;
  std::mutex mu_;
  std::condition_variable idle_;
  size_t in_flight_ = 0;  // guarded by mu_
  Status failed_;         // guarded by mu_
};

Result<std::vector<ChangeRecord>> RemoteFeed::ReadChanges(uint64_t from, size_t limit) {
  auto page = store_.State(Message().SetObjectJson(
      "feed", JsonObject().Add("from", from).Add("limit", static_cast<uint64_t>(limit)).str()));
  if (!page.ok()) return page.status();
  return store::FeedFromReplicationJson(page->GetArrayJson("feed").value_or("[]"));
}

Status RemoteFeed::ConsumerOp(std::string_view name, std::string_view op, uint64_t position) {
  JsonObject consumer;
  consumer.Add("name", name).Add("op", op).Add("position", position);
  return St(store_.State(Message().SetObjectJson("consumer", consumer.str())));
}

std::map<std::string, uint64_t> RemoteFeed::Consumers() const {
  std::map<std::string, uint64_t> consumers;
  auto state = store_.State();
  if (!state.ok()) return consumers;
  auto doc = ParseJson(state->GetObjectJson("consumers").value_or("{}"), "consumers");
  if (!doc.ok()) return consumers;
  for (const auto& m : doc->GetObject()) {
    if (m.value.IsUint64()) consumers[m.name.GetString()] = m.value.GetUint64();
  }
  return consumers;
}

void RemoteFeed::WhenAppended(uint64_t after, std::function<void()> wake) {
  Message poll;
  poll.SetString("store", "changes").SetUint("from", after + 1).SetUint("limit", 1);
  poll.SetInt("wait_ms", kPollMs);
  if (!store_.Ask(std::move(poll)).ok()) {
    // The node does not answer: the replicator's next read fails and backs off; no busy loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  wake();
}

uint64_t RemoteFeed::LastSequence() const {
  auto state = store_.Head();
  // A store that cannot answer counts as not empty (the rules refuse it), never as caught up, and
  // never as a fence or a copy's start (the migration checks for it).
  return state.ok() ? state->GetUint("last").value_or(0) : ~0ull;
}

Status RemoteStore::ScanRange(std::string_view kind, store::KsidRange range,
                              const std::function<bool(const EntityRecord&)>& visit) {
  if (!kind.empty()) return NotOverTheNetwork("scan of one kind");
  std::string after;
  while (true) {
    JsonObject scan;
    scan.Add("begin", fmt::format("{:016x}", range.begin))
        .Add("end", fmt::format("{:016x}", range.end))
        .Add("limit", 5000);
    if (!after.empty()) scan.AddRaw("after", after);
    auto page = State(Message().SetObjectJson("scan", scan.str()));
    if (!page.ok()) return page.status();
    auto records = store::RecordsFromReplicationJson(page->GetArrayJson("records").value_or("[]"));
    if (!records.ok()) return Named(records.status());
    for (const EntityRecord& r : *records) {
      if (!visit(r)) return Status::Ok();
    }
    if (!page->GetBool("more").value_or(false) || records->empty()) return Status::Ok();
    const EntityRecord& last = records->back();
    after = JsonStringArray({last.kind, fmt::format("{:016x}", last.ksid), last.id});
  }
}

// The write gate of the store's shard on its node (its guard answers store:replication gate:…).
// Every call is bounded by `position_timeout`: a rollback throws it with writes held.
class RemoteGate final : public shard::WriteGate {
 public:
  explicit RemoteGate(std::shared_ptr<RemoteStore> store) : store_(std::move(store)) {}

  void Close() override {
    auto reply = Throw("close");
    std::lock_guard<std::mutex> lock(mu_);
    closed_boot_ =
        reply.ok() && reply->GetString("gate") == std::optional<std::string_view>("closed")
            ? std::string(reply->GetString("boot").value_or(""))
            : "";
  }
  // Polls until the node's gate, closed by Close in the same process life, has no write in
  // flight.
  bool Drain(std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      auto reply = Throw("state");
      if (!reply.ok() || Seen(*reply) != State::kClosed) return false;
      if (reply->GetUint("in_flight").value_or(1) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }
  // One attempt, bounded: a cutover opens the target's gate with the source's gates closed.
  void Open() override { (void)Throw("open"); }
  void Retire() override { (void)Retried("retire"); }
  // The node's answer now. A node that cannot be asked answers kRetired: neither open nor closed
  // for sure, so a cutover that needs the gate open and a rollback that needs it closed abandon.
  State state() const override {
    auto reply = Throw("state");
    return reply.ok() ? Seen(*reply) : State::kRetired;
  }

 private:
  Result<Message> Throw(std::string_view op) const {
    return store_->State(Message().SetString("gate", op), /*bounded=*/true);
  }
  // Retiring releases the writes held since the rollback's fence: tried three times before giving
  // up (the node is then down, and a restarted node's gate is open and its map current).
  Status Retried(std::string_view op) {
    Status last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      last = St(Throw(op));
      if (last.ok()) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    spdlog::warn("{}: cannot {} the write gate: {}", store_->name(), op, last.ToString());
    return last;
  }
  // A gate closed before the node restarted is open since.
  State Seen(const Message& reply) const {
    auto gate = reply.GetString("gate").value_or("");
    if (gate == "retired") return State::kRetired;
    if (gate != "closed") return State::kOpen;
    std::lock_guard<std::mutex> lock(mu_);
    return reply.GetString("boot").value_or("") == closed_boot_ ? State::kClosed : State::kOpen;
  }

  std::shared_ptr<RemoteStore> store_;
  mutable std::mutex mu_;
  std::string closed_boot_;  // guarded by mu_
};

}  // namespace

Result<RemoteTarget> OpenRemoteStore(RemoteStoreOptions options) {
  auto remote = std::make_shared<RemoteStore>(options);
  if (Status s = remote->Connect(); !s.ok()) {
    std::string why = s.code() == Code::kUnavailable || s.code() == Code::kTimeout
                          ? fmt::format("the node is unreachable ({})", s.message())
                          : s.message();
    return Status::Invalid(
        fmt::format("{} {} on node {}: {}", options.role, options.shard, options.node, why),
        JsonObject()
            .Add("field", "nodes")
            .Add("shard", options.shard)
            .Add("node", options.node)
            .str());
  }
  auto gate = std::make_shared<RemoteGate>(remote);
  auto state = remote->State(Message().SetString("gate", "state"), /*bounded=*/true);
  std::string process = state.ok() ? std::string(state->GetString("boot").value_or("")) : "";
  return RemoteTarget{std::move(remote), std::move(gate), std::move(process)};
}

}  // namespace shardkit::services
