// Cluster::FromToml: nodes built from the TOML `shardkit serve --config` reads, by the real service
// factories, linked in process; faults on the links, the injected clock, restarts, bad configs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <unistd.h>

#include <filesystem>

#include <shardkit/store/keyspace.h>
#include <shardkit/testing/testing.h>

#include "test_util.h"

namespace shardkit::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

// node0 serves shard -80 and listens on tcp://127.0.0.1:7001; node1 serves 80- on :7002. Both
// have the map, a router and an entry cache; each routes the other's shard to the other's URL.
std::string NodeToml(int self, const std::string& extra = "") {
  int other = 1 - self;
  const char* mine = self == 0 ? "-80" : "80-";
  const char* theirs = self == 0 ? "80-" : "-80";
  return fmt::format(R"(
[node]
name = "node{0}"
[[listener]]
url = "tcp://127.0.0.1:700{1}"

[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]

[[service]]
name = "shard"
type = "store"
backend = "memory"
shard = "{2}"

[[service]]
name = "router"
type = "shard-router"
node_id = {1}
patterns = ["store:*,kind:entry,cache:true", "store:*,kind:note"]

[[service]]
name = "entry-cache"
type = "cache"
ttl_ms = 1000
patterns = ["store:*,kind:entry"]

[[route]]
pattern = 'store:*,kind:*,shard:"{3}"'
to = "tcp://127.0.0.1:700{4}"
timeout_ms = 250
{5}
)",
                     self, self + 1, mine, theirs, other + 1, extra);
}

std::unique_ptr<Cluster> TwoNodes() { return Cluster::FromToml({NodeToml(0), NodeToml(1)}); }

// An id whose ksid falls in `range` ("-80" or "80-").
std::string IdIn(Cluster& cluster, const std::string& range) {
  auto map = cluster.node(0).shard_map();
  for (int i = 0;; ++i) {
    std::string id = fmt::format("e{}", i);
    if (map->Current()->ShardFor(store::Ksid(id)).name == range) return id;
  }
}

TEST(TomlCluster, EachNodeServesItsShardAndReachesTheOtherOverALink) {
  auto cluster = TwoNodes();
  ASSERT_NE(cluster, nullptr);
  std::string far = IdIn(*cluster, "80-");
  auto& link = cluster->faults().On("node0->node1").Delay(0);  // counts crossings
  EXPECT_THAT(
      cluster->Act(
          0, Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","text":"hi"}}}})",
                             far))),
      IsOkReply());
  EXPECT_EQ(link.hits(), 1) << "the save crossed node0->node1";
  EXPECT_NE(cluster->node(1).shard_store("80-"), nullptr);
  EXPECT_EQ(cluster->node(0).shard_store("80-"), nullptr) << "node0 does not serve 80-";
  auto stored = cluster->node(1).shard_store("80-")->Load("entry", far);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_THAT(
      cluster->Act(1, Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", far))),
      IsOkReply(HasField("ent.text", "hi")));
}

TEST(TomlCluster, ADroppedLinkAnswersTimeoutAtTheRoutesTimeoutOnTheInjectedClock) {
  auto cluster = TwoNodes();
  ASSERT_NE(cluster, nullptr);
  std::string far = IdIn(*cluster, "80-");
  cluster->faults().On("node0->node1").Drop();
  int64_t start = cluster->clock().NowMs();
  EXPECT_THAT(
      cluster->Act(0, Msg(fmt::format(R"({{"store":"load","kind":"note","id":"{}"}})", far))),
      IsErrorReply(Code::kTimeout));
  EXPECT_EQ(cluster->clock().NowMs() - start, 250) << "the route's timeout_ms, simulated";
}

