// Cluster: a deterministic in-process cluster of N nodes — one Bus each — linked by in-process
// links that fault injection can break, on one injected clock and scheduler. Two ways to build one:
//
// 1. From node TOML, the same text `shardkit serve --config` reads (docs/configuration.md): each
//    node's [[service]]s are built by the registered factories of a real node (shard-map, store,
//    shard-router, cache, migrator, command-log, projection, your own types), its [[route]]s to
//    other nodes become links, and nothing listens on a socket.
//
//      auto cluster = Cluster::FromToml({node0_toml, node1_toml});
//      cluster->faults().On("node1->node0", "store:save").Delay(30);
//      EXPECT_THAT(cluster->Act(1, Msg(…)), IsOkReply());
//
//    - A route whose `to` is a URL goes to the fixture node with a [[listener]] of that URL (or,
//      for inproc://NAME, the node named NAME). The link is fault route "<from>-><to>" (the
//      [node] names), and it gives the message the route's `timeout_ms` as its deadline, as the
//      real client does, so a dropped message is answered `timeout` at that deadline. Listener
//      admission (external stripping, tokens, size limits) is not simulated.
//    - Services get the cluster's ManualClock (stores, caches, id generators, command services),
//      blocking store work runs inline on the caller's thread, and each node has its own
//      ServiceDirectory (its shard maps and served shards are its own, as in separate processes).
//    - Components with threads of their own (a command log's writer, an applier, a projection's
//      runner, a migration's replicators) reply from those threads: Act waits for them up to
//      `real_wait_ms` of real time whenever no scheduled task is pending.
//    - Restart(i) stops node i's services and builds them again from its TOML (RocksDB and SQLite
//      data on disk survive; memory stores start empty).
//
// 2. From ClusterOptions (C++), a fixed layout without TOML:
//
//   ClusterOptions options;
//   options.nodes = 2;
//   options.ranges = {"-80", "80-"};            // shard i lives on node i % nodes
//   options.cached_kinds = {"entry"};           // an EntityCache per node in front of the router
//   options.fixtures = R"({"entry":[{"id":"1","text":"hi"}]})";
//   Cluster cluster(options);
//   cluster.faults().On("node0->node1", "store:save").Drop().Times(1);
//   EXPECT_THAT(cluster.Act(0, Msg(…)), IsErrorReply(Code::kTimeout));
//
//   Wiring of node i (patterns as the router sees them):
//   store:*                                  shard router (map of epoch options.epoch)
//   store:*,kind:K                           the cache, for K in cached_kinds; it forwards as
//   store:*,kind:K,cache:true                … which goes to the shard router
//   store:*,kind:*,shard:"R"                 the shard's store with its guard as an override over
//                                            it, when node i owns R, else a link
//                                            "node<i>->node<j>" to the owner's bus (kind:* makes
//                                            it beat store:*,kind:K; docs/sharding.md)
//   Every shard's guard is wrapped by the fault injector as route "shard:<R>" and every link as
//   "node<i>->node<j>". Routers refresh from one authoritative map (SetShardMap).
//
// Either way, add services with node(i).Add(pattern, handler); they may send messages through the
// node's bus as usual. `fixtures` are saved through node 0 at start.
//
// Act() is deterministic for everything driven by the scheduler: it sends the message, then runs
// the scheduler's tasks one at a time (moving the clock to each) until the reply arrives. A message
// whose reply can never come (no task pending, no reply within real_wait_ms) is answered
// `internal` "no reply and nothing scheduled".
//
// Thread-safety: meant for one test thread; the handlers themselves are thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/cache/entity_cache.h>
#include <shardkit/message/bus.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/shard/write_gate.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/testing/faults.h>
#include <shardkit/testing/messages.h>
#include <shardkit/testing/scheduler.h>

namespace shardkit::services {
class Node;
}  // namespace shardkit::services

namespace shardkit::testing {

struct ClusterOptions {
  int nodes = 1;
  std::vector<std::string> ranges = {"-"};        // Vitess notation, covering the keyspace
  std::map<std::string, std::string> shard_keys;  // kind -> shard key field (default id)
  uint64_t epoch = 1;
  std::vector<std::string> cached_kinds;  // kinds with an EntityCache on every node
  cache::CacheOptions cache;              // its clock is replaced by the cluster's
  std::string fixtures;                   // {"kind":[…]} saved through node 0 at start
  int64_t start_ms = 1'700'000'000'000;   // the clock's start
  FaultOptions faults;
  // Act: how long (real time) to wait for a reply from a component with its own threads when no
  // scheduled task is pending.
  int64_t real_wait_ms = 10'000;
};

class Cluster {
 public:
  class Node {
   public:
    const std::string& name() const { return name_; }
    Bus& bus() { return *bus_; }
    // The shards this node owns.
    const std::vector<std::string>& shards() const { return shards_; }
    // Routes `pattern` on this node (recorded by MessageCaptures on its bus).
    [[nodiscard]] Status Add(std::string_view pattern, std::shared_ptr<Handler> handler,
                             std::string description = {});
    // The cache of `kind` on this node, or null (ClusterOptions clusters).
    std::shared_ptr<cache::EntityCache> cache(std::string_view kind) const;
    // TOML clusters: this node's shard map named `map` (a shard-map service), or null.
    std::shared_ptr<shard::ShardMapHolder> shard_map(const std::string& map = "main") const;
    // TOML clusters: the store and write gate of shard `range` served here (a store service with
    // `shard`), or null. What a migrate::Participant needs.
    std::shared_ptr<store::EntityStore> shard_store(const std::string& range) const;
    std::shared_ptr<shard::WriteGate> shard_gate(const std::string& range) const;

