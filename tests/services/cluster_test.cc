// Cluster mode over a real nats-server (started by each test) and real `shardkit serve` processes:
// winner-take-all across instances, an instance killed under load, an instance joining with no
// config change, fire-and-forget fan-out, shard map epochs seen by every node, and the failure
// behaviour of the NATS connection (docs/cluster.md).
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "cluster_node.h"

namespace shardkit::services::testing {
namespace {

using namespace std::chrono_literals;

// Sends `count` messages `make(i)` through `client`, at most `window` in flight, each with a
// deadline `deadline` after it is sent; `before(i)` runs before message i is sent. All replies,
// in the order they came (waits up to `wait`).
std::vector<Result<Message>> SendWindowed(Handler& client, int count, int window,
                                          std::chrono::milliseconds deadline,
                                          const std::function<Message(int)>& make,
                                          const std::function<void(int)>& before,
                                          std::chrono::seconds wait) {
  Replies replies;
  std::atomic<int> in_flight{0};
  for (int i = 0; i < count; ++i) {
    while (in_flight.load() >= window) std::this_thread::sleep_for(1ms);
    before(i);
    Message m = make(i);
    m.meta().deadline = SystemClock::Default().NowMs() + deadline.count();
    in_flight++;
    auto collect = replies.Collect();
    Context context(nullptr, nullptr, m.meta());
    client.Handle(std::move(m), context, [&in_flight, collect](Result<Message> r) {
      in_flight--;
      collect(std::move(r));
    });
  }
  return replies.Wait(wait);
}

// The services of a storage node: the shard map `ranges` and a store under `data` for each of
// `shards`, each with the `store_settings` lines.
std::string StorageServices(const std::string& data, std::initializer_list<const char*> shards,
                            const std::string& store_settings = {},
                            const std::string& ranges = R"(["-80", "80-"])") {
  std::string services = fmt::format(R"(
[[service]]
name = "map"
type = "shard-map"
ranges = {}
)",
                                     ranges);
  for (const char* shard : shards) {
    services += fmt::format(R"(
[[service]]
name = "store{0}"
type = "store"
path = "{1}/store{0}"
shard = "{0}"
{2}
)",
                            shard, data, store_settings);
  }
  return services;
}

// The services of a router node: the same shard map and a shard router.
std::string RouterServices(int node_id) {
  return fmt::format(R"(
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
[[service]]
name = "router"
type = "shard-router"
node_id = {}
)",
                     node_id);
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { SHARDKIT_REQUIRE_COMPONENT(nats_.ok(), nats_.problem(), "nats-server"); }
  NatsServer nats_;
};

TEST_F(ClusterTest, RequestsAreSpreadOverThreeInstancesAndEachIsServedOnce) {
  std::vector<std::unique_ptr<ClusterNode>> instances;
  for (int i = 1; i <= 3; ++i)
    instances.push_back(std::make_unique<ClusterNode>(nats_.url(), fmt::format("echo-{}", i),
                                                      EchoService(fmt::format("echo-{}", i))));
  ClusterNode router(nats_.url(), "router", "");
  for (auto& instance : instances) ASSERT_FALSE(instance->url.empty());
  ASSERT_FALSE(router.url.empty());
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "role:echo", 3); }))
      << "the router did not see the three instances";

  std::map<std::string, int> served;
  for (int i = 0; i < 90; ++i) {
    auto reply = router.Act(fmt::format(R"({{"role":"echo","i":{}}})", i));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_EQ(reply->GetInt("i"), i);
    served[std::string(reply->GetString("served_by").value_or(""))]++;
  }
  // NATS spreads a queue group's messages at random: every instance gets a fair part.
  ASSERT_EQ(served.size(), 3u);
  for (auto& [name, count] : served) EXPECT_GE(count, 10) << name;
  // Exactly one instance answered each request: the instances' counters add up to the requests.
  int total = 0;
  for (auto& instance : instances) {
    auto stats = instance->Act(R"({"sys":"stats"})");
    ASSERT_TRUE(stats.ok());
    auto doc = ParseMessage(std::string(stats->GetObjectJson("routes").value_or("{}")));
    ASSERT_TRUE(doc.ok());
    auto route = ParseMessage(std::string(doc->GetObjectJson("role:echo").value_or("{}")));
    total += static_cast<int>(route->GetInt("ok").value_or(0));
  }
  EXPECT_EQ(total, 90);
}

