// Cluster: N buses wired with shard routers, guarded memory stores, caches and fault-injectable
// links, all on one ManualClock and ManualScheduler.
#include <shardkit/testing/cluster.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <shardkit/message/json.h>
#include <shardkit/services/config.h>
#include <shardkit/services/data_services.h>
#include <shardkit/services/endpoint.h>
#include <shardkit/services/node.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/id_generator.h>
#include <shardkit/store/service.h>
#include <shardkit/testing/capture.h>

namespace shardkit::testing {

struct Cluster::Node::Runtime {
  services::NodeConfig config;
  std::vector<std::string> listeners;  // normalised URLs (Endpoint::ToString)
  std::shared_ptr<services::ServiceDirectory> directory;
  std::unique_ptr<services::Node> node;  // null while stopped
};

Cluster::Node::Node() = default;
Cluster::Node::~Node() = default;

std::shared_ptr<shard::ShardMapHolder> Cluster::Node::shard_map(const std::string& map) const {
  return runtime_ ? services::FindShardMap(*runtime_->directory, map) : nullptr;
}

std::shared_ptr<store::EntityStore> Cluster::Node::shard_store(const std::string& range) const {
  if (!runtime_) return nullptr;
  auto name = shard::CanonicalShardName(range);
  return name.ok() ? services::FindServedShard(*runtime_->directory, *name).store : nullptr;
}

std::shared_ptr<shard::WriteGate> Cluster::Node::shard_gate(const std::string& range) const {
  if (!runtime_) return nullptr;
  auto name = shard::CanonicalShardName(range);
  return name.ok() ? services::FindServedShard(*runtime_->directory, *name).gate : nullptr;
}

Status Cluster::Node::Add(std::string_view pattern, std::shared_ptr<Handler> handler,
                          std::string description) {
  return bus_->Add(pattern, Recorded(*bus_, std::move(handler)), std::move(description));
}

std::shared_ptr<cache::EntityCache> Cluster::Node::cache(std::string_view kind) const {
  auto it = caches_.find(kind);
  return it == caches_.end() ? nullptr : it->second;
}

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)),
      clock_(options_.start_ms),
      scheduler_(&clock_),
      faults_(std::make_unique<FaultInjector>(scheduler_, options_.faults)) {
  auto map = shard::ShardMap::Make(options_.epoch, options_.ranges, options_.shard_keys);
  if (!map.ok()) {
    ADD_FAILURE() << "Cluster: " << map.status().ToString();
    return;
  }
  if (options_.nodes < 1) {
    ADD_FAILURE() << "Cluster: nodes must be at least 1";
    return;
  }
  authority_ = std::make_shared<shard::ShardMapHolder>(*map);
  shard::MapRefresher refresh = [authority = authority_]() -> Result<shard::ShardMap> {
    return *authority->Current();
  };

  for (int i = 0; i < options_.nodes; ++i) {
    auto node = std::make_unique<Node>();
    node->name_ = fmt::format("node{}", i);
    BusOptions bus_options;
    bus_options.clock = &clock_;
    bus_options.id_prefix = node->name_;
    node->owned_bus_ = std::make_unique<Bus>(bus_options);
    node->bus_ = node->owned_bus_.get();
    nodes_.push_back(std::move(node));
  }

  std::map<std::string, ShardServices> shards = AddShards(*map, refresh);
  for (size_t i = 0; i < nodes_.size(); ++i) WireNode(i, *map, refresh, shards);
  SaveFixtures();
}

