// Decorators in a node (docs/architecture.md, "Composing a decorator"): a cache that decorates a
// store of the same node is installed over the store's routes and reaches it as Prior, with no
// cache:true trip through the bus; stacked over a shard guard it keeps the guard's refusals; bad
// `decorates` settings are refused naming the key, on start and on reload (the old config keeps
// serving); across processes the cache keeps its cache:true hop.
#include <gmock/gmock.h>

#include <atomic>

#include "serve_process.h"
#include "shardkit/services/data_services.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kCachedStore[] = R"(
[node]
name = "cached"
[[service]]
name = "entries"
type = "store"
backend = "memory"
[[service]]
name = "entry-cache"
type = "cache"
decorates = "entries"
)";

// Routed on `bus` for store:*,cache:true, more specific than every store route here: a cache that
// forwarded through the bus with cache:true would land on it.
std::shared_ptr<std::atomic<int>> CountCacheTrueTrips(Bus& bus) {
  auto trips = std::make_shared<std::atomic<int>>(0);
  EXPECT_TRUE(bus.Add("store:*,cache:true",
                      [trips](Message m, const Context&, ReplyFn reply) {
                        ++*trips;
                        reply(Status::Internal("a cache:true trip: " + m.RoutingString()));
                      })
                  .ok());
  return trips;
}

// `json` through `bus`; a failure names the message and the error.
Result<Message> Act(Bus& bus, std::string_view json) {
  auto result = bus.ActAndWait(Msg(json));
  EXPECT_TRUE(result.ok()) << json << ": " << result.status().ToString();
  return result;
}

Message Stats(Node& node) {
  auto stats = node.bus().ActAndWait(Msg(R"({"sys":"cache","cmd":"stats","name":"entry-cache"})"));
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  return stats.ok() ? *stats : Message();
}

TEST(Decorators, ACacheDecoratingAStoreOfItsNodeReachesItAsPriorWithNoBusTrip) {
  RegisterDataServices();
  auto node = StartNode(kCachedStore);
  ASSERT_TRUE(node);
  auto trips = CountCacheTrueTrips(node->bus());
  Bus& bus = node->bus();
  ASSERT_TRUE(Act(bus, R"({"store":"save","kind":"entry","ent":{"id":"a","v":1}})").ok());
  for (int i = 0; i < 3; ++i) {
    auto loaded = bus.ActAndWait(Msg(R"({"store":"load","kind":"entry","id":"a"})"));
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_THAT(std::string(*loaded->GetObjectJson("ent")), HasSubstr(R"("v":1)"));
  }
  // A write through the cache invalidates: the next load sees it.
  ASSERT_TRUE(Act(bus, R"({"store":"save","kind":"entry","ent":{"id":"a","v":2}})").ok());
  auto reloaded = bus.ActAndWait(Msg(R"({"store":"load","kind":"entry","id":"a"})"));
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_THAT(std::string(*reloaded->GetObjectJson("ent")), HasSubstr(R"("v":2)"));
  Message stats = Stats(*node);
  EXPECT_EQ(stats.GetUint("misses"), 2u);
  EXPECT_EQ(stats.GetUint("hits"), 2u);
  EXPECT_EQ(trips->load(), 0) << "the cache went through the bus with cache:true";
  // The routing table says who answers: the cache, over the store.
  auto route = bus.routes()->Find(Msg(R"({"store":"load","kind":"entry","id":"a"})"));
  ASSERT_TRUE(route && route->prior);
  EXPECT_EQ(route->description, "service entry-cache over entries");
  EXPECT_EQ(route->prior->description, "service entries (store)");
}

std::string StackedShards() {
  return R"(
[node]
name = "stacked"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
[[service]]
name = "router"
type = "shard-router"
[[service]]
name = "left"
type = "store"
backend = "memory"
shard = "-80"
[[service]]
name = "right"
type = "store"
backend = "memory"
shard = "80-"
[[service]]
name = "entry-cache"
type = "cache"
decorates = "left"
)";
}

