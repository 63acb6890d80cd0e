// Store promises through a shard router in a real `shardkit serve` process: two shards (-80, 80-)
// of one engine and a shard router on one node, clients over TCP. store:changes needs only the
// shard; and a kill -9 in the middle of eight clients' keyed saves without ids and shard-key
// changes leaves, after a restart, every entity exactly once at the version the answers imply.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "routed_node.h"

namespace shardkit::shard::testing {
namespace {

TEST_P(RoutedStoreProcess, ChangesThroughTheRouterNeedOnlyTheShard) {
  Start();
  for (const auto& user : {UsersOnShard(false)[0], UsersOnShard(true)[0]}) {
    ASSERT_TRUE(
        Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"user":"{}"}}}})", user)).ok());
  }
  for (const char* shard : {"-80", "80-"}) {
    auto changes = Act(fmt::format(R"({{"store":"changes","shard":"{}"}})", shard));
    ASSERT_TRUE(changes.ok()) << shard << ": " << changes.status().ToString();
    EXPECT_NE(changes->GetArrayJson("changes").value_or("").find(R"("op":"save")"),
              std::string::npos)
        << ToJson(*changes);
  }
  auto unnamed = Act(R"({"store":"changes"})");
  ASSERT_FALSE(unnamed.ok());
  EXPECT_EQ(unnamed.status().details_json(), R"({"field":"shard"})");
}

TEST_P(RoutedStoreProcess,
       AKillInTheMiddleOfKeyedSavesAndShardKeyChangesLosesAndDuplicatesNothing) {
  Start();
  const auto low = UsersOnShard(false), high = UsersOnShard(true);
  ASSERT_FALSE(
      EntOf(Act(fmt::format(R"({{"store":"save","kind":"entry","id":"hot","ent":{{"user":"{}"}}}})",
                            low[0])))
          .empty());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0}, unknown{0};
  std::mutex mu;
  std::map<std::string, std::string> keyed;  // key -> the answered entity ("" if unanswered)
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        std::string key = fmt::format("k{}-{}", c, i);
        auto saved =
            Act(fmt::format(R"({{"store":"save","kind":"g","ent":{{"c":{},"i":{}}}}})", c, i), key);
        {
          std::lock_guard lock(mu);
          keyed[key] = EntOf(saved);
        }
        // Every third save of `hot` is blind (no version): it must not create a copy either.
        std::string version;
        if (i % 3 != 0) {
          auto loaded = Act(R"({"store":"load","kind":"entry","id":"hot"})");
          if (!loaded.ok()) continue;
          version = fmt::format(R"("version":{},)", VersionOf(EntOf(loaded)));
        }
        const std::string user = ((c + i) % 2 ? high : low)[(c + i) % 4];
        auto moved = Act(
            fmt::format(R"({{"store":"save","kind":"entry","id":"hot",{}"ent":{{"user":"{}"}}}})",
                        version, user));
        if (moved.ok()) {
          ++acked;
        } else if (moved.status().code() != Code::kConflict &&
                   moved.status().code() != Code::kInvalid) {
          ++unknown;  // the kill: applied or not
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Kill([&] { stop = true; });
  for (auto& t : clients) t.join();
  ASSERT_GT(acked.load(), 0u);

  Start();
  auto all = List("entry");
  ASSERT_EQ(all.size(), 1u) << "hot exists " << all.size() << " times";
  uint64_t version = VersionOf(all[0]);
  EXPECT_GE(version, 1 + acked.load()) << "an acknowledged save was lost";
  EXPECT_LE(version, 1 + acked.load() + unknown.load());
  EXPECT_EQ(EntOf(Act(R"({"store":"load","kind":"entry","id":"hot"})")), all[0]);

  // Every keyed save sent again: an answered one replays its answer, an unanswered one applies
  // now or replays; either way each key is one entity.
  std::set<std::string> ids;
  size_t answered = 0;
  for (const auto& [key, ent] : keyed) {
    auto c = key.substr(1, key.find('-') - 1), i = key.substr(key.find('-') + 1);
    auto again =
        Act(fmt::format(R"({{"store":"save","kind":"g","ent":{{"c":{},"i":{}}}}})", c, i), key);
    ASSERT_TRUE(again.ok()) << key << ": " << again.status().ToString();
    if (!ent.empty()) {
      EXPECT_EQ(EntOf(again), ent) << key;
      ++answered;
    }
    rapidjson::Document d;
    d.Parse(EntOf(again).c_str());
    ids.insert(d["id"].GetString());
  }
  EXPECT_GT(answered, 0u);
  std::printf(
      "hot: %llu saves acknowledged, %llu unknown (the kill), final version %llu; %zu keyed "
      "saves, %zu answered before the kill\n",
      static_cast<unsigned long long>(acked.load()),
      static_cast<unsigned long long>(unknown.load()), static_cast<unsigned long long>(version),
      keyed.size(), answered);
  EXPECT_EQ(ids.size(), keyed.size());
  EXPECT_EQ(List("g").size(), keyed.size()) << "a keyed save was stored twice";
}

INSTANTIATE_TEST_SUITE_P(Engines, RoutedStoreProcess, ::testing::Values("rocksdb", "sqlite"));

}  // namespace
}  // namespace shardkit::shard::testing
