// Change-feed retention on a real `shardkit serve` node: bad settings are refused naming the
// field, and under steady writes on a fixed key set the store's disk use and the node's memory
// stay in a band once the first retention periods are over, with every acknowledged write still
// loadable (docs/store.md, "Feed retention").
#include <gmock/gmock.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "serve_process.h"
#include "shardkit/message/json.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

std::string StoreNode(const TempDir& dir, std::string_view extra) {
  return fmt::format(R"(
[node]
name = "feed"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "store"
type = "store"
path = "{}/store"
{}
)",
                     dir.path(), extra);
}

TEST(FeedRetention, BadSettingsAreRefusedNamingTheField) {
  for (const auto& [line, message] : std::vector<std::pair<std::string, std::string>>{
           {"feed_retention_ms = -1", "key 'feed_retention_ms': must be 0 (no age limit)"},
           {"feed_max_bytes = -5", "key 'feed_max_bytes': must be 0 (no size limit)"},
           {"max_consumer_lag_ms = -1", "key 'max_consumer_lag_ms': must be 0 (never drop)"},
           {"feed_trim_interval_ms = -1", "key 'feed_trim_interval_ms': must be 0 (never)"},
           {"feed_retention_ms = \"1d\"", "feed_retention_ms"},
           {"block_cache_bytes = 5", "key 'block_cache_bytes': must be at least 1048576"},
           {"wal_max_bytes = 1024", "key 'wal_max_bytes': must be at least 1048576"}}) {
    TempDir dir;
    ServeProcess serve(dir, dir.Write("node.toml", StoreNode(dir, line)));
    EXPECT_NE(serve.WaitExit(std::chrono::seconds(10)), 0) << line;
    EXPECT_THAT(serve.log(), HasSubstr(message)) << line;
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/store")) << line << ": nothing written";
  }
}

// The bytes of the files under `path` whose names end with `suffix` (all files: "").
uint64_t DirectoryBytes(const std::string& path, std::string_view suffix = "") {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec) && it->path().string().ends_with(suffix))
      total += it->file_size(size_ec);
  }
  return total;
}