TEST_F(ClusterTest, AnInstanceKilledUnderLoadLosesNoRequest) {
  std::vector<std::unique_ptr<ClusterNode>> instances;
  for (int i = 1; i <= 3; ++i)
    instances.push_back(std::make_unique<ClusterNode>(nats_.url(), fmt::format("echo-{}", i),
                                                      EchoService(fmt::format("echo-{}", i))));
  ClusterNode router(nats_.url(), "router", "", "resend_after_ms = 300");
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "role:echo", 3); }));

  // 600 requests, 40 ms of work each, 30 in flight at a time; echo-2 is killed a third of the way.
  constexpr int kRequests = 600;
  auto start = std::chrono::steady_clock::now();
  auto results = SendWindowed(
      router.client(), kRequests, 30, 3000ms,
      [](int i) { return Msg(fmt::format(R"({{"role":"echo","i":{},"delay_ms":40}})", i)); },
      [&](int i) {
        if (i == kRequests / 3) instances[1]->process->Signal(SIGKILL);
      },
      30s);
  ASSERT_EQ(results.size(), size_t{kRequests});
  std::set<int64_t> answered;
  std::map<std::string, int> served;
  for (auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    answered.insert(*r->GetInt("i"));
    served[std::string(r->GetString("served_by").value_or(""))]++;
  }
  EXPECT_EQ(answered.size(), size_t{kRequests});
  EXPECT_GT(served["echo-2"], 0) << "echo-2 was killed before it served anything";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 25s);
  // The killed node's routes go when its key is deleted by the TTL sweep (3 s here).
  EXPECT_TRUE(Eventually([&] { return !RoutesToCluster(router, "role:echo", 3); }, 8s));
}

// Three shard-router instances in front of one storage node. Two of them, frozen and then killed
// -9 under load, take with them requests whose writes the storage node has already applied; the
// front node resends each after 300 ms of silence with the same idempotency key, the instance left
// forwards it, and the store answers the copy from its receipt. So every save is applied exactly
// once: the feeds hold one record per save and every entity has version 1 (a second application
// would make it 2, and a save without a key does).
TEST_F(ClusterTest, WritesResentAfterAnInstanceIsKilledAreAppliedOnceThanksToIdempotencyKeys) {
  TempDir data;
  // sync: every write waits for its fsync, so writes queue at the storage node and a killed
  // router instance surely has some applied and not yet answered.
  ClusterNode storage(
      nats_.url(), "storage",
      StorageServices(data.path(), {"-80", "80-"}, "durability = \"sync\"\nthreads = 1"));
  ASSERT_FALSE(storage.url.empty()) << storage.process->log();
  std::vector<std::unique_ptr<ClusterNode>> routers;
  for (int i = 1; i <= 3; ++i) {
    routers.push_back(
        std::make_unique<ClusterNode>(nats_.url(), fmt::format("router-{}", i), RouterServices(i)));
    ASSERT_FALSE(routers.back()->url.empty()) << routers.back()->process->log();
  }
  ClusterNode front(nats_.url(), "front", "", "resend_after_ms = 300");
  ASSERT_FALSE(front.url.empty()) << front.process->log();
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(front, "store:*", 3); }))
      << "the front node did not see the three routers";
  for (auto& router : routers)
    ASSERT_TRUE(Eventually([&] { return RoutesToCluster(*router, "store:*,kind:*,shard:-80"); }));

  constexpr int kSaves = 600;
  auto results = SendWindowed(
      front.client(), kSaves, 30, 5000ms,
      [](int i) {
        return Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"e{}"}}}})", i));
      },
      [&](int i) {
        // Two of the three frozen, then killed a little later: the requests NATS hands them
        // meanwhile, and the answers coming back to them, are surely in flight when they die (a
        // kill of one alone sometimes caught none, and then the test proved nothing).
        if (i == kSaves / 3) {
          routers[1]->process->Signal(SIGSTOP);
          routers[2]->process->Signal(SIGSTOP);
        }
        if (i == kSaves / 3 + 15) {
          // Time for the 15 saves sent since the freeze to reach the frozen instances (about 10
          // of them): on a fast machine the kill could otherwise come before NATS delivered any.
          std::this_thread::sleep_for(100ms);
          routers[1]->process->Signal(SIGKILL);
          routers[2]->process->Signal(SIGKILL);
        }
      },
      60s);
  ASSERT_EQ(results.size(), size_t{kSaves});
  for (auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_NE(std::string(r->GetObjectJson("ent").value_or("")).find(R"("version":1)"),
              std::string::npos)
        << "a save was applied twice: " << r->GetObjectJson("ent").value_or("");
  }
  auto stats = front.Act(R"({"sys":"stats"})");
  ASSERT_TRUE(stats.ok());
  auto cluster = ParseMessage(std::string(stats->GetObjectJson("cluster").value_or("{}")));
  ASSERT_TRUE(cluster.ok());
  EXPECT_GT(cluster->GetUint("resent").value_or(0), 0u)
      << "nothing was resent: the kill caught no request in flight";
  // One change record per save in the two shards' feeds together, and every entity at version 1.
  uint64_t records = 0;
  for (const char* shard : {"-80", "80-"}) {
    auto changes = storage.Act(
        fmt::format(R"({{"store":"changes","kind":"entry","shard":"{}","limit":1}})", shard));
    ASSERT_TRUE(changes.ok()) << changes.status().ToString();
    records += changes->GetUint("last").value_or(0);
  }
  EXPECT_EQ(records, uint64_t{kSaves});
  for (int i = 0; i < kSaves; ++i) {
    auto loaded = front.Act(fmt::format(R"({{"store":"load","kind":"entry","id":"e{}"}})", i));
    ASSERT_TRUE(loaded.ok()) << i << ": " << loaded.status().ToString();
    EXPECT_NE(std::string(loaded->GetObjectJson("ent").value_or("")).find(R"("version":1)"),
              std::string::npos)
        << "e" << i << " applied twice: " << loaded->GetObjectJson("ent").value_or("");
  }
}

