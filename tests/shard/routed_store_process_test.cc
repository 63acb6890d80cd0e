// Store promises through a shard router in a real `shardkit serve` process: two shards (-80, 80-)
// of one engine and a shard router on one node, clients over TCP. store:changes needs only the
// shard; and a kill -9 in the middle of eight clients' keyed saves without ids and shard-key
// changes leaves, after a restart, every entity exactly once at the version the answers imply.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "../services/serve_process.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/store/keyspace.h"

namespace shardkit::shard {
namespace {

using services::CallAndWait;
using services::ClientOptions;
using services::IoRuntime;
using services::testing::Client;
using services::testing::Msg;
using services::testing::ServeProcess;
using services::testing::TempDir;

// Users whose entries live on shard -80 (high=false) or 80- (high=true).
std::vector<std::string> UsersOnShard(bool high) {
  std::vector<std::string> users;
  for (int i = 0; users.size() < 4; ++i) {
    std::string user = fmt::format("user{}", i);
    if ((store::Ksid(user) >> 63 == 1) == high) users.push_back(user);
  }
  return users;
}

std::string Config(const std::string& data, const std::string& backend) {
  return fmt::format(R"(
[node]
name = "storage"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
shard_keys = {{ entry = "user" }}
path = "{0}/map.json"
[[service]]
name = "store-low"
type = "store"
backend = "{1}"
path = "{0}/low"
shard = "-80"
node_id = 2
[[service]]
name = "store-high"
type = "store"
backend = "{1}"
path = "{0}/high"
shard = "80-"
node_id = 3
[[service]]
name = "router"
type = "shard-router"
node_id = 1
)",
                     data, backend);
}

std::string EntOf(const Result<Message>& reply) {
  return reply.ok() ? std::string(reply->GetObjectJson("ent").value_or("")) : std::string();
}

uint64_t VersionOf(const std::string& ent) {
  rapidjson::Document d;
  d.Parse(ent.data(), ent.size());
  return d.IsObject() && d.HasMember("version") ? d["version"].GetUint64() : 0;
}

class RoutedStoreProcess : public ::testing::TestWithParam<std::string> {
 protected:
  void Start() {
    node_ = std::make_unique<ServeProcess>(
        dir_, dir_.Write("node.toml", Config(data_.path(), GetParam())));
    auto urls = node_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    ClientOptions options;
    options.timeout = std::chrono::seconds(3);
    client_ = Client(runtime_, urls[0], options);
  }
  // SIGKILL, then `after_signal` (e.g. stopping the clients), then the wait for the exit.
  void Kill(const std::function<void()>& after_signal) {
    node_->Signal(SIGKILL);
    after_signal();
    EXPECT_EQ(node_->WaitExit(std::chrono::seconds(10)), 128 + SIGKILL);
    node_.reset();
  }
  Result<Message> Act(const std::string& json, const std::string& key = {}) {
    Message m = Msg(json);
    m.meta().idempotency_key = key;
    return CallAndWait(*client_, std::move(m));
  }
  std::vector<std::string> List(const std::string& kind) {
    auto reply = Act(fmt::format(R"({{"store":"list","kind":"{}"}})", kind));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    std::vector<std::string> out;
    if (!reply.ok()) return out;
    rapidjson::Document items;
    auto text = reply->GetArrayJson("items").value_or("[]");
    items.Parse(text.data(), text.size());
    for (const auto& item : items.GetArray()) out.push_back(ToJsonText(item));
    return out;
  }

  TempDir dir_, data_;
  IoRuntime runtime_{1};
  std::unique_ptr<ServeProcess> node_;
  std::shared_ptr<Handler> client_;
};

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
}  // namespace shardkit::shard