    Node();
    ~Node();

   private:
    friend class Cluster;
    struct Runtime;  // a TOML node: its services::Node, directory and config
    std::string name_;
    Bus* bus_ = nullptr;
    std::unique_ptr<Bus> owned_bus_;
    std::unique_ptr<Runtime> runtime_;
    std::vector<std::string> shards_;
    std::map<std::string, std::shared_ptr<cache::EntityCache>, std::less<>> caches_;
  };

  // Builds and wires the cluster; a bad option (ranges, fixtures) fails the current test.
  explicit Cluster(ClusterOptions options);
  // Builds one node per TOML text (see above); `options` gives the clock's start, fault options,
  // real_wait_ms and fixtures (its layout fields are ignored). A config error fails the current
  // test, naming the node and the problem, and returns null.
  static std::unique_ptr<Cluster> FromToml(std::vector<std::string> node_tomls,
                                           ClusterOptions options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  size_t size() const { return nodes_.size(); }
  Node& node(size_t i) { return *nodes_.at(i); }

  // Sends `message` to node `node` and drives the scheduler until it is answered (see above).
  Result<Message> Act(size_t node, Message message);
  Result<Message> Act(size_t node, std::string_view text) { return Act(node, Msg(text)); }
  // TOML clusters: stops node `node`'s services (messages to it meanwhile answer `unavailable`)
  // and builds them again from its TOML.
  [[nodiscard]] Status Restart(size_t node);
  // Sends without driving the scheduler.
  PendingReply Send(size_t node, Message message);
  // Until `condition` holds: runs due scheduler tasks (moving the clock to each pending one) and
  // waits in real time for components with their own threads (an applier, a projection's runner
  // polling through a faulty link). Fails after `real_timeout`, saying how long it waited.
  ::testing::AssertionResult Await(
      const std::function<bool()>& condition,
      std::chrono::milliseconds real_timeout = std::chrono::seconds(10));

  ManualClock& clock() { return clock_; }
  ManualScheduler& scheduler() { return scheduler_; }
  FaultInjector& faults() { return *faults_; }

  // The store of shard `range` (canonical notation: "-80", "80-"), or null. TOML clusters: the
  // first node serving it.
  std::shared_ptr<store::EntityStore> store(std::string_view range) const;
  // The node owning shard `range`, or -1.
  int OwnerOf(std::string_view range) const;
  // ClusterOptions clusters: the authoritative shard map; shard guards refresh from it and routers
  // refresh on wrong_shard.
  std::shared_ptr<const shard::ShardMap> shard_map() const;
  // Replaces the authoritative map (epoch must grow). Routers keep their old map until a
  // wrong_shard makes them refresh — as in a real cluster.
  [[nodiscard]] Status SetShardMap(shard::ShardMap next);

 private:
  struct TomlTag {};
  Cluster(ClusterOptions options, TomlTag);
  Status StartTomlNode(size_t node);
  // Stops `nodes` on another thread while this one runs scheduled tasks their threads may wait for.
  void StopDriving(const std::vector<services::Node*>& nodes);
  void SaveFixtures();
  // A shard's store service and, over it, its guard behind the fault injector.
  struct ShardServices {
    std::shared_ptr<Handler> store;
    std::shared_ptr<Handler> guard;
  };
  std::map<std::string, ShardServices> AddShards(
      const shard::ShardMap& map, const std::function<Result<shard::ShardMap>()>& refresh);
  void WireNode(size_t i, const shard::ShardMap& map,
                const std::function<Result<shard::ShardMap>()>& refresh,
                const std::map<std::string, ShardServices>& shards);

  ClusterOptions options_;
  ManualClock clock_;
  ManualScheduler scheduler_;
  std::unique_ptr<FaultInjector> faults_;
  std::shared_ptr<shard::ShardMapHolder> authority_;
  std::map<std::string, std::shared_ptr<store::EntityStore>, std::less<>> stores_;
  std::map<std::string, int, std::less<>> owners_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace shardkit::testing