TEST(TomlCluster, TheCacheUsesTheInjectedClockForItsTtl) {
  auto cluster = TwoNodes();
  ASSERT_NE(cluster, nullptr);
  std::string far = IdIn(*cluster, "80-");
  std::string load = fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", far);
  ASSERT_THAT(
      cluster->Act(1, Msg(fmt::format(
                          R"({{"store":"save","kind":"entry","ent":{{"id":"{}","n":1}}}})", far))),
      IsOkReply());
  auto& link = cluster->faults().On("node0->node1", "store:load").Delay(0);
  EXPECT_THAT(cluster->Act(0, Msg(load)), IsOkReply(HasField("ent.n", 1)));
  EXPECT_THAT(cluster->Act(0, Msg(load)), IsOkReply(HasField("ent.n", 1)));
  EXPECT_EQ(link.hits(), 1) << "the second load is a cache hit";
  cluster->clock().Advance(1001);  // past ttl_ms
  EXPECT_THAT(cluster->Act(0, Msg(load)), IsOkReply(HasField("ent.n", 1)));
  EXPECT_EQ(link.hits(), 2) << "the entry expired on the manual clock";
}

TEST(TomlCluster, NodesHaveTheirOwnShardMapsAsSeparateProcessesDo) {
  auto cluster = TwoNodes();
  ASSERT_NE(cluster, nullptr);
  auto map0 = cluster->node(0).shard_map();
  auto map1 = cluster->node(1).shard_map();
  ASSERT_NE(map0, nullptr);
  ASSERT_NE(map1, nullptr);
  EXPECT_NE(map0, map1);
  auto next = shard::ShardMap::Make(2, {"-80", "80-"}, {});
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(map0->CompareAndSwap(1, *next).ok());
  EXPECT_EQ(map1->Current()->epoch(), 1u);
  // A second cluster in the same process starts from its own TOML, not the first one's maps.
  auto again = TwoNodes();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->node(0).shard_map()->Current()->epoch(), 1u);
}

TEST(TomlCluster, RestartRebuildsTheServicesAndMessagesMeanwhileAreUnavailable) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("toml-cluster-{}", ::getpid());
  std::filesystem::remove_all(dir);
  // node1's shard on RocksDB survives the restart; the memory store of node0 would not.
  std::string rocks = fmt::format(R"(
[[service]]
name = "notes"
type = "store"
backend = "rocksdb"
path = "{}"
patterns = ["store:*,kind:diary"]
)",
                                  (dir / "diary").string());
  auto cluster = Cluster::FromToml({NodeToml(0), NodeToml(1, rocks)});
  ASSERT_NE(cluster, nullptr);
  ASSERT_THAT(cluster->Act(1, R"({"store":"save","kind":"diary","ent":{"id":"d1","t":"x"}})"),
              IsOkReply());
  ASSERT_TRUE(cluster->Restart(1).ok());
  EXPECT_THAT(cluster->Act(1, R"({"store":"load","kind":"diary","id":"d1"})"),
              IsOkReply(HasField("ent.t", "x")));
  cluster.reset();
  std::filesystem::remove_all(dir);
}

TEST(TomlCluster, ARouteToAnUnknownUrlFailsTheTestNamingItAndTheKnownListeners) {
  std::string bad = NodeToml(0) + R"(
[[route]]
pattern = "store:*,kind:elsewhere"
to = "tcp://127.0.0.1:9999"
)";
  auto failures = FailuresOf([&] { EXPECT_EQ(Cluster::FromToml({bad, NodeToml(1)}), nullptr); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("route[1].to: tcp://127.0.0.1:9999: no node of the cluster"));
  EXPECT_THAT(failures[0], HasSubstr("tcp://127.0.0.1:7001, tcp://127.0.0.1:7002"));
}

TEST(TomlCluster, ABadServiceSettingFailsTheTestNamingNodeServiceAndKey) {
  std::string bad = NodeToml(0) + R"(
[[service]]
name = "typo"
type = "cache"
max_bytez = 10
)";
  auto failures = FailuresOf([&] { EXPECT_EQ(Cluster::FromToml({bad}), nullptr); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("node TOML #0"));
  EXPECT_THAT(failures[0], HasSubstr("max_bytez"));
}

TEST(TomlCluster, TwoNodesWithOneNameAreRefused) {
  auto failures = FailuresOf([&] {
    EXPECT_EQ(Cluster::FromToml({NodeToml(0), NodeToml(0)}), nullptr);
  });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("'node0' is also the name of node TOML #0"));
}

}  // namespace
}  // namespace shardkit::testing