TEST_F(ClusterTest, ANewInstanceTakesRequestsWithNoConfigChange) {
  ClusterNode first(nats_.url(), "echo-1", EchoService("echo-1"));
  ClusterNode router(nats_.url(), "router", "");
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "role:echo", 1); }));
  ASSERT_EQ(router.Act(R"({"role":"echo"})")->GetString("served_by"), "echo-1");

  ClusterNode second(nats_.url(), "echo-2", EchoService("echo-2"));
  ASSERT_FALSE(second.url.empty());
  std::set<std::string> served;
  ASSERT_TRUE(Eventually([&] {
    auto reply = router.Act(R"({"role":"echo"})");
    if (reply.ok()) served.insert(std::string(reply->GetString("served_by").value_or("")));
    return served.count("echo-2") == 1;
  }));
}

TEST_F(ClusterTest, MostSpecificPatternWinsAcrossNodes) {
  ClusterNode general(nats_.url(), "general", EchoService("general", "role:echo"));
  ClusterNode special(nats_.url(), "special", EchoService("special", "role:echo,vip:true"));
  ClusterNode router(nats_.url(), "router", "");
  ASSERT_TRUE(Eventually([&] {
    return RoutesToCluster(router, "role:echo") && RoutesToCluster(router, "role:echo,vip:true");
  }));
  EXPECT_EQ(router.Act(R"({"role":"echo","vip":true})")->GetString("served_by"), "special");
  EXPECT_EQ(router.Act(R"({"role":"echo","vip":false})")->GetString("served_by"), "general");
}

TEST_F(ClusterTest, GracefulStopRemovesTheNodesRoutesAtOnce) {
  auto echo = std::make_unique<ClusterNode>(nats_.url(), "echo-1", EchoService("echo-1"));
  ClusterNode router(nats_.url(), "router", "");
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "role:echo"); }));
  echo->process->Signal(SIGTERM);
  EXPECT_EQ(echo->process->WaitExit(5s), 0);
  // Deleted on stop: gone well before the 3 s TTL.
  EXPECT_TRUE(Eventually([&] { return !RoutesToCluster(router, "role:echo"); }, 1500ms));
  auto reply = router.Act(R"({"role":"echo"})");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kNoRoute);
}

