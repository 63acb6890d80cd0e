#include "cluster.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "kv_watch.h"
#include "shardkit/message/json.h"
#include "shardkit/message/pattern.h"
#include "shardkit/message/thread_name.h"
#include "shardkit/services/data_services.h"
#include "shardkit/shard/shard_map.h"
#include "shardkit/store/scheduler.h"
#include "wire.h"

namespace shardkit::services {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Set while a map read from the KV is applied to a holder: its change hook must not write it back.
thread_local bool t_applying_from_kv = false;

// KV keys allow [-/_=.a-zA-Z0-9]; anything else in a node name becomes '_'.
std::string KeyToken(std::string_view text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  return out.empty() ? "_" : out;
}

std::string MapJson(const shard::ShardMap& map) {
  std::vector<std::string> names;
  for (const auto& shard : map.shards()) names.push_back(shard.name);
  return JsonObject().Add("epoch", map.epoch()).AddRaw("ranges", JsonStringArray(names)).str();
}

// {"epoch":N,"ranges":[…]} as a map with `shard_keys` (the local map's: they are config).
Result<shard::ShardMap> ParseMapJson(std::string_view text, const shard::ShardMap& local) {
  auto doc = ParseJson(text, "shard map");
  if (!doc.ok()) return doc.status();
  if (!doc->IsObject() || !doc->HasMember("epoch") || !(*doc)["epoch"].IsUint64() ||
      !doc->HasMember("ranges") || !(*doc)["ranges"].IsArray())
    return Status::Invalid("not a shard map ({\"epoch\":N,\"ranges\":[...]})");
  std::vector<std::string> ranges;
  for (const auto& r : (*doc)["ranges"].GetArray()) {
    if (!r.IsString()) return Status::Invalid("ranges: must be strings");
    ranges.emplace_back(r.GetString());
  }
  return shard::ShardMap::Make((*doc)["epoch"].GetUint64(), ranges, local.shard_keys());
}

// Opens `bucket`, creating it with `config` if it does not exist yet.
Result<kvStore*> OpenBucket(jsCtx* js, kvConfig& config) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js, config.Bucket);
  if (s == NATS_OK) return kv;
  s = js_CreateKeyValue(&kv, js, &config);
  if (s == NATS_OK) return kv;
  Status failed = NatsError(s, fmt::format("cannot open or create the JetStream KV bucket '{}' "
                                           "(is JetStream enabled on the server? nats-server -js)",
                                           config.Bucket));
  // Another node may have created it meanwhile.
  if (js_KeyValue(&kv, js, config.Bucket) == NATS_OK) return kv;
  return failed;
}

// The shard maps' side of the agent; shared with the holders' change hooks, which may outlive the
// agent (holders are process-wide).
struct MapsState {
  std::mutex mutex;
  kvStore* kv = nullptr;                     // guarded by mutex; null once the agent stopped
  std::map<std::string, uint64_t> revision;  // map name -> last revision seen; guarded by mutex
  std::set<std::string> attached;            // guarded by mutex
};

// Applies a maps-bucket entry to the process's shard map it names, if its epoch is newer.
void ApplyMapEntry(MapsState& state, kvEntry* entry) {
  if (kvEntry_Operation(entry) != kvOp_Put) return;
  std::string key = kvEntry_Key(entry);
  std::string name = key.substr(4);  // "map."
  auto holder = FindShardMap(name);
  if (!holder) return;
  uint64_t revision = kvEntry_Revision(entry);
  std::string_view text(static_cast<const char*>(kvEntry_Value(entry)),
                        static_cast<size_t>(kvEntry_ValueLen(entry)));
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    if (state.attached.count(name) == 0) return;
    uint64_t& seen = state.revision[name];
    if (revision > seen) seen = revision;
  }
  auto local = holder->Current();
  auto remote = ParseMapJson(text, *local);
  if (!remote.ok()) {
    spdlog::warn("cluster: ignoring {} revision {}: {}", key, revision, remote.status().message());
    return;
  }
  if (remote->epoch() <= local->epoch()) return;
  uint64_t epoch = remote->epoch();
  t_applying_from_kv = true;
  Status applied = holder->CompareAndSwap(local->epoch(), std::move(remote).value());
  t_applying_from_kv = false;
  if (applied.ok()) {
    spdlog::info("cluster: shard map '{}' is now epoch {} (revision {})", name, epoch, revision);
  } else if (holder->Current()->epoch() < epoch) {  // not a race with the watch or a pull
    spdlog::warn("cluster: shard map '{}' epoch {} not applied: {}", name, epoch,
                 applied.ToString());
  }
}