TEST(Decorators, ACacheOverAShardGuardOverAStoreInOneNode) {
  RegisterDataServices();
  auto node = StartNode(StackedShards());
  ASSERT_TRUE(node);
  Bus& bus = node->bus();
  auto trips = CountCacheTrueTrips(bus);
  // Ids on each side of the split (Ksid: docs/sharding.md): found by asking the router.
  std::string left_id, right_id;
  for (int i = 0; i < 64 && (left_id.empty() || right_id.empty()); ++i) {
    std::string id = fmt::format("k{}", i);
    auto saved = bus.ActAndWait(
        Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","n":{}}}}})", id, i)));
    ASSERT_TRUE(saved.ok()) << saved.status().ToString();
    auto direct = bus.ActAndWait(
        Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}","shard":"-80"}})", id)));
    (direct.ok() ? left_id : right_id) = id;
  }
  ASSERT_FALSE(left_id.empty());
  ASSERT_FALSE(right_id.empty());
  Message before = Stats(*node);
  // Through the router: the left shard's loads hit the cache after the first.
  for (int i = 0; i < 3; ++i) {
    auto loaded =
        bus.ActAndWait(Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", left_id)));
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  }
  Message after = Stats(*node);
  EXPECT_EQ(*after.GetUint("hits") - *before.GetUint("hits"), 3u);  // cached by the probe above
  // The guard under the cache still refuses: a key of the other range, a stale epoch on a write.
  auto wrong = bus.ActAndWait(
      Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}","shard":"-80"}})", right_id)));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kWrongShard) << wrong.status().ToString();
  auto stale = bus.ActAndWait(Msg(fmt::format(
      R"({{"store":"save","kind":"entry","ent":{{"id":"{}"}},"shard":"-80","epoch":0}})",
      left_id)));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), Code::kWrongShard) << stale.status().ToString();
  EXPECT_EQ(trips->load(), 0);
  auto route = bus.routes()->Find(Msg(R"({"store":"load","kind":"entry","id":"x","shard":"-80"})"));
  ASSERT_TRUE(route && route->prior && route->prior->prior);
  EXPECT_EQ(route->description, "service left (store)");                  // the guard
  EXPECT_EQ(route->prior->description, "service entry-cache over left");  // the cache
  EXPECT_EQ(route->prior->prior->prior, nullptr);                         // the store
  // Once the map no longer names -80, the guard refuses a load the cache holds an entry for: a
  // router with the old map must hear wrong_shard, not the old owner's cached value.
  auto set = bus.ActAndWait(
      Msg(R"({"shardmap":"set","map":"main","expected_epoch":1,"ranges":["-40","40-80","80-"]})"));
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  auto moved = bus.ActAndWait(
      Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}","shard":"-80"}})", left_id)));
  ASSERT_FALSE(moved.ok()) << "a cached entry was served for a range the shard no longer owns";
  EXPECT_EQ(moved.status().code(), Code::kWrongShard) << moved.status().ToString();
}

std::string Refused(const std::string& toml) {
  auto config = ParseNodeConfig(toml, "bad.toml");
  if (!config.ok()) return config.status().message();
  auto node = Node::Start(std::move(config).value());
  return node.ok() ? std::string("started") : node.status().message();
}

std::string WithDecorates(const std::string& value) {
  std::string toml = StackedShards();
  toml.replace(toml.find(R"(decorates = "left")"), 18, "decorates = " + value);
  return toml;
}