TEST_F(ClusterTest, FireAndForgetInfoReachesEverySubscribedNode) {
  ClusterNode a(nats_.url(), "observer-a", EchoService("audit", "info:*"));
  ClusterNode b(nats_.url(), "observer-b", EchoService("index", "info:entry"));
  ClusterNode router(nats_.url(), "router", "");
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "info:entry"); }));
  auto published = router.Act(R"({"info":"entry","id":"7"})");
  ASSERT_TRUE(published.ok()) << published.status().ToString();
  EXPECT_EQ(published->GetBool("published"), true);
  auto handled = [](ClusterNode& node, const std::string& pattern) {
    auto stats = node.Act(R"({"sys":"stats"})");
    if (!stats.ok()) return int64_t{-1};
    auto routes = ParseMessage(std::string(stats->GetObjectJson("routes").value_or("{}")));
    auto route = ParseMessage(std::string(routes->GetObjectJson(pattern).value_or("{}")));
    return route->GetInt("ok").value_or(0);
  };
  EXPECT_TRUE(Eventually([&] {
    return handled(a, "info:*") == 1 && handled(b, "info:entry") == 1;
  })) << handled(a, "info:*")
      << " " << handled(b, "info:entry");
}

std::string ShardMapService() {
  return R"(
[[service]]
name = "map"
type = "shard-map"
ranges = ["-"]
)";
}

int64_t EpochOf(ClusterNode& node) {
  auto reply = node.Act(R"({"shardmap":"get","map":"main"})");
  return reply.ok() ? static_cast<int64_t>(reply->GetUint("epoch").value_or(0)) : -1;
}

TEST_F(ClusterTest, AShardMapChangeIsSeenByEveryNodeAndAStaleChangeConflicts) {
  std::vector<std::unique_ptr<ClusterNode>> nodes;
  for (int i = 1; i <= 3; ++i)
    nodes.push_back(
        std::make_unique<ClusterNode>(nats_.url(), fmt::format("router-{}", i), ShardMapService()));
  for (auto& node : nodes) ASSERT_EQ(EpochOf(*node), 1);

  auto set =
      nodes[0]->Act(R"({"shardmap":"set","map":"main","expected_epoch":1,"ranges":["-80","80-"]})");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->GetUint("epoch"), 2u);
  for (auto& node : nodes) EXPECT_TRUE(Eventually([&] { return EpochOf(*node) == 2; }));
  auto ranges = nodes[2]->Act(R"({"shardmap":"get","map":"main"})");
  EXPECT_EQ(ranges->GetArrayJson("ranges"), R"(["-80","80-"])");

  // Node 3 has seen epoch 2: a change made against epoch 1 is refused, and nothing changes.
  auto stale =
      nodes[2]->Act(R"({"shardmap":"set","map":"main","expected_epoch":1,"ranges":["-"]})");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), Code::kConflict);

  // A node started later takes the cluster's map, not its config's.
  ClusterNode late(nats_.url(), "router-4", ShardMapService());
  EXPECT_EQ(EpochOf(late), 2);
}