// sys:stats (`shardkit stats`) and GET /metrics show each store's feed.
TEST(FeedRetention, StatsAndMetricsShowEachStoresFeed) {
  TempDir dir;
  std::string config = StoreNode(dir, "");
  config.insert(config.find("[[service]]"), "[[listener]]\nurl = \"http://127.0.0.1:0\"\n");
  ServeProcess serve(dir, dir.Write("node.toml", config));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        CallAndWait(*client, Msg(fmt::format(
                                 R"({{"store":"save","kind":"entry","ent":{{"id":"k{}"}}}})", i)))
            .ok());
  }
  auto stats = CallAndWait(*client, Msg(R"({"sys":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  std::string feeds(stats->GetObjectJson("feeds").value_or(""));
  EXPECT_THAT(feeds, HasSubstr(R"("store":{"records":5,"bytes":)")) << feeds;
  EXPECT_THAT(feeds, HasSubstr(R"("first_retained":1,"last_sequence":5,"trimmed":0,)")) << feeds;
  EXPECT_THAT(feeds, HasSubstr(R"("dropped_consumers":0,"consumers":[])")) << feeds;
  RawSocket socket(PortOf(urls[1]));
  ASSERT_TRUE(socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string metrics = socket.ReadHttpResponse();
  EXPECT_THAT(metrics, HasSubstr("shardkit_feed_records{store=\"store\"} 5\n"));
  EXPECT_THAT(metrics, HasSubstr("shardkit_feed_first_retained{store=\"store\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("# TYPE shardkit_feed_consumer_lag_seconds gauge"));
}

uint64_t RssKib(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// An environment override of the soak, or `fallback`: scripts/soak-feed runs it longer
// (SHARDKIT_SOAK_SECONDS) or without trimming (SHARDKIT_SOAK_TRIM_INTERVAL_MS=0).
int64_t SoakSetting(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::stoll(value) : fallback;
}

// 2,000 keys rewritten for 36 s with a 3 s retention.
TEST(FeedRetention, DiskStaysFlatUnderSteadyWritesAndEveryAcknowledgedWriteLoads) {
  constexpr int kKeys = 2000;
  constexpr auto kRetention = std::chrono::seconds(3);
  const auto kRun = std::chrono::seconds(SoakSetting("SHARDKIT_SOAK_SECONDS", 36));
  const int64_t interval = SoakSetting("SHARDKIT_SOAK_TRIM_INTERVAL_MS", 250);
  TempDir dir;
  // An 8 MB block cache: the default 256 MB fills over minutes with blocks of rewritten files,
  // which would hide in RSS whether anything else grows.
  ServeProcess serve(
      dir, dir.Write("node.toml", StoreNode(dir, fmt::format("feed_retention_ms = 3000\n"
                                                             "feed_trim_interval_ms = {}\n"
                                                             "block_cache_bytes = 8388608\n"
                                                             "wal_max_bytes = 67108864\n",
                                                             interval))));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  std::map<int, std::string> acknowledged;  // key -> the last payload the store acknowledged
  std::mt19937_64 random(7);
  std::vector<std::pair<double, std::pair<uint64_t, uint64_t>>> samples;  // s -> (bytes, RSS KiB)
  std::vector<std::pair<uint64_t, uint64_t>> split;  // (SST bytes, WAL bytes) of each sample
  const auto start = std::chrono::steady_clock::now();
  auto next_sample = start;
  uint64_t writes = 0;
  std::vector<std::chrono::steady_clock::time_point> acked_at;  // of each acknowledged write
  while (std::chrono::steady_clock::now() - start < kRun) {
    const int key = static_cast<int>(random() % kKeys);
    // Random hex: the payload does not compress away, as real values mostly do not.
    std::string payload =
        fmt::format("{:016x}{:016x}{:016x}{:016x}", random(), random(), random(), random());
    payload += payload + payload + payload;  // 256 bytes
    auto r = CallAndWait(
        *client,
        Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"k{}","p":"{}"}}}})", key,
                        payload)));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acknowledged[key] = std::move(payload);
    ++writes;
    acked_at.push_back(std::chrono::steady_clock::now());
    if (const auto now = std::chrono::steady_clock::now(); now >= next_sample) {
      const double at = std::chrono::duration<double>(now - start).count();
      const std::string store = dir.path() + "/store";
      samples.push_back({at, {DirectoryBytes(store), RssKib(serve.pid())}});
      split.push_back({DirectoryBytes(store, ".sst"), DirectoryBytes(store, ".log")});
      next_sample += std::chrono::seconds(2);
    }
  }
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& [at, sample] = samples[i];
    std::printf("soak t=%5.1fs store=%8.2f MB (sst %7.2f, wal %7.2f) rss=%7.1f MB\n", at,
                sample.first / 1e6, split[i].first / 1e6, split[i].second / 1e6,
                sample.second / 1024.0);
  }
  std::printf("soak: %llu writes\n", static_cast<unsigned long long>(writes));
  // The band, from the end of the second retention period on, scaled by the write rate: the SST
  // files (entities and the retained feed; no compression gain on random hex) stay under twice
  // the bytes one retention period of writes brings plus 8 MB. An untrimmed feed keeps every
  // period's records and passes that after a few flushes. The WAL adds a sawtooth up to the
  // 64 MB cap set above (RocksDB then flushes and deletes it). RSS may grow until RocksDB's
  // memtables first flush: its bound is 64 MB above the first sample of the band.
  const auto end = acked_at.back();
  const auto period_from =
      std::lower_bound(acked_at.begin(), acked_at.end(), end - kRetention) - acked_at.begin();
  const uint64_t period_bytes = (acked_at.size() - period_from) * (256 + 64);  // payload + record
  const uint64_t sst_bound = 2 * period_bytes + (uint64_t{8} << 20);
  std::printf("soak: SST bound %.2f MB (%.2f MB written in the last retention period)\n",
              sst_bound / 1e6, period_bytes / 1e6);
  const double settled = std::chrono::duration<double>(2 * kRetention).count();
  uint64_t rss_base = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& [at, sample] = samples[i];
    if (at < settled) continue;
    if (rss_base == 0) rss_base = sample.second;
    EXPECT_LE(split[i].first, sst_bound) << "SST bytes at " << at << " s";
    EXPECT_LE(sample.first, (uint64_t{80} << 20) + sst_bound) << "store size at " << at << " s";
    EXPECT_LE(sample.second, rss_base + 64 * 1024) << "RSS at " << at << " s";
  }
  // The node's own account of its feed: it retains only the records of about the last retention
  // period (3 s, plus a round of 250 ms and the sampling's 250 ms; 4.5 s counted), where a feed
  // that is not trimmed holds every write of the run.
  auto stats = CallAndWait(*client, Msg(R"({"sys":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  auto feeds = ParseJson(stats->GetObjectJson("feeds").value_or("{}"), "feeds");
  ASSERT_TRUE(feeds.ok() && feeds->HasMember("store"))
      << stats->GetObjectJson("feeds").value_or("");
  const uint64_t retained = (*feeds)["store"]["records"].GetUint64();
  const auto recent_from = std::chrono::steady_clock::now() - std::chrono::milliseconds(4500);
  const auto recent = static_cast<uint64_t>(
      acked_at.end() - std::lower_bound(acked_at.begin(), acked_at.end(), recent_from));
  std::printf("soak: the feed retains %llu records; %llu writes in the last 4.5 s\n",
              static_cast<unsigned long long>(retained), static_cast<unsigned long long>(recent));
  EXPECT_LE(retained, recent) << "of " << writes << " writes";
  for (const auto& [key, payload] : acknowledged) {
    auto r = CallAndWait(*client,
                         Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"k{}"}})", key)));
    ASSERT_TRUE(r.ok()) << "k" << key << ": " << r.status().ToString();
    ASSERT_THAT(std::string(r->GetObjectJson("ent").value_or("")), HasSubstr(payload))
        << "k" << key;
  }
}

}  // namespace
}  // namespace shardkit::services::testing
