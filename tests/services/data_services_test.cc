// Data services in real nodes: a sharded RocksDB store served by `shardkit serve`, surviving
// kill -9 with every acknowledged write; a cache added by config reload under traffic with no
// failed request; bad data-service config refused naming the key.
#include <gmock/gmock.h>

#include <atomic>
#include <thread>

#include "serve_process.h"
#include "shardkit/services/data_services.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

std::string ShardedNode(const TempDir& dir) {
  std::string toml = R"(
[node]
name = "sharded"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-40", "40-80", "80-c0", "c0-"]
shard_keys = { timeline = "user" }
[[service]]
name = "router"
type = "shard-router"
)";
  for (const char* range : {"-40", "40-80", "80-c0", "c0-"}) {
    toml += fmt::format(R"(
[[service]]
name = "shard{0}"
type = "store"
backend = "rocksdb"
durability = "sync"
path = "{1}/shard{0}"
shard = "{0}"
)",
                        range, dir.path());
  }
  return toml;
}

TEST(DataServices, AShardedStoreNodeKeepsEveryAcknowledgedWriteAcrossKillNine) {
  TempDir dir;
  std::string config = dir.Write("node.toml", ShardedNode(dir));
  std::vector<std::string> acknowledged;
  {
    ServeProcess serve(dir, config);
    auto urls = serve.WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    IoRuntime runtime(1);
    auto client = Client(runtime, urls[0]);
    for (int i = 0; i < 200; ++i) {
      auto r = CallAndWait(*client, Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"k{}","n":{}}}}})", i, i)));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      acknowledged.push_back(fmt::format("k{}", i));
    }
    auto listed = CallAndWait(*client, Msg(R"({"store":"list","kind":"entry","q":{"sort$":{"n":-1},"limit$":3}})"));
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    EXPECT_THAT(std::string(*listed->GetArrayJson("items")), HasSubstr("\"n\":199"));
    serve.Signal(SIGKILL);  // no goodbye: whatever was acknowledged must be on disk
    EXPECT_NE(serve.WaitExit(std::chrono::seconds(10)), 0);
  }
  ServeProcess again(dir, config);
  auto urls = again.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  for (const auto& id : acknowledged) {
    auto r = CallAndWait(*client, Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id)));
    EXPECT_TRUE(r.ok()) << id << ": " << r.status().ToString();
  }
  ShellRun act = Shell(dir, Cli("act store:load,kind:entry,id:k7 --to " + urls[0]));
  EXPECT_EQ(act.exit_code, 0) << act.err;
  EXPECT_THAT(act.out, HasSubstr("\"id\":\"k7\""));
}

constexpr char kStoreOnly[] = R"(
[node]
name = "entries"
[[listener]]
url = "inproc://cache-transition"
[[service]]
name = "entry-store"
type = "store"
backend = "memory"
patterns = [%s]
)";

std::string Step(const std::string& store_patterns, bool with_cache) {
  std::string toml = kStoreOnly;
  toml.replace(toml.find("%s"), 2, store_patterns);
  if (with_cache) {
    toml += R"(
[[service]]
name = "entry-cache"
type = "cache"
patterns = ["store:*,kind:entry", "sys:cache,cmd:stats"]
)";
  }
  return toml;
}

TEST(DataServices, ACacheAddedByConfigReloadUnderTrafficFailsNoRequest) {
  RegisterDataServices();
  auto node = StartNode(Step(R"("store:*,kind:entry")", false));
  ASSERT_TRUE(node);
  ASSERT_TRUE(node->bus().ActAndWait(Msg(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"x"}})")).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, requests{0};
  std::thread client([&] {
    for (int i = 0; !stop && i < 2'000'000; ++i) {
      auto r = node->bus().ActAndWait(Msg(i % 5 == 0 ? R"({"store":"save","kind":"entry","ent":{"id":"a","text":"x"}})"
                                                      : R"({"store":"load","kind":"entry","id":"a"})"),
                                      std::chrono::seconds(10));
      ++requests;
      if (!r.ok()) ++failures;
    }
  });
  auto settle = [&] {
    int target = requests + 300;
    for (int i = 0; requests < target && i < 10'000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  auto reload = [&](const std::string& toml) {
    auto config = ParseNodeConfig(toml, "step.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    ASSERT_TRUE(node->Reload(std::move(config).value()).ok());
  };
  settle();
  reload(Step(R"("store:*,kind:entry", "store:*,kind:entry,cache:true")", false));  // 1. both patterns
  settle();
  reload(Step(R"("store:*,kind:entry,cache:true")", true));  // 2. the cache takes store:*,kind:entry
  settle();
  stop = true;
  client.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(requests, 900);
  auto stats = node->bus().ActAndWait(Msg(R"({"sys":"cache","cmd":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_GT(*stats->GetUint("hits"), 0u);
}

TEST(DataServices, BadDataServiceConfigIsRefusedNamingTheKey) {
  RegisterDataServices();
  auto refused = [](const std::string& toml) {
    auto config = ParseNodeConfig(toml, "bad.toml");
    if (!config.ok()) return config.status().message();
    auto node = Node::Start(std::move(config).value());
    return node.ok() ? std::string("started") : node.status().message();
  };
  EXPECT_THAT(refused(R"(
[node]
name = "n"
[[service]]
name = "s"
type = "store"
backend = "mongo"
)"),
              HasSubstr("backend"));
  EXPECT_THAT(refused(R"(
[node]
name = "n"
[[service]]
name = "s"
type = "store"
backend = "rocksdb"
)"),
              HasSubstr("path"));
  EXPECT_THAT(refused(R"(
[node]
name = "n"
[[service]]
name = "s"
type = "store"
backend = "memory"
shard = "40-80"
map = "nowhere"
)"),
              HasSubstr("no shard map 'nowhere'"));
  EXPECT_THAT(refused(R"(
[node]
name = "n"
[[service]]
name = "m"
type = "shard-map"
map = "bad"
ranges = ["-40", "50-"]
)"),
              HasSubstr("gap between '-40' and '50-'"));
}

}  // namespace
}  // namespace shardkit::services::testing

namespace shardkit::services::testing {
namespace {

TEST(Demo, TheQuickDemoFinishesWithZeroErrorsACacheHitRatioAndACompletedSplit) {
  TempDir dir;
  ShellRun demo = Shell(dir, Cli("demo --quick"));
  EXPECT_EQ(demo.exit_code, 0) << demo.out << demo.err;
  EXPECT_THAT(demo.out, HasSubstr("errors: 0\n"));
  EXPECT_THAT(demo.out, HasSubstr("split completed"));
  EXPECT_THAT(demo.out, ::testing::ContainsRegex("cache hit ratio [1-9][0-9]*\\.[0-9]%"));
}

}  // namespace
}  // namespace shardkit::services::testing
