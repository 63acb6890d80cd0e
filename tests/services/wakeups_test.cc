// A node's background work is woken by events and timers, not by polling: an idle cluster node
// (NATS listener, NATS client, cluster agent) barely wakes; a node that stops heartbeating is
// still dropped by the others at its TTL; a shard-map follower adopts a change on its authority
// at once, through a long-poll.
#include <dirent.h>

#include <fstream>
#include <iostream>
#include <map>

#include "cluster_node.h"
#include "shardkit/services/data_services.h"

namespace shardkit::services::testing {
namespace {

// Context switches (voluntary and not) of each thread of process `pid`, by "<tid> <name>".
std::map<std::string, long> ThreadSwitches(pid_t pid) {
  std::map<std::string, long> out;
  std::string tasks = fmt::format("/proc/{}/task", pid);
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream status(fmt::format("{}/{}/status", tasks, entry->d_name));
    std::string name;
    long total = 0;
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Name:", 0) == 0) name = line.substr(line.find_first_not_of(" \t", 5));
      if (line.find("ctxt_switches:") != std::string::npos)
        total += std::stol(line.substr(line.find(':') + 1));
    }
    out[fmt::format("{} {}", entry->d_name, name)] = total;
  }
  closedir(dir);
  return out;
}

class ClusterIdleTest : public ::testing::Test {
 protected:
  void SetUp() override { SHARDKIT_REQUIRE_COMPONENT(nats_.ok(), nats_.problem(), "nats-server"); }
  NatsServer nats_;
};

// A node with a NATS listener, a NATS client link (it routes to the other node) and the cluster
// agent, idle for 2 s. Before the sweeps and watches were timers and events, the link sweepers
// alone woke 100 times a second each (three links: over 600 wake-ups in 2 s).
TEST_F(ClusterIdleTest, AnIdleClusterNodeWithNatsLinksBarelyWakes) {
  std::string listener = fmt::format("[[listener]]\nurl = \"{}\"\n", nats_.url());
  ClusterNode a(nats_.url(), "idle-a", listener + EchoService("echo-a", "role:a"));
  ClusterNode b(nats_.url(), "idle-b", EchoService("echo-b", "role:b"));
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(a, "role:b"); }));
  auto reply = a.Act(R"({"role":"b"})");  // a's client link to the cluster is open now
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  std::this_thread::sleep_for(1s);  // start-up work settles

  auto before = ThreadSwitches(a.process->pid());
  std::this_thread::sleep_for(2s);
  auto after = ThreadSwitches(a.process->pid());
  long total = 0;
  std::string detail;
  for (const auto& [thread, count] : after) {
    long delta = count - (before.count(thread) != 0 ? before[thread] : 0);
    total += delta;
    if (delta > 0) detail += fmt::format("  {}: {}\n", thread, delta);
  }
  std::cout << "wake-ups of the idle node's threads in 2 s: " << total << "\n" << detail;
  // What remains: cnats' PINGs every 2 s per connection, the heartbeat every ttl_ms/3 (1 s) and
  // both nodes' heartbeats seen by the registry watch.
  EXPECT_LT(total, 120) << "wake-ups of the idle node's threads in 2 s:\n" << detail;
}

// A node frozen with SIGSTOP keeps its NATS connection's socket but sends no heartbeat: the other
// node drops its routes when its key is ttl_ms old, before the bucket's own TTL (2 x ttl_ms)
// deletes the key, and takes them back when it heartbeats again.
TEST_F(ClusterIdleTest, ANodeThatStopsHeartbeatingIsExpiredAndComesBack) {
  ClusterNode echo(nats_.url(), "frozen", EchoService("frozen"));
  ClusterNode router(nats_.url(), "router", "");
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "role:echo"); }));
  echo.process->Signal(SIGSTOP);
  auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return !RoutesToCluster(router, "role:echo"); }, 8s));
  auto dropped_after = std::chrono::steady_clock::now() - stopped_at;
  // Its last heartbeat was at most ttl_ms/3 = 1 s before the stop; the key itself lives 6 s.
  EXPECT_GE(dropped_after, 1800ms);
  EXPECT_LT(dropped_after, 4500ms);
  echo.process->Signal(SIGCONT);
  EXPECT_TRUE(Eventually([&] { return RoutesToCluster(router, "role:echo"); }, 4s));
}

// The shard-map authority, in a process of its own (`node_extra`: more [node] settings).
std::string AuthorityConfig(const std::string& node_extra) {
  return R"(
[node]
name = "authority"
)" + node_extra +
         R"([[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
)";
}

