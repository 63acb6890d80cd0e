// Cluster: a deterministic in-process cluster of N nodes — one Bus each — with a sharded entity
// store (a memory store per shard, behind its shard guard), a shard router on every node, an
// optional entry cache per node, links between nodes that fault injection can break, and one
// injected clock and scheduler for everything.
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
// Wiring of node i (patterns as the router sees them):
//   store:*                                  shard router (map of epoch options.epoch)
//   store:*,kind:K                           the cache, for K in cached_kinds; it forwards as
//   store:*,kind:K,cache:true                … which goes to the shard router
//   store:*,kind:*,shard:"R"                 the shard's guarded store when node i owns R, else a
//                                            link "node<i>->node<j>" to the owner's bus (kind:*
//                                            makes it beat store:*,kind:K; docs/sharding.md)
// Every shard service is wrapped by the fault injector as route "shard:<R>" and every link as
// "node<i>->node<j>". Add more services (a CQRS command service, a projection) with
// node(i).Add(pattern, handler); they may send messages through the node's bus as usual.
//
// This is built directly on the Bus/ShardRouter/ShardGuard/EntityCache APIs; it does not read node
// TOML (the node runtime has no store/cache service types yet) and opens no sockets.
//
// Act() is deterministic: it sends the message, then runs the scheduler's tasks one at a time
// (moving the clock to each) until the reply arrives. A message whose reply can never come (no
// task pending) is answered `internal` "no reply and nothing scheduled".
//
// Thread-safety: meant for one test thread; the handlers themselves are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/cache/entity_cache.h>
#include <shardkit/message/bus.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/testing/faults.h>
#include <shardkit/testing/messages.h>
#include <shardkit/testing/scheduler.h>

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
    Status Add(std::string_view pattern, std::shared_ptr<Handler> handler,
               std::string description = {});
    // The cache of `kind` on this node, or null.
    std::shared_ptr<cache::EntityCache> cache(std::string_view kind) const;

   private:
    friend class Cluster;
    std::string name_;
    std::unique_ptr<Bus> bus_;
    std::vector<std::string> shards_;
    std::map<std::string, std::shared_ptr<cache::EntityCache>, std::less<>> caches_;
  };

  // Builds and wires the cluster; a bad option (ranges, fixtures) fails the current test.
  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  size_t size() const { return nodes_.size(); }
  Node& node(size_t i) { return *nodes_.at(i); }

  // Sends `message` to node `node` and drives the scheduler until it is answered (see above).
  Result<Message> Act(size_t node, Message message);
  Result<Message> Act(size_t node, std::string_view text) { return Act(node, Msg(text)); }
  // Sends without driving the scheduler.
  PendingReply Send(size_t node, Message message);

  ManualClock& clock() { return clock_; }
  ManualScheduler& scheduler() { return scheduler_; }
  FaultInjector& faults() { return *faults_; }

  // The store of shard `range` (canonical notation: "-80", "80-"), or null.
  std::shared_ptr<store::EntityStore> store(std::string_view range) const;
  // The node owning shard `range`, or -1.
  int OwnerOf(std::string_view range) const;
  // The authoritative shard map; shard guards refresh from it and routers refresh on wrong_shard.
  std::shared_ptr<const shard::ShardMap> shard_map() const;
  // Replaces the authoritative map (epoch must grow). Routers keep their old map until a
  // wrong_shard makes them refresh — as in a real cluster.
  Status SetShardMap(shard::ShardMap next);

 private:
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