// Reads `key` of the maps bucket now and applies it (ShardMapPull: a router's refresh after a
// wrong_shard, which may come before the watch delivers the cutover).
void PullMapFromKv(const std::weak_ptr<MapsState>& weak, const std::string& key) {
  auto state = weak.lock();
  if (!state) return;
  kvEntry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->kv == nullptr || kvStore_Get(&entry, state->kv, key.c_str()) != NATS_OK) return;
  }
  ApplyMapEntry(*state, entry);
  kvEntry_Destroy(entry);
}

}  // namespace

class ClusterAgent::Impl {
 public:
  Impl(ClusterConfig config, std::string node_name, std::function<void()> routes_changed)
      : config_(std::move(config)),
        node_name_(std::move(node_name)),
        routes_changed_(std::move(routes_changed)),
        maps_state_(std::make_shared<MapsState>()) {
    key_ = fmt::format("node.{}.{:x}{:x}", KeyToken(node_name_), getpid(),
                       SteadyClock::now().time_since_epoch().count() & 0xffffff);
  }

  ~Impl() { Stop(); }

  Status Open() {
    auto endpoint = ClusterEndpoint(config_);
    if (!endpoint.ok()) return endpoint.status();
    auto link = NatsLink::Shared(*endpoint, NatsLink::Use::kCluster);
    if (!link.ok())
      return Status::Unavailable(fmt::format("cluster.nats: {}", link.status().message()));
    link_ = *link;
    if (natsStatus s = natsConnection_JetStream(&js_, link_->connection(), nullptr); s != NATS_OK)
      return NatsError(s, "cluster.nats: JetStream context");
    kvConfig registry;
    kvConfig_Init(&registry);
    registry.Bucket = config_.registry_bucket.c_str();
    registry.Description = "shardkit: the patterns each running node serves";
    registry.History = 1;
    // In nanoseconds. Storage clean-up only: readers drop a key not refreshed for ttl_ms.
    registry.TTL = config_.ttl_ms * 2 * 1'000'000;
    registry.StorageType = js_MemoryStorage;
    auto opened = OpenBucket(js_, registry);
    if (!opened.ok())
      return Status::Unavailable(fmt::format("cluster: {}", opened.status().message()));
    registry_ = *opened;
    kvConfig maps;
    kvConfig_Init(&maps);
    maps.Bucket = config_.maps_bucket.c_str();
    maps.Description = "shardkit: shard maps (epoch and ranges), changed by compare-and-swap";
    maps.History = 8;
    maps.StorageType = js_FileStorage;
    opened = OpenBucket(js_, maps);
    if (!opened.ok())
      return Status::Unavailable(fmt::format("cluster: {}", opened.status().message()));
    maps_state_->kv = *opened;
    registry_watch_ = std::make_unique<KvWatch>(registry_, "", *link_);
    maps_watch_ = std::make_unique<KvWatch>(maps_state_->kv, "map.>", *link_);
    state_listener_ = link_->OnStateChange([this](bool connected) {
      // The watchers' consumers may be gone with the old connection: both watches reopen.
      if (connected) {
        registry_watch_->Interrupt(/*stop=*/false);
        maps_watch_->Interrupt(/*stop=*/false);
      }
    });
    registry_thread_ = std::thread([this] { RegistryLoop(); });
    maps_thread_ = std::thread([this] { MapsLoop(); });
    heartbeat_ = store::Scheduler::Shared().Every(std::chrono::milliseconds(config_.ttl_ms / 3),
                                                  [this] { Heartbeat(); });
    return Status::Ok();
  }

