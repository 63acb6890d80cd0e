// A cache in one `shardkit serve` process in front of a store in another, following the store's
// change feed (`feed_kinds`): a write made directly on the store's node, behind the cache's back,
// drops the cached entry at once, and keeps doing so after either process is killed and restarted.
#include <gmock/gmock.h>

#include <chrono>
#include <thread>

#include "nats_server.h"
#include "serve_process.h"
#include "shardkit/message/codec.h"
#include "shardkit/services/data_services.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

std::string StoreConfig(const TempDir& dir, uint16_t port) {
  return fmt::format(R"(
[node]
name = "store"
[[listener]]
url = "tcp://127.0.0.1:{}"
[[service]]
name = "entries"
type = "store"
path = "{}/data"
patterns = ["store:*,kind:entry", "store:*,kind:entry,cache:true"]
)",
                     port, dir.path());
}

std::string CacheConfig(uint16_t store_port, bool follow) {
  return fmt::format(R"(
[node]
name = "front"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "entry-cache"
type = "cache"
patterns = ["store:*,kind:entry", "sys:cache,cmd:stats"]
{}
[[route]]
pattern = "store:*,kind:entry,cache:true"
to = "tcp://127.0.0.1:{}"
)",
                     follow ? "feed_kinds = [\"entry\"]" : "", store_port);
}

std::string Text(const Result<Message>& r) {
  if (!r.ok()) return r.status().ToString();
  return std::string(r->GetObjectJson("ent").value_or(""));
}

// Saves `text` as entry a directly on the store's node, then loads a through the cache until it
// shows it: the time that took (the cache's staleness), or 10 s when it never did.
std::chrono::milliseconds StaleFor(Handler& store, Handler& cache, const std::string& text) {
  auto saved = CallAndWait(
      store,
      Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"a","t":"{}"}}}})", text)));
  EXPECT_TRUE(saved.ok()) << saved.status().ToString();
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Text(CallAndWait(cache, Msg(R"({"store":"load","kind":"entry","id":"a"})"))).find(text) !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

// Loads a through the cache until it is a hit (the entry is cached).
void Cache(Handler& cache) {
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(CallAndWait(cache, Msg(R"({"store":"load","kind":"entry","id":"a"})")).ok());
}