// A live split in cluster mode: the storage node's migrator commits its cutover to the shard map
// in the KV (compare-and-swap on the key's revision); a router on another node sees the new epoch
// through its watch and routes to the new shards, while a client writing through it sees no error
// and loses nothing.
TEST_F(ClusterTest, ALiveSplitCommitsItsCutoverThroughTheKvAndEveryRouterSeesIt) {
  TempDir data;
  std::string storage_services = StorageServices(data.path(), {"-80", "80-", "-40", "40-80"});
  storage_services += fmt::format(R"(
[[service]]
name = "migrator"
type = "migrator"
dir = "{}/migrations"
)",
                                  data.path());
  ClusterNode storage(nats_.url(), "storage", storage_services);
  ASSERT_FALSE(storage.url.empty()) << storage.process->log();
  ClusterNode router(nats_.url(), "router", RouterServices(2));
  ASSERT_FALSE(router.url.empty()) << router.process->log();
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "store:*,kind:*,shard:-80"); }))
      << router.Act(R"({"sys":"config","cmd":"routes"})")->GetArrayJson("routes").value_or("");

  std::map<std::string, std::string> acknowledged;
  for (int i = 0; i < 300; ++i) {
    auto r = router.Act(
        fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"e{}","v":"0"}}}})", i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acknowledged[fmt::format("e{}", i)] = "0";
  }
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::mutex mu;
  std::string first_error;
  std::thread writer([&] {
    ClusterNode* via = &router;
    IoRuntime runtime(1);
    auto client = Client(runtime, via->url, ClientOptions{.timeout = 5s});
    for (int i = 1; !stop; ++i) {
      std::string id = fmt::format("e{}", i % 300), v = std::to_string(i);
      auto r = CallAndWait(
          *client,
          Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})", id,
                          v)));
      std::lock_guard<std::mutex> lock(mu);
      if (r.ok()) {
        acknowledged[id] = v;
      } else if (errors++ == 0) {
        first_error = r.status().ToString();
      }
    }
  });
  std::this_thread::sleep_for(200ms);
  auto started =
      storage.Act(R"({"migrate":"start","id":"s1","sources":["-80"],"targets":["-40","40-80"]})");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_TRUE(Eventually(
      [&] {
        auto status = storage.Act(R"({"migrate":"status","id":"s1"})");
        return status.ok() && status->GetBool("copying") == std::optional<bool>(false);
      },
      20s));
  auto cutover = storage.Act(R"({"migrate":"cutover","id":"s1"})");
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString() << storage.process->log();
  EXPECT_EQ(cutover->GetUint("epoch"), 2u);
  // The router node learns the new map from the KV, not from the storage node.
  EXPECT_TRUE(Eventually([&] { return EpochOf(router) == 2; }));
  auto map = router.Act(R"({"shardmap":"get","map":"main"})");
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(map->GetArrayJson("ranges"), R"(["-40","40-80","80-"])");
  std::this_thread::sleep_for(200ms);
  stop = true;
  writer.join();
  EXPECT_EQ(errors.load(), 0) << first_error;
  ASSERT_TRUE(storage.Act(R"({"migrate":"complete","id":"s1"})").ok());
  for (const auto& [id, v] : acknowledged) {
    auto r = router.Act(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id));
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    EXPECT_NE(
        std::string(r->GetObjectJson("ent").value_or("")).find(fmt::format("\"v\":\"{}\"", v)),
        std::string::npos)
        << id;
  }
}

TEST_F(ClusterTest, UnreachableNatsAtStartIsAClearError) {
  TempDir dir;
  uint16_t closed = FreePort();
  std::string config = dir.Write("node.toml", fmt::format(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
[cluster]
nats = "nats://127.0.0.1:{}"
)",
                                                          closed));
  auto run = Shell(dir, Cli("serve --config " + config));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(
      run.err.find(fmt::format("cluster.nats: cannot connect to nats://127.0.0.1:{}", closed)),
      std::string::npos)
      << run.err;
}

// In process: the node and the NATS server under the test's control.
TEST_F(ClusterTest, LostConnectionAnswersInFlightUnavailableKeepsLocalRoutesAndRecovers) {
  ClusterNode remote(nats_.url(), "slow", EchoService("slow", "role:slow"));
  auto node = StartNode(fmt::format(R"(
[node]
name = "local"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "echo"
type = "echo"
[cluster]
nats = "{}"
ttl_ms = 3000
)",
                                    nats_.url()));
  ASSERT_NE(node, nullptr);
  IoRuntime runtime(1);
  auto client = Client(runtime, node->listener_urls().at(0), ClientOptions{.timeout = 10s});
  ASSERT_TRUE(Eventually([&] { return CallAndWait(*client, Msg(R"({"role":"slow"})")).ok(); }));

  // A request in flight to the other node when the server dies: answered `unavailable`, soon.
  Replies replies;
  Message slow = Msg(R"({"role":"slow","delay_ms":5000})");
  Context context(nullptr, nullptr, {});
  client->Handle(std::move(slow), context, replies.Collect());
  std::this_thread::sleep_for(200ms);
  auto killed_at = std::chrono::steady_clock::now();
  nats_.Stop();
  auto results = replies.Wait(8s);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].status().code(), Code::kUnavailable) << results[0].status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 4s);

  // Local routes keep working; cluster routes answer `unavailable` at once, not after a timeout.
  auto local = CallAndWait(*client, Msg(R"({"role":"echo"})"));
  EXPECT_TRUE(local.ok()) << local.status().ToString();
  auto start = std::chrono::steady_clock::now();
  auto down = CallAndWait(*client, Msg(R"({"role":"slow"})"));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), Code::kUnavailable) << down.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);

  // The server comes back on the same port: the node reconnects by itself.
  ASSERT_TRUE(nats_.Start()) << nats_.problem();
  EXPECT_TRUE(
      Eventually([&] { return CallAndWait(*client, Msg(R"({"role":"slow"})")).ok(); }, 10s));
  node->Stop(500ms);
}