  Status Announce(std::vector<std::string> patterns) {
    std::string value =
        JsonObject().Add("node", node_name_).AddRaw("patterns", JsonStringArray(patterns)).str();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      announcement_ = value;
      if (left_) return Status::Ok();
    }
    return PutOwnKey();
  }

  Status PutOwnKey() {
    std::string value;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (left_ || announcement_.empty()) return Status::Ok();  // not announced yet
      value = announcement_;
    }
    natsStatus s =
        kvStore_Put(nullptr, registry_, key_.c_str(), value.data(), static_cast<int>(value.size()));
    if (s != NATS_OK)
      return NatsError(
          s, fmt::format("cluster: cannot register in bucket '{}'", config_.registry_bucket));
    return Status::Ok();
  }

  std::map<std::string, std::set<std::string>> RemotePatterns() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, std::set<std::string>> out;
    for (const auto& [key, entry] : remote_) {
      for (const std::string& p : entry.patterns) out[p].insert(entry.node);
    }
    return out;
  }

  void Leave() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (left_) return;
      left_ = true;
    }
    if (registry_ != nullptr && link_->connected()) {
      natsStatus s = kvStore_Delete(registry_, key_.c_str());
      if (s != NATS_OK)
        spdlog::warn("cluster: could not delete this node's key {} (it expires in {} ms): {}", key_,
                     config_.ttl_ms, natsStatus_GetText(s));
    }
  }

  void Stop() {
    if (heartbeat_ != 0) store::Scheduler::Shared().Cancel(heartbeat_);
    heartbeat_ = 0;
    Leave();
    if (registry_watch_) registry_watch_->Interrupt(/*stop=*/true);
    if (maps_watch_) maps_watch_->Interrupt(/*stop=*/true);
    if (registry_thread_.joinable()) registry_thread_.join();
    if (maps_thread_.joinable()) maps_thread_.join();
    if (link_ && state_listener_ != 0) link_->RemoveStateListener(state_listener_);
    std::vector<std::shared_ptr<shard::ShardMapHolder>> pulled;
    {
      std::lock_guard<std::mutex> lock(maps_state_->mutex);
      pulled.swap(pulled_);
    }
    for (const auto& holder : pulled) SetShardMapPull(holder.get(), nullptr);
    {
      std::lock_guard<std::mutex> lock(maps_state_->mutex);
      if (maps_state_->kv != nullptr) kvStore_Destroy(maps_state_->kv);
      maps_state_->kv = nullptr;
    }
    if (registry_ != nullptr) kvStore_Destroy(registry_);
    registry_ = nullptr;
    if (js_ != nullptr) jsCtx_Destroy(js_);
    js_ = nullptr;
  }

  Status AttachShardMaps() {
    for (const std::string& name : ShardMapNames()) {
      auto holder = FindShardMap(name);
      if (!holder) continue;
      std::shared_ptr<MapsState> state = maps_state_;
      std::lock_guard<std::mutex> lock(state->mutex);
      if (state->attached.count(name) != 0 || state->kv == nullptr) continue;
      std::string key = "map." + KeyToken(name);
      auto local = holder->Current();
      kvEntry* entry = nullptr;
      natsStatus s = kvStore_Get(&entry, state->kv, key.c_str());
      if (s == NATS_NOT_FOUND) {
        std::string json = MapJson(*local);
        uint64_t revision = 0;
        s = kvStore_Create(&revision, state->kv, key.c_str(), json.data(),
                           static_cast<int>(json.size()));
        if (s == NATS_OK) {
          state->revision[name] = revision;
        } else {
          s = kvStore_Get(&entry, state->kv, key.c_str());  // created by another node meanwhile
        }
      }
      if (s != NATS_OK)
        return NatsError(
            s, fmt::format("cluster: shard map '{}' in bucket '{}'", name, config_.maps_bucket));
      if (entry != nullptr) {
        uint64_t revision = kvEntry_Revision(entry);
        std::string_view text(static_cast<const char*>(kvEntry_Value(entry)),
                              static_cast<size_t>(kvEntry_ValueLen(entry)));
        auto remote = ParseMapJson(text, *local);
        kvEntry_Destroy(entry);
        if (!remote.ok())
          return Status::Invalid(fmt::format("cluster: key {} in bucket '{}': {}", key,
                                             config_.maps_bucket, remote.status().message()));
        state->revision[name] = revision;
        if (remote->epoch() > local->epoch()) {
          t_applying_from_kv = true;
          Status applied = holder->CompareAndSwap(local->epoch(), std::move(remote).value());
          t_applying_from_kv = false;
          if (!applied.ok()) return applied;
        } else if (remote->epoch() < local->epoch()) {
          std::string json = MapJson(*local);
          uint64_t next = 0;
          if (kvStore_Update(&next, state->kv, key.c_str(), json.data(),
                             static_cast<int>(json.size()), revision) == NATS_OK)
            state->revision[name] = next;
        }
      }
      holder->OnChange([state, name, key](const shard::ShardMap& next) -> Status {
        if (t_applying_from_kv) return Status::Ok();
        std::lock_guard<std::mutex> lock(state->mutex);
        if (state->kv == nullptr)
          return Status::Unavailable(fmt::format(
              "shard map '{}': the node left the cluster; the change cannot be committed", name));
        std::string json = MapJson(next);
        uint64_t revision = 0;
        natsStatus s = kvStore_Update(&revision, state->kv, key.c_str(), json.data(),
                                      static_cast<int>(json.size()), state->revision[name]);
        if (s == NATS_OK) {
          state->revision[name] = revision;
          return Status::Ok();
        }
        if (s == NATS_ERR)  // JetStream refused: the revision is not the latest
          return Status::Conflict(fmt::format(
              "shard map '{}' changed in the cluster since revision {} (this node has not seen "
              "it yet); read it again and retry",
              name, state->revision[name]));
        return NatsError(s, fmt::format("shard map '{}': commit to the cluster", name));
      });
      state->attached.insert(name);
      SetShardMapPull(holder.get(),
                      std::make_shared<ShardMapPull>([weak = std::weak_ptr<MapsState>(state), key] {
                        PullMapFromKv(weak, key);
                      }));
      pulled_.push_back(holder);
      spdlog::info("cluster: shard map '{}' kept in bucket '{}' (epoch {})", name,
                   config_.maps_bucket, holder->Current()->epoch());
    }
    return Status::Ok();
  }

  const std::shared_ptr<NatsLink>& link() const { return link_; }

  bool WaitForRegistry(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return loaded_changed_.wait_for(lock, timeout, [this] { return loaded_; });
  }

 private:
  void MarkLoaded() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      loaded_ = true;
    }
    loaded_changed_.notify_all();
  }

  struct Remote {
    std::string node;
    std::vector<std::string> patterns;
    SteadyClock::time_point seen;
  };

  // Returns whether the remote pattern set changed.
  bool Apply(kvEntry* entry) {
    std::string key = kvEntry_Key(entry);
    if (key == key_) return false;
    kvOperation op = kvEntry_Operation(entry);
    std::lock_guard<std::mutex> lock(mutex_);
    if (op != kvOp_Put) return remote_.erase(key) > 0;
    std::string_view text(static_cast<const char*>(kvEntry_Value(entry)),
                          static_cast<size_t>(kvEntry_ValueLen(entry)));
    auto doc = ParseJson(text, key);
    if (!doc.ok() || !doc->IsObject() || !doc->HasMember("patterns") ||
        !(*doc)["patterns"].IsArray()) {
      spdlog::warn("cluster: ignoring registry key {}: not a node entry", key);
      return false;
    }
    Remote next;
    next.seen = SteadyClock::now();
    if (doc->HasMember("node") && (*doc)["node"].IsString()) next.node = (*doc)["node"].GetString();
    for (const auto& p : (*doc)["patterns"].GetArray()) {
      if (!p.IsString()) continue;
      auto pattern = Pattern::Parse(p.GetString());
      if (pattern.ok()) next.patterns.push_back(pattern->ToString());
    }
    auto it = remote_.find(key);
    bool changed = it == remote_.end() || it->second.patterns != next.patterns;
    remote_[key] = std::move(next);
    return changed;
  }

  bool ExpireSilentNodes() {
    auto oldest = SteadyClock::now() - std::chrono::milliseconds(config_.ttl_ms);
    std::lock_guard<std::mutex> lock(mutex_);
    bool changed = false;
    for (auto it = remote_.begin(); it != remote_.end();) {
      if (it->second.seen < oldest) {
        spdlog::info("cluster: node '{}' ({}) not refreshed for {} ms: its routes are dropped",
                     it->second.node, it->first, config_.ttl_ms);
        it = remote_.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    return changed;
  }

  // How long the registry watch may wait: until the least recently refreshed node expires.
  int64_t UntilNextExpiryMs() const {
    auto now = SteadyClock::now();
    auto due = now + kIdleWait;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& [key, remote] : remote_)
        due = std::min(due, remote.seen + std::chrono::milliseconds(config_.ttl_ms));
    }
    return std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count() + 1);
  }

  void RegistryLoop() {
    NameThisThread("sk-cl-registry");
    for (;;) {
      kvEntry* entry = nullptr;
      KvWatch::Step step = registry_watch_->Next(UntilNextExpiryMs(), &entry);
      if (step == KvWatch::Step::kStop) break;
      bool changed = false;
      if (step == KvWatch::Step::kEntry) {
        changed = Apply(entry);
        kvEntry_Destroy(entry);
      } else if (step == KvWatch::Step::kLoaded) {
        MarkLoaded();
      } else if (step == KvWatch::Step::kOpened && link_->connected()) {
        Status put = PutOwnKey();  // register at once after a reconnect
        if (!put.ok()) spdlog::warn("{}", put.ToString());
      }
      changed = ExpireSilentNodes() || changed;
      if (changed && routes_changed_) routes_changed_();
    }
    registry_watch_->Close();
  }

  // Every ttl_ms/3 on the scheduler: this node's key again. A plain publish on the bucket's
  // subject, not a KV put: it waits for no acknowledgement, so the scheduler's other tasks never
  // wait on the server (a lost one is covered by the next; a key lives ttl_ms).
  void Heartbeat() {
    std::lock_guard<std::mutex> lock(mutex_);  // Leave() cannot slip between the check and the put
    if (left_ || announcement_.empty() || !link_->connected()) return;
    std::string subject = fmt::format("$KV.{}.{}", config_.registry_bucket, key_);
    natsStatus s =
        natsConnection_Publish(link_->connection(), subject.c_str(), announcement_.data(),
                               static_cast<int>(announcement_.size()));
    if (s != NATS_OK) spdlog::warn("cluster: heartbeat not sent: {}", natsStatus_GetText(s));
  }

  void MapsLoop() {
    NameThisThread("sk-cl-maps");
    for (;;) {
      kvEntry* entry = nullptr;
      KvWatch::Step step = maps_watch_->Next(kIdleWait.count(), &entry);
      if (step == KvWatch::Step::kStop) break;
      if (step == KvWatch::Step::kEntry) {
        ApplyMapEntry(*maps_state_, entry);
        kvEntry_Destroy(entry);
      }
    }
    maps_watch_->Close();
  }

  // A watch with nothing to wait for waits this long, then simply waits again.
  static constexpr std::chrono::milliseconds kIdleWait{3'600'000};

  const ClusterConfig config_;
  const std::string node_name_;
  const std::function<void()> routes_changed_;
  std::string key_;
  std::shared_ptr<NatsLink> link_;
  jsCtx* js_ = nullptr;
  kvStore* registry_ = nullptr;
  std::shared_ptr<MapsState> maps_state_;
  // Maps given a KV pull (SetShardMapPull); guarded by maps_state_->mutex.
  std::vector<std::shared_ptr<shard::ShardMapHolder>> pulled_;
  uint64_t state_listener_ = 0;
  // Both made by Open before the threads start; the maps bucket outlives them (Stop).
  std::unique_ptr<KvWatch> registry_watch_;
  std::unique_ptr<KvWatch> maps_watch_;
  std::thread registry_thread_;
  std::thread maps_thread_;
  store::Scheduler::TaskId heartbeat_ = 0;

  mutable std::mutex mutex_;
  std::string announcement_;              // guarded by mutex_
  std::map<std::string, Remote> remote_;  // registry key -> entry; guarded by mutex_
  bool left_ = false;                     // guarded by mutex_
  bool loaded_ = false;                   // guarded by mutex_
  std::condition_variable loaded_changed_;
};

ClusterAgent::ClusterAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClusterAgent::~ClusterAgent() = default;

Result<std::unique_ptr<ClusterAgent>> ClusterAgent::Start(const ClusterConfig& config,
                                                          const std::string& node_name,
                                                          std::function<void()> routes_changed) {
  auto impl = std::make_unique<Impl>(config, node_name, std::move(routes_changed));
  Status opened = impl->Open();
  if (!opened.ok()) return opened;
  return std::unique_ptr<ClusterAgent>(new ClusterAgent(std::move(impl)));
}

const std::shared_ptr<NatsLink>& ClusterAgent::link() const { return impl_->link(); }
Status ClusterAgent::Announce(std::vector<std::string> patterns) {
  return impl_->Announce(std::move(patterns));
}
std::map<std::string, std::set<std::string>> ClusterAgent::RemotePatterns() const {
  return impl_->RemotePatterns();
}
bool ClusterAgent::WaitForRegistry(std::chrono::milliseconds timeout) {
  return impl_->WaitForRegistry(timeout);
}
Status ClusterAgent::AttachShardMaps() { return impl_->AttachShardMaps(); }
void ClusterAgent::Leave() { impl_->Leave(); }

}  // namespace shardkit::services
