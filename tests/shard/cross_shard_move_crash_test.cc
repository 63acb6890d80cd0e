// kill -9 of a `shardkit serve` node (two shards and a shard router) in the middle of cross-shard
// moves, several rounds at random moments: after each restart every entity exists exactly once,
// at the version of its last acknowledged save, or one more if a save was in flight at the kill
// (docs/sharding.md, "Moving an entity between shards").
#include <atomic>
#include <random>
#include <thread>

#include "routed_node.h"

namespace shardkit::shard::testing {
namespace {

// One client's entity: it alone saves it, so its version is known exactly.
struct Owned {
  std::string id;
  uint64_t version = 0;    // of the last acknowledged save
  bool in_flight = false;  // a save without an answer: applied or not
  uint64_t moves = 0;      // acknowledged saves that changed the shard
};

class CrossShardMoveCrash : public RoutedStoreProcess {
 protected:
  // Each save moves the entity to the other shard: version k lives on the low shard for even k.
  std::string SaveFor(const Owned& e, size_t c, bool with_version) {
    uint64_t next = e.version + 1;
    const std::string user = UsersOnShard(next % 2 == 1)[c % 4];
    std::string version = with_version ? fmt::format(R"("version":{},)", e.version) : "";
    return fmt::format(
        R"({{"store":"save","kind":"entry","id":"{}",{}"ent":{{"user":"{}","n":{}}}}})", e.id,
        version, user, next);
  }

  // Every entity is listed once, loads with and without its key find that copy, and its version
  // is the acknowledged one (or one more after a save in flight, with the content of that save).
  void CheckOnce(std::vector<Owned>& owned, bool load_first) {
    std::map<std::string, std::string> by_id;
    if (load_first) {  // a load, not a list, meets any marker the kill left
      for (const auto& e : owned)
        by_id[e.id] =
            EntOf(Act(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", e.id)));
    }
    auto all = List("entry");
    ASSERT_EQ(all.size(), owned.size());
    std::map<std::string, std::string> listed;
    for (const auto& item : all) {
      rapidjson::Document d;
      d.Parse(item.c_str());
      ASSERT_TRUE(listed.emplace(d["id"].GetString(), item).second) << "two copies: " << item;
      EXPECT_FALSE(d.HasMember("moving$")) << item;
    }
    for (auto& e : owned) {
      ASSERT_TRUE(listed.count(e.id)) << e.id << " is missing";
      const std::string& ent = listed[e.id];
      uint64_t version = VersionOf(ent);
      EXPECT_TRUE(version == e.version || (e.in_flight && version == e.version + 1))
          << e.id << ": acknowledged " << e.version << (e.in_flight ? " (+1 in flight)" : "")
          << ", found " << ent;
      rapidjson::Document d;
      d.Parse(ent.c_str());
      EXPECT_EQ(d["n"].GetUint64(), version) << ent;
      if (load_first) {
        EXPECT_EQ(by_id[e.id], ent);
      }
      const std::string user = d["user"].GetString();
      EXPECT_EQ(EntOf(Act(fmt::format(R"({{"store":"load","kind":"entry","id":"{}","user":"{}"}})",
                                      e.id, user))),
                ent);
      const std::string other = UsersOnShard(version % 2 == 0)[0];  // a user of the other shard
      auto old_key = Act(
          fmt::format(R"({{"store":"load","kind":"entry","id":"{}","user":"{}"}})", e.id, other));
      EXPECT_EQ(old_key.status().code(), Code::kNotFound) << e.id << " under " << other;
      applied_in_flight_ += e.in_flight && version == e.version + 1;
      e.version = version;
      e.in_flight = false;
    }
  }

  uint64_t applied_in_flight_ = 0;  // saves in flight at a kill found applied after the restart
};

TEST_P(CrossShardMoveCrash, AKillInTheMiddleOfMovesLeavesEveryEntityOnceAtItsVersion) {
  constexpr size_t kClients = 8;
  constexpr int kRounds = 8;
  std::vector<Owned> owned(kClients);
  Start();
  for (size_t c = 0; c < kClients; ++c) {
    owned[c].id = fmt::format("m{}", c);
    auto first = Act(SaveFor(owned[c], c, false));
    ASSERT_EQ(VersionOf(EntOf(first)), 1u) << first.status().ToString();
    owned[c].version = 1;
  }
  std::mt19937 random(std::random_device{}());
  uint64_t total_moves = 0, in_flight = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (size_t c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        Owned& e = owned[c];
        for (int i = 0; !stop && !e.in_flight; ++i) {
          auto reply = Act(SaveFor(e, c, i % 2 == 0));  // half with the version, half blind
          if (reply.ok()) {
            EXPECT_EQ(VersionOf(EntOf(reply)), e.version + 1) << EntOf(reply);
            e.version = VersionOf(EntOf(reply));
            ++e.moves;
          } else {
            // Only the kill may stop a save: then it is applied or not.
            EXPECT_NE(reply.status().code(), Code::kInvalid) << reply.status().ToString();
            EXPECT_NE(reply.status().code(), Code::kConflict) << reply.status().ToString();
            e.in_flight = true;
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + random() % 500));
    Kill([&] { stop = true; });
    for (auto& t : clients) t.join();
    for (const auto& e : owned) in_flight += e.in_flight;
    Start();
    CheckOnce(owned, round % 2 == 0);
    if (HasFatalFailure()) return;
  }
  for (const auto& e : owned) total_moves += e.moves;
  EXPECT_GT(total_moves, kClients * kRounds);
  std::printf(
      "%d kills: %llu acknowledged cross-shard moves, %llu saves in flight at a kill (%llu found "
      "applied after the restart)\n",
      kRounds, static_cast<unsigned long long>(total_moves),
      static_cast<unsigned long long>(in_flight),
      static_cast<unsigned long long>(applied_in_flight_));
}

INSTANTIATE_TEST_SUITE_P(Engines, CrossShardMoveCrash, ::testing::Values("rocksdb", "sqlite"));

}  // namespace
}  // namespace shardkit::shard::testing