// Saves sent through `client`, 32 in flight, while `restart()` runs; every failed reply's text,
// counted. Replies answered `timeout` are requests a killed instance took with it (when no resend
// covers them) and are counted apart, in `timeouts`.
std::map<std::string, int> ErrorsWhile(Handler& client, const std::function<void()>& restart,
                                       int& answered, int& timeouts) {
  std::atomic<bool> stop{false};
  std::map<std::string, int> errors;  // written by the load thread only until it is joined
  std::thread load([&] {
    for (int round = 0; !stop.load(); ++round) {
      auto results = SendWindowed(
          client, 200, 32, 5000ms,
          [round](int i) {
            return Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"r{}-{}"}}}})",
                                   round, i));
          },
          [](int) {}, 30s);
      for (auto& r : results) {
        if (r.ok()) {
          ++answered;
        } else if (r.status().code() == Code::kTimeout) {
          ++timeouts;
        } else {
          ++errors[r.status().ToString()];
        }
      }
    }
  });
  restart();
  std::this_thread::sleep_for(500ms);
  stop = true;
  load.join();
  return errors;
}

std::string Listed(const std::map<std::string, int>& errors) {
  std::string seen;
  for (const auto& [error, count] : errors) seen += fmt::format("\n  {} x {}", count, error);
  return seen;
}

// A shard-router instance of a queue group killed -9 and started again, many times, under load. The
// cluster's shard map has moved on (epoch 2, ranges -40 and 40-, as after a split) while the
// routers' config still says epoch 1 with -80 and 80-. The restarted instance takes requests only
// once it routes with the cluster's map and its routes to the storage node are built, so no
// request is answered `unavailable` (no service answers for shard '80-') or `no_route`. Through a
// front node (requests in flight at a kill are resent after 300 ms of silence, with the same
// idempotency key), and straight to the `shardkit.node` queue group every cluster node subscribes.
TEST_F(ClusterTest, ARouterRestartedUnderLoadAnswersNoRequestUnavailable) {
  TempDir data;
  ClusterNode storage(nats_.url(), "storage",
                      StorageServices(data.path(), {"-40", "40-"}, "", R"(["-40", "40-"])"));
  ASSERT_FALSE(storage.url.empty()) << storage.process->log();
  auto moved =
      storage.Act(R"({"shardmap":"set","map":"main","expected_epoch":1,"ranges":["-40","40-"]})");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  ASSERT_EQ(moved->GetUint("epoch"), 2u);
  ClusterNode steady(nats_.url(), "router-1", RouterServices(1));
  auto restarted = std::make_unique<ClusterNode>(nats_.url(), "router-2", RouterServices(2));
  ClusterNode front(nats_.url(), "front", "", "resend_after_ms = 300");
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(front, "store:*", 2); }));
  IoRuntime runtime(1);
  auto to_group = Client(runtime, nats_.url(), ClientOptions{.timeout = 5s});

  constexpr int kRestarts = 10;
  int restarts = 0;
  auto restart = [&] {
    for (int i = 0; i < kRestarts; ++i, ++restarts) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250 + 50 * (i % 4)));
      restarted.reset();  // SIGKILL
      restarted = std::make_unique<ClusterNode>(nats_.url(), "router-2", RouterServices(2));
      if (restarted->url.empty()) return;
    }
  };
  for (Handler* client : {&front.client(), to_group.get()}) {
    const char* through = client == to_group.get() ? "shardkit.node" : "the front node";
    int answered = 0, timeouts = 0;
    restarts = 0;
    auto errors = ErrorsWhile(*client, restart, answered, timeouts);
    ASSERT_FALSE(restarted->url.empty()) << restarted->process->log();
    EXPECT_TRUE(errors.empty()) << "through " << through << ": " << restarts << " restarts, "
                                << answered << " answered, " << timeouts
                                << " timeouts; errors:" << Listed(errors);
    EXPECT_GT(answered, 0);
    if (client == &front.client()) {
      EXPECT_EQ(timeouts, 0) << "the front resends on silence";
    }
  }
}

}  // namespace
}  // namespace shardkit::services::testing