// Shard k lives on node k % nodes: its store, and over it its guard behind the fault injector
// ("shard:<range>"), which reaches the store as Prior.
std::map<std::string, Cluster::ShardServices> Cluster::AddShards(
    const shard::ShardMap& map, const shard::MapRefresher& refresh) {
  std::map<std::string, ShardServices> shard_services;
  for (size_t k = 0; k < map.shards().size(); ++k) {
    const std::string& name = map.shards()[k].name;
    store::StoreOptions store_options;
    store_options.clock = &clock_;
    store_options.shard_key_fields = options_.shard_keys;
    store_options.purge_interval_ms = 0;
    std::shared_ptr<store::EntityStore> s = std::move(store::NewMemoryStore(store_options)).value();
    stores_[name] = s;
    int owner = static_cast<int>(k % nodes_.size());
    owners_[name] = owner;
    nodes_[owner]->shards_.push_back(name);
    auto guard_map = std::make_shared<shard::ShardMapHolder>(map);
    shard_services[name] = {
        store::MakeStoreService(s),
        faults_->Wrap("shard:" + name, shard::MakeShardGuard({name, guard_map, refresh, nullptr}))};
  }
  return shard_services;
}

// Node i: a shard router on store:*, a cache per cached kind in front of it, its own shards'
// stores behind their guards, and links to the shards of other nodes.
void Cluster::WireNode(size_t i, const shard::ShardMap& map, const shard::MapRefresher& refresh,
                       const std::map<std::string, ShardServices>& shards) {
  auto fail = [](const Status& s) {
    if (!s.ok()) ADD_FAILURE() << "Cluster: " << s.ToString();
  };
  Node& node = *nodes_[i];
  auto ids = std::make_shared<store::IdGenerator>(static_cast<uint32_t>(i + 1), &clock_);
  auto router =
      shard::MakeShardRouter({std::make_shared<shard::ShardMapHolder>(map), refresh, ids});
  fail(node.Add("store:*", router, "shard router"));
  for (const auto& kind : options_.cached_kinds) {
    cache::CacheOptions cache_options = options_.cache;
    cache_options.clock = &clock_;
    auto entity_cache = cache::MakeEntityCache(cache_options);
    node.caches_[kind] = entity_cache;
    fail(node.Add(fmt::format("store:*,kind:\"{}\"", kind), entity_cache, kind + " cache"));
    fail(node.Add(fmt::format("store:*,kind:\"{}\",cache:true", kind), router,
                  "shard router (behind the cache)"));
  }
  for (const auto& [name, service] : shards) {
    int owner = owners_[name];
    // kind:* makes the shard route beat a cache or router on store:*,kind:K (docs/sharding.md);
    // the router drops `cache` when it forwards, so one route per shard serves every kind.
    std::string pattern = fmt::format("store:*,kind:*,shard:\"{}\"", name);
    if (owner == static_cast<int>(i)) {
      fail(node.bus_->Add(pattern, service.store, "store " + name));
      fail(node.bus_->Override(pattern, Recorded(*node.bus_, service.guard), "shard " + name));
      continue;
    }
    Bus* target = nodes_[owner]->bus_;
    std::string link = fmt::format("{}->{}", node.name_, nodes_[owner]->name_);
    auto handler =
        faults_->Wrap(link, MakeHandler([target](Message m, const Context&, ReplyFn reply) {
                        target->Act(std::move(m), std::move(reply));
                      }));
    std::string description =
        fmt::format("shard {} on {} (link {})", name, nodes_[owner]->name_, link);
    fail(node.Add(pattern, handler, description));
  }
}

void Cluster::SaveFixtures() {
  if (!options_.fixtures.empty()) {
    auto doc = ParseJson(options_.fixtures, "fixtures");
    if (!doc.ok() || !doc->IsObject()) {
      ADD_FAILURE() << "Cluster: fixtures: "
                    << (doc.ok() ? "must be an object of kind -> [entities]"
                                 : doc.status().ToString());
      return;
    }
    for (const auto& member : doc->GetObject()) {
      std::string kind(member.name.GetString(), member.name.GetStringLength());
      if (!member.value.IsArray()) {
        ADD_FAILURE() << "Cluster: fixtures." << kind << ": must be an array";
        continue;
      }
      size_t index = 0;
      for (const auto& ent : member.value.GetArray()) {
        Message save;
        save.SetString("store", "save").SetString("kind", kind);
        if (ent.IsObject()) save.SetObjectJson("ent", ToJsonText(ent));
        auto saved = Act(0, std::move(save));
        if (!saved.ok())
          ADD_FAILURE() << "Cluster: fixtures." << kind << "[" << index
                        << "]: " << saved.status().ToString();
        ++index;
      }
    }
  }
}

