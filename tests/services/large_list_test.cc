// A store:list without a limit over 1,000,000 entities, against a real `shardkit serve` node:
// (a) one store, (b) four shards behind a shard router in that node. Each answer is one page with
// a cursor; paging through answers every entity exactly once (behind the router a list with
// skip$ 990000 answers too), and the node's peak RSS (VmHWM) stays under 200 MB. The entities are
// written with the store's own API in this process before the node opens the same files (a million
// saves through the node would take much longer).
#include <gmock/gmock.h>
#include <rapidjson/document.h>

#include "serve_process.h"
#include "shardkit/message/json.h"
#include "shardkit/store/entity_store.h"
#include "shardkit/store/keyspace.h"
#include "shardkit/store/query.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

constexpr int kEntities = 1'000'000;
constexpr int64_t kMaxRssKb = 200 * 1024;
// The stores' block caches are set small: the bound is on what a reply costs, not on how much
// of the data RocksDB keeps cached (block_cache_bytes, docs/configuration.md).
constexpr std::string_view kStoreKeys = "block_cache_bytes = 8388608";

std::string Id(int i) { return fmt::format("e{:07}", i); }

// Writes entity i into stores[shard_of(i)], 10,000 per batch.
void Load(const std::vector<std::string>& paths, const std::function<size_t(int)>& shard_of) {
  std::vector<std::unique_ptr<store::EntityStore>> stores;
  for (const auto& path : paths) {
    store::StoreOptions options;
    options.path = path;
    // Flushed as it goes: the node then opens files, not a long log to replay into memory.
    options.rocksdb.max_wal_bytes = 16 << 20;
    auto opened = store::OpenRocksDbStore(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    stores.push_back(std::move(opened).value());
  }
  std::vector<std::vector<store::SaveRequest>> batches(paths.size());
  auto flush = [&](size_t s) {
    for (const auto& r : stores[s]->SaveBatch(batches[s]))
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    batches[s].clear();
  };
  for (int i = 0; i < kEntities; ++i) {
    size_t s = shard_of(i);
    batches[s].push_back(
        {"entry", Id(i), fmt::format(R"({{"n":{},"text":"entry number {}"}})", i, i)});
    if (batches[s].size() == 10'000) flush(s);
  }
  for (size_t s = 0; s < paths.size(); ++s) flush(s);
}

int64_t StatusKb(pid_t pid, std::string_view field) {
  std::istringstream in(ReadFile(fmt::format("/proc/{}/status", pid)));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field)) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// Pages through kind `entry` with store:list and no limit, checking that each entity comes once.
void PageThroughAll(const std::string& url) {
  IoRuntime runtime(1);
  auto client = Client(runtime, url, ClientOptions{.timeout = std::chrono::seconds(30)});
  std::vector<bool> seen(kEntities);
  size_t count = 0, pages = 0;
  std::string cursor;
  do {
    Message list;
    list.SetString("store", "list").SetString("kind", "entry");
    if (!cursor.empty()) list.SetObjectJson("q", JsonObject().Add("cursor$", cursor).str());
    auto page = CallAndWait(*client, std::move(list));
    ASSERT_TRUE(page.ok()) << "page " << pages << ": " << page.status().ToString();
    rapidjson::Document items;
    auto text = page->GetArrayJson("items").value_or("");
    items.Parse(text.data(), text.size());
    ASSERT_TRUE(items.IsArray());
    ASSERT_LE(items.Size(), static_cast<size_t>(store::kDefaultListLimit));
    for (const auto& item : items.GetArray()) {
      int i = std::stoi(std::string(item["id"].GetString()).substr(1));
      ASSERT_FALSE(seen[i]) << Id(i) << " answered twice";
      seen[i] = true;
      ++count;
    }
    cursor = std::string(page->GetString("cursor").value_or(""));
    ++pages;
    ASSERT_TRUE(!cursor.empty() || count == kEntities) << "no cursor after " << count;
  } while (!cursor.empty());
  EXPECT_EQ(count, static_cast<size_t>(kEntities));
  EXPECT_EQ(pages, static_cast<size_t>(kEntities / store::kDefaultListLimit));
}

// A skip of nearly the whole kind: the router merges and discards the shards' pages one page at a
// time, so the answer comes and the node's memory stays bounded (ExpectSmallNode).
void ListWithALargeSkip(const std::string& url) {
  IoRuntime runtime(1);
  auto client = Client(runtime, url, ClientOptions{.timeout = std::chrono::seconds(60)});
  Message list;
  list.SetString("store", "list").SetString("kind", "entry");
  list.SetObjectJson("q", R"({"skip$":990000,"limit$":10})");
  auto page = CallAndWait(*client, std::move(list));
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  rapidjson::Document items;
  auto text = page->GetArrayJson("items").value_or("");
  items.Parse(text.data(), text.size());
  ASSERT_TRUE(items.IsArray());
  EXPECT_EQ(items.Size(), 10u);
  EXPECT_TRUE(page->Has("cursor"));
}

void ExpectSmallNode(ServeProcess& serve, int64_t started_kb) {
  int64_t hwm_kb = StatusKb(serve.pid(), "VmHWM:");
  std::cout << "shardkit serve: VmRSS " << started_kb / 1024 << " MB once started, VmHWM "
            << hwm_kb / 1024 << " MB after listing\n";
  EXPECT_GT(hwm_kb, 0);
  EXPECT_LT(hwm_kb, kMaxRssKb) << "peak RSS " << hwm_kb << " kB";
}

TEST(LargeListTest, AListWithoutALimitOverAMillionEntitiesInOneStore) {
  TempDir dir;
  Load({dir.File("entries")}, [](int) { return size_t{0}; });
  ServeProcess serve(dir, dir.Write("node.toml", fmt::format(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "entries"
type = "store"
path = "{}"
{}
)",
                                                             dir.File("entries"), kStoreKeys)));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u) << serve.log();
  const int64_t started_kb = StatusKb(serve.pid(), "VmRSS:");
  PageThroughAll(urls[0]);
  ExpectSmallNode(serve, started_kb);
}

TEST(LargeListTest, AListWithoutALimitOverAMillionEntitiesOnFourShardsBehindARouter) {
  TempDir dir;
  const std::vector<std::string> ranges = {"-40", "40-80", "80-c0", "c0-"};
  std::vector<std::string> paths;
  std::string stores;
  for (size_t s = 0; s < ranges.size(); ++s) {
    paths.push_back(dir.File("shard" + std::to_string(s)));
    stores += fmt::format(R"(
[[service]]
name = "store-{0}"
type = "store"
path = "{1}"
shard = "{2}"
node_id = {3}
{4}
)",
                          s, paths[s], ranges[s], s + 2, kStoreKeys);
  }
  // Shard s owns the ksids whose top two bits are s.
  Load(paths, [](int i) { return static_cast<size_t>(store::Ksid(Id(i)) >> 62); });
  ServeProcess serve(dir, dir.Write("node.toml", fmt::format(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-40", "40-80", "80-c0", "c0-"]
path = "{}/map.json"
[[service]]
name = "router"
type = "shard-router"
node_id = 1
{}
)",
                                                             dir.path(), stores)));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u) << serve.log();
  const int64_t started_kb = StatusKb(serve.pid(), "VmRSS:");
  ListWithALargeSkip(urls[0]);
  PageThroughAll(urls[0]);
  ExpectSmallNode(serve, started_kb);
}

}  // namespace
}  // namespace shardkit::services::testing
