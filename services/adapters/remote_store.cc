// RemoteStore (remote_store.h): the migration's view of a target store on another node.
#include "remote_store.h"

#include <fmt/format.h>

#include <utility>

#include "adapters.h"
#include "shardkit/message/clock.h"
#include "shardkit/message/json.h"
#include "shardkit/store/replication.h"

namespace shardkit::services {
namespace {

using store::ChangeRecord;
using store::EntityRecord;

Status NotOverTheNetwork(std::string_view what) {
  return Status::Invalid(fmt::format(
      "{}: a migration's remote target answers replication only; send it to the store's node",
      what));
}

class RemoteStore;

// The feed of a remote store as a migration target needs it: its head. Reading it (reverse
// replication, for a rollback) is not built: the migration refuses a rollback over the network.
class RemoteFeed final : public store::ChangeFeed {
 public:
  explicit RemoteFeed(RemoteStore& store) : store_(store) {}
  Result<std::vector<ChangeRecord>> ReadChanges(uint64_t, size_t) override {
    return NotOverTheNetwork("feed");
  }
  uint64_t LastSequence() const override;
  uint64_t FirstRetainedSequence() const override { return 1; }
  Status RegisterConsumer(std::string_view, uint64_t) override { return NotOverTheNetwork("feed"); }
  Status AdvanceConsumer(std::string_view, uint64_t) override { return NotOverTheNetwork("feed"); }
  Status RemoveConsumer(std::string_view) override { return Status::Ok(); }  // none registered
  std::map<std::string, uint64_t> Consumers() const override { return {}; }
  Result<uint64_t> TrimFeed() override { return 0; }
  Result<store::TrimReport> TrimRetained() override { return store::TrimReport{}; }
  store::FeedStats Stats() const override { return {}; }
  void WhenAppended(uint64_t, std::function<void()>) override {}

 private:
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

  // The store's replication state; `extra` adds fields (stream, claim, release, scan).
  Result<Message> State(Message extra = {}) const {
    extra.SetString("store", "replication");
    return Call(std::move(extra));
  }
  // The head of the store's feed; unavailable after `position_timeout`.
  Result<Message> Head() const {
    Message m;
    m.SetString("store", "replication");
    m.meta().deadline = SystemClock::Default().NowMs() + options_.position_timeout.count();
    return Call(std::move(m));
  }

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
    return Status(
        s.code(),
        fmt::format("target {} on node {}: {}", options_.shard, options_.node, s.message()),
        s.details_json());
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

uint64_t RemoteFeed::LastSequence() const {
  auto state = store_.Head();
  // A target that cannot answer counts as not empty (the rules refuse it) and never as caught up.
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

}  // namespace

Result<std::shared_ptr<store::EntityStore>> OpenRemoteStore(RemoteStoreOptions options) {
  auto remote = std::make_shared<RemoteStore>(options);
  if (Status s = remote->Connect(); !s.ok()) {
    std::string why = s.code() == Code::kUnavailable || s.code() == Code::kTimeout
                          ? fmt::format("the node is unreachable ({})", s.message())
                          : s.message();
    return Status::Invalid(
        fmt::format("target {} on node {}: {}", options.shard, options.node, why),
        JsonObject()
            .Add("field", "nodes")
            .Add("shard", options.shard)
            .Add("node", options.node)
            .str());
  }
  return std::shared_ptr<store::EntityStore>(std::move(remote));
}

}  // namespace shardkit::services