// A follower of the map at `authority`, with a refresh period of a minute.
std::string FollowerConfig(const std::string& authority) {
  return fmt::format(R"(
[node]
name = "follower"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
from = "{}"
refresh_ms = 60000
)",
                     authority);
}

// A shard-map follower keeps a long-poll open on its authority: a change made there is adopted at
// once, though refresh_ms (the old polling period) is a minute, and again for the next change.
TEST(ShardMapFollowerTest, AChangeOnTheAuthorityIsAdoptedAtOnceNotAtTheNextRefresh) {
  RegisterDataServices();
  TempDir dir;  // the authority in a process of its own: one process holds one map of a name
  ServeProcess authority(dir, dir.Write("authority.toml", AuthorityConfig("")));
  auto urls = authority.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  auto follower = StartNode(FollowerConfig(urls[0]));
  ASSERT_NE(follower, nullptr);
  IoRuntime runtime(1);
  auto to_authority = Client(runtime, urls[0]);
  auto to_follower = Client(runtime, follower->listener_urls().at(0));
  auto epoch = [&] {
    auto got = CallAndWait(*to_follower, Msg(R"({"shardmap":"get","map":"main"})"));
    return got.ok() ? got->GetUint("epoch").value_or(0) : 0;
  };
  std::this_thread::sleep_for(300ms);  // the follower's long-poll is open
  for (uint64_t next : {2u, 3u}) {
    auto set = CallAndWait(*to_authority, Msg(fmt::format(
                                              R"({{"shardmap":"set","map":"main",
                                                   "expected_epoch":{},"ranges":["-80","80-"]}})",
                                              next - 1)));
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    auto set_at = std::chrono::steady_clock::now();
    EXPECT_TRUE(Eventually([&] { return epoch() == next; }, 1s)) << "follower epoch " << epoch();
    EXPECT_LT(std::chrono::steady_clock::now() - set_at, 1s);
  }
  follower->Stop(std::chrono::milliseconds(500));
}

// A follower's open long-poll does not hold up its authority's stop: the stop answers it (and
// any asked meanwhile) at once instead of waiting out the stop grace (10 s here).
TEST(ShardMapFollowerTest, AnAuthorityStopsPromptlyWithAFollowersLongPollOpen) {
  RegisterDataServices();
  TempDir dir;
  ServeProcess authority(dir,
                         dir.Write("authority.toml", AuthorityConfig("stop_grace_ms = 10000\n")));
  auto urls = authority.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  auto follower = StartNode(FollowerConfig(urls[0]));
  ASSERT_NE(follower, nullptr);
  std::this_thread::sleep_for(300ms);  // the follower's long-poll is open
  auto stop_at = std::chrono::steady_clock::now();
  authority.Signal(SIGTERM);
  EXPECT_EQ(authority.WaitExit(8s), 0) << authority.log();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, 3s);
  follower->Stop(std::chrono::milliseconds(500));
}

// A long-poll's fields are checked: the reply names the field, and nothing waits.
TEST(ShardMapFollowerTest, ALongPollWithBadFieldsIsRefusedNamingTheField) {
  RegisterDataServices();
  auto node = StartNode(R"(
[node]
name = "authority"
[[listener]]
url = "inproc://map-long-poll"
[[service]]
name = "map"
type = "shard-map"
map = "long-poll"
)");
  ASSERT_NE(node, nullptr);
  IoRuntime runtime(1);
  auto client = Client(runtime, node->listener_urls().at(0));
  for (auto [request, field] : std::vector<std::pair<const char*, const char*>>{
           {R"({"shardmap":"get","map":"long-poll","wait_ms":100})", "after_epoch"},
           {R"({"shardmap":"get","map":"long-poll","after_epoch":1,"wait_ms":-1})", "wait_ms"},
           {R"({"shardmap":"get","map":"long-poll","after_epoch":1,"wait_ms":600000})", "wait_ms"},
           {R"({"shardmap":"get","map":"long-poll","after_epoch":"x","wait_ms":10})",
            "after_epoch"}}) {
    auto reply = CallAndWait(*client, Msg(request));
    ASSERT_FALSE(reply.ok()) << request;
    EXPECT_EQ(reply.status().code(), Code::kInvalid) << request;
    EXPECT_EQ(reply.status().details_json(), fmt::format(R"({{"field":"{}"}})", field)) << request;
  }
  // At its epoch already: answered at the end of the wait with the same map.
  auto start = std::chrono::steady_clock::now();
  auto same = CallAndWait(
      *client, Msg(R"({"shardmap":"get","map":"long-poll","after_epoch":1,"wait_ms":200})"));
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->GetUint("epoch"), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
  node->Stop(std::chrono::milliseconds(500));
}

}  // namespace
}  // namespace shardkit::services::testing
