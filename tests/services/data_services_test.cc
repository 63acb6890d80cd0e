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
      auto r = CallAndWait(
          *client, Msg(fmt::format(
                       R"({{"store":"save","kind":"entry","ent":{{"id":"k{}","n":{}}}}})", i, i)));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      acknowledged.push_back(fmt::format("k{}", i));
    }
    auto listed = CallAndWait(
        *client, Msg(R"({"store":"list","kind":"entry","q":{"sort$":{"n":-1},"limit$":3}})"));
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
    auto r = CallAndWait(*client,
                         Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id)));
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
  ASSERT_TRUE(node->bus()
                  .ActAndWait(Msg(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"x"}})"))
                  .ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, requests{0};
  std::thread client([&] {
    for (int i = 0; !stop && i < 2'000'000; ++i) {
      auto r = node->bus().ActAndWait(
          Msg(i % 5 == 0 ? R"({"store":"save","kind":"entry","ent":{"id":"a","text":"x"}})"
                         : R"({"store":"load","kind":"entry","id":"a"})"),
          std::chrono::seconds(10));
      ++requests;
      if (!r.ok()) ++failures;
    }
  });
  auto settle = [&] {
    int target = requests + 300;
    for (int i = 0; requests < target && i < 10'000; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  auto reload = [&](const std::string& toml) {
    auto config = ParseNodeConfig(toml, "step.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    ASSERT_TRUE(node->Reload(std::move(config).value()).ok());
  };
  settle();
  reload(
      Step(R"("store:*,kind:entry", "store:*,kind:entry,cache:true")", false));  // 1. both patterns
  settle();
  reload(
      Step(R"("store:*,kind:entry,cache:true")", true));  // 2. the cache takes store:*,kind:entry
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

std::string SplitNode(const TempDir& dir) {
  std::string toml = fmt::format(R"(
[node]
name = "split"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
path = "{0}/shardmap.json"
[[service]]
name = "router"
type = "shard-router"
[[service]]
name = "migrator"
type = "migrator"
dir = "{0}/migrations"
)",
                                 dir.path());
  for (const char* range : {"-80", "80-", "-40", "40-80"}) {
    toml += fmt::format(R"(
[[service]]
name = "store{0}"
type = "store"
path = "{1}/store{0}"
shard = "{0}"
)",
                        range, dir.path());
  }
  return toml;
}

// The migrator publishes its progress as info:migrate messages on the node's bus (the batch
// progress reporter): a service observing them sees every phase, with the copy's figures.
TEST(LiveSplit, TheMigratorPublishesEveryPhaseAsAnInfoMigrateMessage) {
  RegisterDataServices();
  TempDir dir;
  auto node = StartNode(SplitNode(dir));
  ASSERT_NE(node, nullptr);
  std::mutex mu;
  std::vector<Message> events;
  ASSERT_TRUE(node->bus()
                  .Observe("info:migrate",
                           MakeSyncHandler([&](Message m, const Context&) -> Result<Message> {
                             std::lock_guard<std::mutex> lock(mu);
                             events.push_back(std::move(m));
                             return Message();
                           }))
                  .ok());
  auto act = [&](std::string_view json) {
    return node->bus().ActAndWait(Msg(json), std::chrono::seconds(30));
  };
  for (int i = 0; i < 600; ++i) {
    ASSERT_TRUE(
        act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"e{}","v":"x"}}}})", i))
            .ok());
  }
  ASSERT_TRUE(
      act(R"({"migrate":"start","id":"p1","sources":["-80"],"targets":["-40","40-80"]})").ok());
  for (int i = 0; i < 500; ++i) {
    auto status = act(R"({"migrate":"status","id":"p1"})");
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    if (status->GetBool("copying") == std::optional<bool>(false)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(act(R"({"migrate":"cutover","id":"p1"})").ok());
  ASSERT_TRUE(act(R"({"migrate":"complete","id":"p1"})").ok());
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> phases;
  for (const auto& e : events) {
    EXPECT_EQ(e.GetString("id"), std::optional<std::string_view>("p1"));
    phases.emplace_back(e.GetString("phase").value_or("?"));
    if (phases.back() == "copied") {
      EXPECT_GT(e.GetUint("rows_copied").value_or(0), 0u);
      EXPECT_EQ(e.GetUint("rows_copied"), e.GetUint("rows_to_copy"));
    }
  }
  EXPECT_THAT(phases,
              ::testing::ElementsAre("created", "copied", "cutover", "cutover_done", "completed"));
}

// The CLI splits a shard of a real node while a client writes; nothing acknowledged is lost, no
// request fails, and after kill -9 the node comes back with the split map and every write.
TEST(LiveSplit, TheCliSplitsAServedShardUnderWritesAndTheSplitSurvivesKillNine) {
  TempDir dir;
  std::string config = dir.Write("node.toml", SplitNode(dir));
  std::map<std::string, std::string> acknowledged;
  std::atomic<int> failures{0};
  {
    ServeProcess serve(dir, config);
    auto urls = serve.WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    IoRuntime runtime(1);
    auto client = Client(runtime, urls[0]);
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(
          CallAndWait(*client,
                      Msg(fmt::format(
                          R"({{"store":"save","kind":"entry","ent":{{"id":"p{}","v":"0"}}}})", i)))
              .ok());
      acknowledged[fmt::format("p{}", i)] = "0";
    }
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::thread writer([&] {
      for (int i = 0; !stop && i < 100'000; ++i) {
        std::string id = fmt::format("p{}", i % 500), v = std::to_string(i + 1);
        auto r = CallAndWait(
            *client,
            Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})", id,
                            v)));
        std::lock_guard<std::mutex> lock(mu);
        if (r.ok()) {
          acknowledged[id] = v;
        } else {
          ++failures;
        }
      }
    });
    ShellRun split =
        Shell(dir, Cli("migrate split --to " + urls[0] +
                       " --id s1 --source -80 --targets -40,40-80 --cutover --complete"));
    stop = true;
    writer.join();
    EXPECT_EQ(split.exit_code, 0) << split.out << split.err;
    EXPECT_THAT(split.out, HasSubstr("cutover: epoch 2"));
    EXPECT_THAT(split.out, HasSubstr("completed"));
    EXPECT_EQ(failures, 0);
    ShellRun status = Shell(dir, Cli("migrate status --to " + urls[0] + " --id s1"));
    EXPECT_THAT(status.out, HasSubstr("\"phase\":\"completed\""));
    serve.Signal(SIGKILL);
    serve.WaitExit(std::chrono::seconds(10));
  }
  ServeProcess again(dir, config);
  auto urls = again.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  auto map = CallAndWait(*client, Msg(R"({"shardmap":"get","map":"main"})"));
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->GetUint("epoch"), 2u);
  EXPECT_EQ(*map->GetArrayJson("ranges"), R"(["-40","40-80","80-"])");
  for (const auto& [id, v] : acknowledged) {
    auto r = CallAndWait(*client,
                         Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id)));
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    EXPECT_THAT(std::string(*r->GetObjectJson("ent")), HasSubstr(fmt::format("\"v\":\"{}\"", v)))
        << id;
  }
}

}  // namespace
}  // namespace shardkit::services::testing
