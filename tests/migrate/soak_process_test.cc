// The soak (scripts/soak; docs/testing.md, "Soak"): the live-migration processes (a storage
// node and a router node, real `shardkit serve`) under steady mixed client load for a set time,
// in rounds. Each round reloads the storage node with new empty target stores, splits a shard
// into them (or merges the halves back), completes the migration, reloads again without the
// retired sources and deletes their files; every third round kills the router (-9) and starts it
// again, and halfway through the storage node is killed and restarted too. The storage node's RSS
// and open descriptors are sampled after every round and must stay flat; at the end every key's
// history must be linearizable (so every acknowledged write is present) and every preloaded
// entity unchanged.
//   SHARDKIT_SOAK_MINUTES   how long (default 1: the ctest run; scripts/soak --minutes N)
#include <gtest/gtest.h>

#include <dirent.h>

#include <deque>

#include "migration_processes.h"

namespace shardkit::migrate::testing {
namespace {

// "Flat", within one process lifetime: no sample of its second half above the highest of its
// first half (the warm-up: caches fill, and a service a reload retired stays open for
// stop_grace_ms) by more than the larger of 48 MiB and a quarter, or by more than 24
// descriptors (RocksDB's files come and go with flushes and compactions).
constexpr uint64_t kRssSlackKib = 48 * 1024;
constexpr int kFdSlack = 24;

uint64_t RssKib(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

int OpenFds(pid_t pid) {
  int n = 0;
  if (DIR* dir = opendir(fmt::format("/proc/{}/fd", pid).c_str())) {
    while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
    closedir(dir);
  }
  return n;
}

// The two halves of a bounded range ("40-80" -> "40-60", "60-80"), byte-aligned hex.
std::pair<std::string, std::string> Halves(const std::string& range) {
  auto hex = [](const std::string& h) {
    return std::stoull((h + "0000000000000000").substr(0, 16), nullptr, 16);
  };
  const size_t dash = range.find('-');
  const uint64_t begin = hex(range.substr(0, dash)), end = hex(range.substr(dash + 1));
  std::string mid = fmt::format("{:016x}", begin + (end - begin) / 2);
  while (mid.size() > 2 && mid.ends_with("00")) mid.resize(mid.size() - 2);
  return {range.substr(0, dash) + "-" + mid, mid + "-" + range.substr(dash + 1)};
}

struct Sample {
  int round;
  uint64_t rss_kib;
  int fds;
};

// One process lifetime's samples: each violation, described.
std::vector<std::string> Violations(const std::vector<Sample>& lifetime) {
  std::vector<std::string> out;
  const size_t half = lifetime.size() / 2;
  if (half == 0) return out;
  Sample peak = lifetime.front();  // the warm-up's highest of each, and when
  int peak_fds_round = peak.round;
  for (size_t i = 0; i < half; ++i) {
    if (lifetime[i].rss_kib > peak.rss_kib)
      peak = {lifetime[i].round, lifetime[i].rss_kib, peak.fds};
    if (lifetime[i].fds > peak.fds) {
      peak.fds = lifetime[i].fds;
      peak_fds_round = lifetime[i].round;
    }
  }
  const uint64_t rss_bound = peak.rss_kib + std::max(kRssSlackKib, peak.rss_kib / 4);
  for (size_t i = half; i < lifetime.size(); ++i) {
    const Sample& s = lifetime[i];
    if (s.rss_kib > rss_bound)
      out.push_back(fmt::format(
          "RSS grew: {:.1f} MiB after round {}, the warm-up's peak {:.1f} "
          "MiB (round {}; bound {:.1f} MiB)",
          s.rss_kib / 1024.0, s.round, peak.rss_kib / 1024.0, peak.round, rss_bound / 1024.0));
    if (s.fds > peak.fds + kFdSlack)
      out.push_back(
          fmt::format("open descriptors grew: {} after round {}, the warm-up's peak {} "
                      "(round {}; bound {})",
                      s.fds, s.round, peak.fds, peak_fds_round, peak.fds + kFdSlack));
  }
  return out;
}

TEST(Soak, SplitsMergesReloadsAndRestartsUnderLoadKeepMemoryAndDescriptorsFlatAndLoseNothing) {
  const char* minutes_env = std::getenv("SHARDKIT_SOAK_MINUTES");
  const double minutes = minutes_env != nullptr ? std::stod(minutes_env) : 1.0;
  const auto run = std::chrono::duration<double>(minutes * 60);
  Variant variant{"soak", {}, {}, {}};
  LiveMigrationProcesses cluster(variant);
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(2000));
  cluster.ForgiveErrors();  // the router's restarts fail requests (their outcome counts unknown)
  cluster.StartTraffic(4, 100);
  const auto start = Clock::now();
  std::string shard = "40-80";  // the range split and merged back, tagged by generation
  std::vector<std::vector<Sample>> lifetimes(1);
  bool storage_restarted = false;
  int round = 0;
  while (Clock::now() - start < run) {
    // Before the round's work, so each lifetime's first sample is taken warm.
    if (!storage_restarted && Clock::now() - start > run / 2) {
      storage_restarted = true;
      cluster.KillAll();
      ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
      lifetimes.emplace_back();
    }
    cluster.WaitOps(800);  // about 2 s of client load between migrations
    ++round;
    const std::string tag = fmt::format("@g{}", round);
    const std::string range = shard.substr(0, shard.find('@'));
    std::vector<std::string> sources, targets;
    if (round % 2 == 1) {  // split
      auto [low, high] = Halves(range);
      sources = {shard};
      targets = {low + tag, high + tag};
    } else {  // merge the halves back
      sources = variant.targets;
      targets = {range + tag};  // `shard` is still the range split last round
    }
    variant.sources = sources;
    variant.targets = targets;
    const std::string id = fmt::format("soak{}", round);
    auto reloaded = cluster.Reconfigure(id, variant);
    ASSERT_TRUE(reloaded.ok()) << "round " << round << ": " << reloaded.status().ToString();
    auto started = cluster.Migrate("start");
    ASSERT_TRUE(started.ok()) << "round " << round << ": " << started.status().ToString();
    auto copied = cluster.WaitCopied();
    ASSERT_TRUE(copied.ok()) << "round " << round << ": " << copied.status().ToString();
    ASSERT_TRUE(cluster.WaitLag(100).ok()) << "round " << round;
    auto cutover = cluster.Migrate("cutover");
    ASSERT_TRUE(cutover.ok()) << "round " << round << ": " << cutover.status().ToString();
    ASSERT_TRUE(cluster.WaitLag(0).ok()) << "round " << round;
    auto completed = cluster.Migrate("complete");
    ASSERT_TRUE(completed.ok()) << "round " << round << ": " << completed.status().ToString();
    // The retired sources leave the config and the disk.
    for (const auto& s : sources) variant.retired.push_back(s);
    variant.other_stores = StoreShards(variant);
    ASSERT_TRUE(cluster.Reconfigure(id, variant).ok()) << "round " << round;
    for (const auto& s : sources) std::filesystem::remove_all(cluster.data() + "/" + DirName(s));
    shard = targets.size() == 1 ? targets[0] : shard;
    if (round % 3 == 0) {
      cluster.KillRouter();
      ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
    }
    const pid_t pid = cluster.storage().pid();
    lifetimes.back().push_back({round, RssKib(pid), OpenFds(pid)});
    std::printf("soak round %3d at %5.0f s: %-44s storage RSS %6.1f MiB, %3d fds; %lld ops\n",
                round, std::chrono::duration<double>(Clock::now() - start).count(),
                fmt::format("{} {} -> {}", round % 2 ? "split" : "merge", JsonList(sources),
                            JsonList(targets))
                    .c_str(),
                lifetimes.back().back().rss_kib / 1024.0, lifetimes.back().back().fds,
                static_cast<long long>(cluster.ops()));
    std::fflush(stdout);
  }
  cluster.StopTraffic();
  cluster.KillAll();
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  const int lost = cluster.LostPreloaded();
  std::vector<std::string> violations;
  for (const auto& lifetime : lifetimes) {
    for (auto& v : Violations(lifetime)) violations.push_back(std::move(v));
  }
  if (lost > 0)
    violations.push_back(
        fmt::format("{} of {} preloaded entities lost or changed", lost, cluster.preloaded()));
  if (HasFailure()) violations.push_back("a key's history is not linearizable (see above)");
  std::printf(
      "soak: %d rounds, %zu client operations (%lld failed during restarts, outcome "
      "unknown), %zu checked for linearizability\n",
      round, cluster.operations(), static_cast<long long>(cluster.errors()), cluster.checked_ops());
  for (const auto& v : violations) std::printf("soak: VIOLATION: %s\n", v.c_str());
  if (violations.empty()) std::printf("soak: OK\n");
  EXPECT_TRUE(violations.empty());
  EXPECT_GE(round, 2) << "the soak ran too briefly for a split and a merge";
}

}  // namespace
}  // namespace shardkit::migrate::testing