Cluster::Cluster(ClusterOptions options, TomlTag)
    : options_(std::move(options)),
      clock_(options_.start_ms),
      scheduler_(&clock_),
      faults_(std::make_unique<FaultInjector>(scheduler_, options_.faults)) {}

std::unique_ptr<Cluster> Cluster::FromToml(std::vector<std::string> node_tomls,
                                           ClusterOptions options) {
  services::RegisterDataServices();
  std::unique_ptr<Cluster> cluster(new Cluster(std::move(options), TomlTag{}));
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < node_tomls.size(); ++i) {
    std::string source = fmt::format("node TOML #{}", i);
    auto config = services::ParseNodeConfig(node_tomls[i], source);
    if (!config.ok()) {
      ADD_FAILURE() << "Cluster: " << config.status().ToString();
      return nullptr;
    }
    if (!names.emplace(config->name, i).second) {
      ADD_FAILURE() << "Cluster: " << source << ": node.name: '" << config->name
                    << "' is also the name of node TOML #" << names[config->name];
      return nullptr;
    }
    auto node = std::make_unique<Node>();
    node->name_ = config->name;
    node->runtime_ = std::make_unique<Node::Runtime>();
    for (const auto& listener : config->listeners)
      node->runtime_->listeners.push_back(listener.endpoint.ToString());
    config->threads = 1;  // its I/O runtime only runs timers here: no listener is bound
    node->runtime_->config = std::move(config).value();
    cluster->nodes_.push_back(std::move(node));
  }
  for (size_t i = 0; i < cluster->nodes_.size(); ++i) {
    if (Status started = cluster->StartTomlNode(i); !started.ok()) {
      ADD_FAILURE() << "Cluster: " << started.ToString();
      return nullptr;
    }
  }
  cluster->SaveFixtures();
  return cluster;
}

Status Cluster::StartTomlNode(size_t index) {
  Node& node = *nodes_.at(index);
  Node::Runtime& runtime = *node.runtime_;
  services::NodeOptions options;
  options.listen = false;
  options.environment.clock = &clock_;
  options.environment.run_blocking = [](std::function<void()> work) { work(); };
  runtime.directory = std::make_shared<services::ServiceDirectory>();
  options.environment.directory = runtime.directory;
  options.connect =
      [this, index](const services::RouteConfig& route) -> Result<std::shared_ptr<Handler>> {
    auto endpoint = services::ParseEndpoint(route.to);
    if (!endpoint.ok()) return endpoint.status();
    std::string url = endpoint->ToString();
    std::string known;
    std::optional<size_t> target;
    for (size_t j = 0; j < nodes_.size() && !target; ++j) {
      const Node::Runtime& other = *nodes_[j]->runtime_;
      for (const std::string& listener : other.listeners) {
        known += (known.empty() ? "" : ", ") + listener;
        if (listener == url) target = j;
      }
      if (endpoint->scheme == services::Scheme::kInproc && endpoint->name == nodes_[j]->name_)
        target = j;
    }
    if (!target)
      return Status::Invalid(
          fmt::format("{}: no node of the cluster listens there or is named so (listeners: {})",
                      url, known.empty() ? "none" : known));
    std::string link = fmt::format("{}->{}", nodes_[index]->name_, nodes_[*target]->name_);
    int64_t timeout_ms = route.timeout_ms;
    size_t to = *target;
    auto deliver = MakeHandler([this, to, url](Message m, const Context&, ReplyFn reply) {
      Node& destination = *nodes_[to];
      if (!destination.runtime_->node) {
        reply(Status::Unavailable(fmt::format("cannot connect to {}: the node is stopped", url)));
        return;
      }
      destination.bus_->Act(std::move(m), std::move(reply));
    });
    // As the real client: the route's timeout bounds the call through the message's deadline.
    auto wrapped = faults_->Wrap(link, deliver);
    const Clock* clock = &clock_;
    return MakeHandler(
        [wrapped, timeout_ms, clock](Message m, const Context& context, ReplyFn reply) {
          int64_t deadline = clock->NowMs() + timeout_ms;
          Meta& meta = m.meta();
          if (meta.deadline == 0 || meta.deadline > deadline) meta.deadline = deadline;
          wrapped->Handle(std::move(m), context, std::move(reply));
        });
  };
  auto started = services::Node::Start(runtime.config, std::move(options));
  if (!started.ok()) return started.status();
  runtime.node = std::move(started).value();
  node.bus_ = &runtime.node->bus();
  return Status::Ok();
}