TEST(CacheFeed, AWriteBehindTheCachesBackIsSeenAtOnceAcrossRestartsOfEitherNode) {
  RegisterDataServices();
  TempDir store_dir, cache_dir;
  const uint16_t store_port = FreePort();
  auto store = std::make_unique<ServeProcess>(
      store_dir, store_dir.Write("store.toml", StoreConfig(store_dir, store_port)));
  ASSERT_EQ(store->WaitReady().size(), 1u);
  const std::string cache_toml = cache_dir.Write("cache.toml", CacheConfig(store_port, true));
  auto front = std::make_unique<ServeProcess>(cache_dir, cache_toml);
  auto front_urls = front->WaitReady();
  ASSERT_EQ(front_urls.size(), 1u);
  IoRuntime runtime(1);
  auto to_store = Client(runtime, fmt::format("tcp://127.0.0.1:{}", store_port));
  auto via_cache = Client(runtime, front_urls[0]);
  ASSERT_TRUE(
      CallAndWait(*via_cache, Msg(R"({"store":"save","kind":"entry","ent":{"id":"a","t":"v0"}})"))
          .ok());
  for (int round = 1; round <= 6; ++round) {
    Cache(*via_cache);
    const auto stale = StaleFor(*to_store, *via_cache, fmt::format("v{}", round));
    std::printf("round %d: stale for %lld ms\n", round, static_cast<long long>(stale.count()));
    EXPECT_LT(stale, std::chrono::milliseconds(1000)) << "round " << round;
    if (round == 2 || round == 4) {  // kill -9 the store's node and start it on the same data
      store.reset();
      store = std::make_unique<ServeProcess>(
          store_dir, store_dir.Write("store.toml", StoreConfig(store_dir, store_port)));
      ASSERT_EQ(store->WaitReady().size(), 1u);
      to_store = Client(runtime, fmt::format("tcp://127.0.0.1:{}", store_port));
    }
    if (round == 3) {  // kill -9 the cache's node and start it again
      front.reset();
      front = std::make_unique<ServeProcess>(cache_dir, cache_toml);
      front_urls = front->WaitReady();
      ASSERT_EQ(front_urls.size(), 1u);
      via_cache = Client(runtime, front_urls[0]);
    }
  }
  auto stats = CallAndWait(*via_cache, Msg(R"({"sys":"cache","cmd":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_GT(stats->GetUint("hits").value_or(0), 0u);  // it did cache
  EXPECT_GT(stats->GetUint("invalidations").value_or(0), 0u);
}

// Without feed_kinds the same write is served stale until the entry's ttl_ms: what the feed fixes.
TEST(CacheFeed, WithoutFollowingTheFeedAWriteBehindItsBackIsServedStale) {
  RegisterDataServices();
  TempDir store_dir, cache_dir;
  const uint16_t store_port = FreePort();
  ServeProcess store(store_dir, store_dir.Write("store.toml", StoreConfig(store_dir, store_port)));
  ASSERT_EQ(store.WaitReady().size(), 1u);
  ServeProcess front(cache_dir, cache_dir.Write("cache.toml", CacheConfig(store_port, false)));
  auto front_urls = front.WaitReady();
  ASSERT_EQ(front_urls.size(), 1u);
  IoRuntime runtime(1);
  auto to_store = Client(runtime, fmt::format("tcp://127.0.0.1:{}", store_port));
  auto via_cache = Client(runtime, front_urls[0]);
  ASSERT_TRUE(
      CallAndWait(*via_cache, Msg(R"({"store":"save","kind":"entry","ent":{"id":"a","t":"v0"}})"))
          .ok());
  Cache(*via_cache);
  ASSERT_TRUE(
      CallAndWait(*to_store, Msg(R"({"store":"save","kind":"entry","ent":{"id":"a","t":"v1"}})"))
          .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_THAT(Text(CallAndWait(*via_cache, Msg(R"({"store":"load","kind":"entry","id":"a"})"))),
              ::testing::HasSubstr("v0"));
}

// sys:stats (`shardkit stats`) and GET /metrics show each cache: hits, misses, the hit ratio.
TEST(CacheFeed, StatsAndMetricsShowEachCache) {
  RegisterDataServices();
  TempDir dir;
  ServeProcess node(dir, dir.Write("node.toml", fmt::format(R"(
[node]
name = "cached"
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "entries"
type = "store"
path = "{}/data"
[[service]]
name = "entry-cache"
type = "cache"
decorates = "entries"
)",
                                                            dir.path())));
  auto urls = node.WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  ASSERT_TRUE(
      CallAndWait(*client, Msg(R"({"store":"save","kind":"entry","ent":{"id":"a"}})")).ok());
  for (int i = 0; i < 4; ++i)  // one miss, three hits
    ASSERT_TRUE(CallAndWait(*client, Msg(R"({"store":"load","kind":"entry","id":"a"})")).ok());
  auto stats = CallAndWait(*client, Msg(R"({"sys":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  std::string caches(stats->GetObjectJson("caches").value_or(""));
  EXPECT_THAT(caches,
              ::testing::HasSubstr(R"("entry-cache":{"hits":3,"misses":1,"hit_ratio":0.75,)"))
      << caches;
  RawSocket socket(PortOf(urls[1]));
  ASSERT_TRUE(socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string metrics = socket.ReadHttpResponse();
  EXPECT_THAT(metrics,
              ::testing::HasSubstr("shardkit_cache_hits_total{cache=\"entry-cache\"} 3\n"));
  EXPECT_THAT(metrics,
              ::testing::HasSubstr("shardkit_cache_hit_ratio{cache=\"entry-cache\"} 0.75\n"));
  EXPECT_THAT(metrics, ::testing::HasSubstr("# TYPE shardkit_cache_bytes gauge"));
}

TEST(CacheFeed, BadFeedSettingsAreRefusedNamingTheKey) {
  RegisterDataServices();
  for (const auto& [line, message] : std::vector<std::pair<std::string, std::string>>{
           {"feed_kinds = \"entry\"", "feed_kinds"},
           {"feed_kinds = [\"\"]", "key 'feed_kinds': a kind must not be empty"},
           {"feed_shards = [\"-80\"]", "key 'feed_shards': needs feed_kinds"},
           {"policy = \"lfu\"", "key 'policy': must be w-tinylfu or lru"}}) {
    TempDir dir;
    ServeProcess front(dir, dir.Write("cache.toml", fmt::format(R"(
[node]
name = "front"
[[service]]
name = "entry-cache"
type = "cache"
{}
)",
                                                                line)));
    EXPECT_NE(front.WaitExit(std::chrono::seconds(10)), 0) << line;
    EXPECT_THAT(front.log(), ::testing::HasSubstr(message)) << line;
  }
}

// `shardkit bench cache` starts the store's and the cache's nodes itself (this binary, twice, plus
// a front without the cache) and measures them over TCP; a small run shows every remote figure,
// no failed request, and writes behind the cache's back seen through it well within a second.
TEST(CacheFeed, TheBenchMeasuresTheCacheAndTheStoreInTwoServeProcesses) {
  TempDir dir;
  auto run = Shell(dir, Cli("bench cache --json --entities 2000 --requests 20000 --warmup 5000 "
                            "--seconds 0.6 --clients 4 --stale-rounds 10"));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto figures = ParseMessage(run.out.substr(0, run.out.find('\n')));
  ASSERT_TRUE(figures.ok()) << run.out;
  for (const char* name : {"speedup_2", "speedup_8", "speedup_2_slice_median",
                           "speedup_8_slice_median", "remote_speedup", "store_load_fraction",
                           "remote_hit_ratio", "remote_hit_p50_us", "remote_nocache_p50_us"})
    EXPECT_GT(figures->GetDouble(name).value_or(0), 0) << name << " in " << run.out;
  EXPECT_LT(figures->GetDouble("store_load_fraction").value_or(1), 1) << run.out;
  EXPECT_EQ(figures->GetDouble("stale_rounds"), 10) << run.out;
  EXPECT_LT(figures->GetDouble("stale_max_ms").value_or(1e9), 1000) << run.out;
  EXPECT_EQ(figures->GetDouble("store_loads_for_100_concurrent_misses"), 1) << run.out;
  EXPECT_EQ(figures->GetDouble("errors"), 0) << run.out;
  EXPECT_EQ(figures->GetDouble("remote_errors"), 0) << run.out;
}

}  // namespace
}  // namespace shardkit::services::testing