TEST(Decorators, BadDecoratesIsRefusedNamingTheKey) {
  RegisterDataServices();
  EXPECT_THAT(Refused(WithDecorates(R"("nowhere")")),
              HasSubstr("service 'entry-cache' (cache): key 'decorates': no service 'nowhere' in "
                        "this node"));
  EXPECT_THAT(Refused(WithDecorates(R"("router")")),
              HasSubstr("key 'decorates': service 'router' is a shard-router, which a cache cannot "
                        "decorate (it decorates: store)"));
  EXPECT_THAT(Refused(WithDecorates(R"("entry-cache")")),
              HasSubstr("key 'decorates': no other service 'entry-cache'"));
  EXPECT_THAT(Refused(WithDecorates(R"("")")), HasSubstr("key 'decorates': must name a store"));
  EXPECT_THAT(Refused(WithDecorates("7")), HasSubstr("decorates"));
  std::string twice = StackedShards() + R"(
[[service]]
name = "second-cache"
type = "cache"
decorates = "left"
)";
  EXPECT_THAT(Refused(twice), HasSubstr("service 'left' is already decorated by 'entry-cache'"));
}

TEST(Decorators, AReloadWithABadDecoratesKeepsTheOldConfigServing) {
  RegisterDataServices();
  auto node = StartNode(kCachedStore);
  ASSERT_TRUE(node);
  Bus& bus = node->bus();
  ASSERT_TRUE(Act(bus, R"({"store":"save","kind":"entry","ent":{"id":"a"}})").ok());
  ASSERT_TRUE(Act(bus, R"({"store":"load","kind":"entry","id":"a"})").ok());
  std::string bad = kCachedStore;
  bad.replace(bad.find(R"(decorates = "entries")"), 21, R"(decorates = "nowhere")");
  auto config = ParseNodeConfig(bad, "bad.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Status reloaded = node->Reload(std::move(config).value());
  EXPECT_THAT(reloaded.message(), HasSubstr("key 'decorates': no service 'nowhere'"));
  // Still the old table: the cache over the store, warm.
  uint64_t hits = *Stats(*node).GetUint("hits");
  auto loaded = bus.ActAndWait(Msg(R"({"store":"load","kind":"entry","id":"a"})"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*Stats(*node).GetUint("hits"), hits + 1);
}

// Across processes the store is elsewhere: the cache forwards with cache:true, which the other
// node's store serves.
TEST(Decorators, ACacheOnAnotherProcessKeepsTheCacheTrueHop) {
  RegisterDataServices();
  TempDir store_dir, cache_dir;
  ServeProcess store(store_dir, store_dir.Write("store.toml", R"(
[node]
name = "store"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "entries"
type = "store"
backend = "memory"
patterns = ["store:*,kind:entry,cache:true"]
)"));
  auto store_urls = store.WaitReady();
  ASSERT_EQ(store_urls.size(), 1u);
  ServeProcess cache(cache_dir, cache_dir.Write("cache.toml", fmt::format(R"(
[node]
name = "cache"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "entry-cache"
type = "cache"
patterns = ["store:*,kind:entry", 'sys:cache,cmd:stats']
[[route]]
pattern = "store:*,kind:entry,cache:true"
to = "{}"
)",
                                                                          store_urls[0])));
  auto cache_urls = cache.WaitReady();
  ASSERT_EQ(cache_urls.size(), 1u);
  IoRuntime runtime(1);
  auto via_cache = Client(runtime, cache_urls[0]);
  auto to_store = Client(runtime, store_urls[0]);
  ASSERT_TRUE(
      CallAndWait(*via_cache, Msg(R"({"store":"save","kind":"entry","ent":{"id":"a","v":1}})"))
          .ok());
  // The store process serves only cache:true: what it holds came through the cache's hop.
  auto direct =
      CallAndWait(*to_store, Msg(R"({"store":"load","kind":"entry","id":"a","cache":true})"));
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  EXPECT_FALSE(CallAndWait(*to_store, Msg(R"({"store":"load","kind":"entry","id":"a"})")).ok());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(CallAndWait(*via_cache, Msg(R"({"store":"load","kind":"entry","id":"a"})")).ok());
  auto stats = CallAndWait(*via_cache, Msg(R"({"sys":"cache","cmd":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->GetUint("misses"), 1u);
  EXPECT_EQ(stats->GetUint("hits"), 2u);
}

}  // namespace
}  // namespace shardkit::services::testing