Status Cluster::Restart(size_t index) {
  Node& node = *nodes_.at(index);
  if (!node.runtime_)
    return Status::Invalid("Cluster::Restart: only nodes built from TOML can restart");
  if (node.runtime_->node) {
    std::unique_ptr<services::Node> stopping = std::move(node.runtime_->node);
    StopDriving({stopping.get()});
  }
  return StartTomlNode(index);
}

Cluster::~Cluster() {
  faults_->Clear();
  // Stopping joins the nodes' own threads (a projection runner may be waiting for a message that
  // a delay holds in the scheduler): keep running scheduled tasks until every node has stopped.
  std::vector<services::Node*> running;
  for (auto& node : nodes_) {
    if (node->runtime_ && node->runtime_->node) running.push_back(node->runtime_->node.get());
  }
  StopDriving(running);
}

void Cluster::StopDriving(const std::vector<services::Node*>& nodes) {
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    for (services::Node* node : nodes) node->Stop(std::chrono::milliseconds(0));
    stopped = true;
  });
  while (!stopped) {
    if (!scheduler_.RunNext()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stopper.join();
}

PendingReply Cluster::Send(size_t node, Message message) {
  return testing::Send(*nodes_.at(node)->bus_, std::move(message));
}

Result<Message> Cluster::Act(size_t node, Message message) {
  std::string routing = message.RoutingString();
  PendingReply pending = Send(node, std::move(message));
  auto real_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.real_wait_ms);
  while (!pending.ready()) {
    if (scheduler_.RunNext()) continue;
    // Nothing scheduled: a component with threads of its own may still answer (or schedule).
    if (std::chrono::steady_clock::now() >= real_deadline) {
      return Status::Internal(fmt::format(
          "cluster: no reply to '{}' and nothing scheduled (held forever?) after {} ms of real "
          "time",
          routing, options_.real_wait_ms));
    }
    pending.Wait(std::chrono::milliseconds(1));
  }
  return pending.get();
}

::testing::AssertionResult Cluster::Await(const std::function<bool()>& condition,
                                          std::chrono::milliseconds real_timeout) {
  auto start = std::chrono::steady_clock::now();
  int64_t simulated_start = clock_.NowMs();
  while (!condition()) {
    if (scheduler_.RunNext()) continue;
    if (std::chrono::steady_clock::now() - start >= real_timeout) {
      return ::testing::AssertionFailure()
             << "the condition did not hold within " << real_timeout.count() << " ms of real time ("
             << clock_.NowMs() - simulated_start << " ms simulated)";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ::testing::AssertionSuccess();
}

std::shared_ptr<store::EntityStore> Cluster::store(std::string_view range) const {
  auto it = stores_.find(range);
  if (it != stores_.end()) return it->second;
  for (const auto& node : nodes_) {
    if (auto found = node->shard_store(std::string(range))) return found;
  }
  return nullptr;
}

int Cluster::OwnerOf(std::string_view range) const {
  auto it = owners_.find(range);
  return it == owners_.end() ? -1 : it->second;
}

std::shared_ptr<const shard::ShardMap> Cluster::shard_map() const {
  return authority_ ? authority_->Current() : nullptr;
}

Status Cluster::SetShardMap(shard::ShardMap next) {
  if (!authority_)
    return Status::Invalid(
        "Cluster::SetShardMap: TOML clusters keep a map per node (node(i).shard_map())");
  return authority_->CompareAndSwap(authority_->Current()->epoch(), std::move(next));
}

}  // namespace shardkit::testing
