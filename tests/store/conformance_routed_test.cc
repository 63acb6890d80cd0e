// Conformance of the store:* messages directly and through a shard router: every case runs on one
// store, and on two shards (-80, 80-) behind a shard router, for each persistent engine. A promise
// that holds on one store must hold through the router too: keyed saves without an id apply once
// (alone, in bulk, from 8 concurrent clients), and a save that changes the shard-key value never
// leaves a second copy of the entity: it moves it (version + 1, the old key gone), also when the
// new value belongs to the other shard (docs/sharding.md, "Moving an entity between shards").
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <shardkit/cache/entity_cache.h>
#include <shardkit/cache/feed_follower.h>
#include <shardkit/cqrs/entities_projection.h>
#include <shardkit/cqrs/projection_service.h>
#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/service.h>

#include "../migrate/linearizability.h"
#include "service_fixture.h"
#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

using Topologies = ::testing::Types<Topology<RocksDbBackend, false>, Topology<RocksDbBackend, true>,
                                    Topology<SqliteBackend, false>, Topology<SqliteBackend, true>>;

// Users whose entries live on shard -80 and on shard 80- (by the ksid of the value).
std::vector<std::string> UsersOnShard(bool high) {
  std::vector<std::string> users;
  for (int i = 0; users.size() < 4; ++i) {
    std::string user = fmt::format("user{}", i);
    if ((Ksid(user) >> 63 == 1) == high) users.push_back(user);
  }
  return users;
}

template <typename T>
class store_routed_conformance : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::map<std::string, std::string> keys = {{"entry", "user"}};
    if (!T::kRouted) {
      front_ = MakeStoreService(Open("one", keys, 1));
      ASSERT_TRUE(bus_.Add("store:*", front_, "store").ok());
      return;
    }
    const std::vector<std::string> ranges = {"-80", "80-"};
    auto map = std::make_shared<shard::ShardMapHolder>(*shard::ShardMap::Make(1, ranges, keys));
    for (size_t i = 0; i < ranges.size(); ++i) {
      // The pattern a `shardkit serve` node gives a shard (services/adapters/store.cc): the store,
      // then its guard as an override that reaches the store as Prior.
      std::string pattern = fmt::format("store:*,kind:*,shard:\"{}\"", ranges[i]);
      ASSERT_TRUE(
          bus_.Add(pattern, MakeStoreService(Open(ranges[i], keys, 2 + i)), "store " + ranges[i])
              .ok());
      ASSERT_TRUE(bus_.Override(pattern, shard::MakeShardGuard({ranges[i], map, nullptr, nullptr}),
                                "shard " + ranges[i])
                      .ok());
    }
    front_ = shard::MakeShardRouter({map, nullptr, std::make_shared<IdGenerator>(1)});
    ASSERT_TRUE(bus_.Add("store:*", front_, "router").ok());
  }

  std::shared_ptr<EntityStore> Open(const std::string& name,
                                    const std::map<std::string, std::string>& keys,
                                    uint32_t node_id) {
    ids_.push_back(std::make_unique<IdGenerator>(node_id));
    StoreOptions options;
    options.path = dir_.path() + "/" + name;
    options.purge_interval_ms = 0;
    options.shard_key_fields = keys;
    options.id_generator = ids_.back().get();
    options.rocksdb.block_cache_bytes = size_t{8} << 20;
    auto opened = T::Backend::Open(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return std::shared_ptr<EntityStore>(std::move(opened).value());
  }

  // Sends one message (with an idempotency key if `key` is set); the reply as JSON text.
  std::string Act(const std::string& json, const std::string& key = {}) {
    auto message = ParseMessage(json);
    EXPECT_TRUE(message.ok()) << json;
    message->meta().idempotency_key = key;
    Result<Message> reply = bus_.ActAndWait(std::move(message).value());
    if (!reply.ok()) return ToJson(ErrorMessage(reply.status()));
    reply->meta() = Meta();  // the reply's message id differs per request; the answer must not
    return ToJson(*reply);
  }

  // The entities of `kind` (optionally only `user`'s), as every reader sees them.
  std::vector<std::string> List(const std::string& kind, const std::string& user = {}) {
    std::string q = user.empty() ? "{}" : fmt::format(R"({{"user":"{}"}})", user);
    rapidjson::Document reply =
        Json(Act(fmt::format(R"({{"store":"list","kind":"{}","q":{}}})", kind, q)));
    std::vector<std::string> out;
    EXPECT_TRUE(reply.HasMember("items")) << ToJsonText(reply);
    if (!reply.HasMember("items")) return out;
    for (const auto& item : reply["items"].GetArray()) out.push_back(ToJsonText(item));
    return out;
  }

  std::string Load(const std::string& kind, const std::string& id) {
    return Act(fmt::format(R"({{"store":"load","kind":"{}","id":"{}"}})", kind, id));
  }

  TempDir dir_;
  std::vector<std::unique_ptr<IdGenerator>> ids_;
  Bus bus_;
  std::shared_ptr<Handler> front_;  // the router, or the one store's service
};

TYPED_TEST_SUITE(store_routed_conformance, Topologies, TopologyName);

std::string Ent(const std::string& reply) {
  rapidjson::Document d = Json(reply);
  return d.IsObject() && d.HasMember("ent") ? ToJsonText(d["ent"]) : std::string();
}

TYPED_TEST(store_routed_conformance, AKeyedSaveWithoutAnIdSentFourTimesStoresOneEntity) {
  const std::string save = R"({"store":"save","kind":"g1","ent":{"n":1}})";
  std::string first = this->Act(save, "K1");
  ASSERT_FALSE(Ent(first).empty()) << first;
  for (int copy = 1; copy < 4; ++copy) EXPECT_EQ(this->Act(save, "K1"), first) << "copy " << copy;
  auto stored = this->List("g1");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0], Ent(first));
  // Another key is another request: a second entity.
  EXPECT_NE(IdOf(Ent(this->Act(save, "K2"))), IdOf(Ent(first)));
  EXPECT_EQ(this->List("g1").size(), 2u);
}

TYPED_TEST(store_routed_conformance, AKeyedSaveWithoutAnIdFromEightConcurrentClientsStoresOne) {
  for (int round = 0; round < 5; ++round) {
    const std::string key = fmt::format("C{}", round);
    const std::string save =
        fmt::format(R"({{"store":"save","kind":"g2","ent":{{"round":{}}}}})", round);
    std::vector<std::string> replies(8);
    std::vector<std::thread> clients;
    for (size_t c = 0; c < replies.size(); ++c)
      clients.emplace_back([&, c] { replies[c] = this->Act(save, key); });
    for (auto& t : clients) t.join();
    ASSERT_FALSE(Ent(replies[0]).empty()) << replies[0];
    for (const auto& r : replies) EXPECT_EQ(r, replies[0]);
  }
  EXPECT_EQ(this->List("g2").size(), 5u);
}

TYPED_TEST(store_routed_conformance, AKeyedBulkSaveWithoutIdsIsAppliedOnceFromConcurrentClients) {
  std::string ents = "[";
  for (int i = 0; i < 12; ++i) ents += fmt::format(R"({}{{"i":{}}})", i ? "," : "", i);
  const std::string save = R"({"store":"save","kind":"g3","ents":)" + ents + "]}";
  std::string first = this->Act(save, "B1");
  ASSERT_EQ(first.find("\"error$\""), std::string::npos) << first;
  std::vector<std::string> replies(8);
  std::vector<std::thread> clients;
  for (size_t c = 0; c < replies.size(); ++c)
    clients.emplace_back([&, c] { replies[c] = this->Act(save, "B1"); });
  for (auto& t : clients) t.join();
  for (const auto& r : replies) EXPECT_EQ(r, first);
  auto stored = this->List("g3");
  ASSERT_EQ(stored.size(), 12u);
  for (const auto& e : stored) EXPECT_EQ(VersionOf(e), 1u) << e;
}

TYPED_TEST(store_routed_conformance, AKeyReusedForAnotherRequestIsAConflictAndWritesNothing) {
  std::string first = this->Act(R"({"store":"save","kind":"g4","id":"a","ent":{"n":1}})", "R");
  ASSERT_FALSE(Ent(first).empty()) << first;
  std::string other = this->Act(R"({"store":"save","kind":"g4","id":"a","ent":{"n":2}})", "R");
  EXPECT_NE(other.find(R"("field":"meta$.idempotency_key")"), std::string::npos) << other;
  EXPECT_EQ(Ent(this->Load("g4", "a")), Ent(first));
  // A keyed remove replays its removed value, not not_found.
  std::string removed = this->Act(R"({"store":"remove","kind":"g4","id":"a"})", "RM");
  ASSERT_EQ(Ent(removed), Ent(first)) << removed;
  EXPECT_EQ(this->Act(R"({"store":"remove","kind":"g4","id":"a"})", "RM"), removed);
}

// For `entry` the values differ but stay on one shard: two first saves of one id with values on
// different shards are not serialized by any shard (docs/sharding.md, "Moving an entity
// between shards").
TYPED_TEST(store_routed_conformance, InsertOnlyRacesOfEightClientsHaveOneWinner) {
  for (const std::string kind : {"g5", "entry"}) {
    std::vector<std::string> replies(8);
    std::vector<std::thread> clients;
    for (size_t c = 0; c < replies.size(); ++c) {
      clients.emplace_back([&, c] {
        replies[c] =
            this->Act(fmt::format(R"({{"store":"save","kind":"{}","id":"one","insert_only":true,)"
                                  R"("ent":{{"user":"{}","c":{}}}}})",
                                  kind, UsersOnShard(false)[c % 4], c));
      });
    }
    for (auto& t : clients) t.join();
    size_t won = 0;
    for (const auto& r : replies) won += !Ent(r).empty();
    EXPECT_EQ(won, 1u) << kind;
    EXPECT_EQ(this->List(kind).size(), 1u) << kind;
  }
}

TYPED_TEST(store_routed_conformance, ABulkSaveAnswersPerItemAndWritesTheGoodOnes) {
  std::string reply =
      this->Act(R"({"store":"save","kind":"entry","ents":[{"id":"x","user":"u"},{"id":"y"},7,)"
                R"({"id":"z","user":"v"}]})");
  rapidjson::Document items = Json(reply);
  ASSERT_TRUE(items.HasMember("items")) << reply;
  ASSERT_EQ(items["items"].Size(), 4u) << reply;
  EXPECT_TRUE(items["items"][0].HasMember("ent")) << reply;
  EXPECT_TRUE(items["items"][1].HasMember("error$")) << reply;
  EXPECT_TRUE(items["items"][2].HasMember("error$")) << reply;
  EXPECT_TRUE(items["items"][3].HasMember("ent")) << reply;
  EXPECT_EQ(this->List("entry").size(), 2u);
}

// A save that changes the shard-key value moves the entity, on one store and through the router
// to the other shard alike: version 2, the old key gone, exactly one copy.
TYPED_TEST(store_routed_conformance, AShardKeyChangeMovesTheEntityAtTheNextVersion) {
  const std::string ann = UsersOnShard(false)[0], bob = UsersOnShard(true)[0];
  ASSERT_FALSE(
      Ent(this->Act(fmt::format(
              R"({{"store":"save","kind":"entry","id":"e1","ent":{{"user":"{}"}}}})", ann)))
          .empty());
  std::string moved = this->Act(fmt::format(
      R"({{"store":"save","kind":"entry","id":"e1","version":1,"ent":{{"user":"{}","n":2}}}})",
      bob));
  ASSERT_EQ(VersionOf(Ent(moved)), 2u) << moved;
  auto all = this->List("entry");
  ASSERT_EQ(all.size(), 1u) << moved;
  EXPECT_EQ(all[0], Ent(moved));
  EXPECT_EQ(this->List("entry", ann).size(), 0u);
  EXPECT_EQ(this->List("entry", bob).size(), 1u);
  EXPECT_EQ(Ent(this->Load("entry", "e1")), Ent(moved));
  EXPECT_EQ(Ent(this->Act(
                fmt::format(R"({{"store":"load","kind":"entry","id":"e1","user":"{}"}})", bob))),
            Ent(moved));
  if (TypeParam::kRouted) {  // one store finds an id whatever `user` says; a router asks its shard
    std::string old_key =
        this->Act(fmt::format(R"({{"store":"load","kind":"entry","id":"e1","user":"{}"}})", ann));
    EXPECT_NE(old_key.find("\"not_found\""), std::string::npos) << old_key;
  }
  // A stale version is a conflict wherever the entity lives, and changes nothing.
  std::string stale = this->Act(fmt::format(
      R"({{"store":"save","kind":"entry","id":"e1","version":1,"ent":{{"user":"{}"}}}})", ann));
  EXPECT_NE(stale.find("\"conflict\""), std::string::npos) << stale;
  EXPECT_NE(stale.find(R"("field":"version")"), std::string::npos) << stale;
  EXPECT_EQ(this->List("entry"), std::vector<std::string>{Ent(moved)});
  // And back, and on within a shard: the version keeps counting.
  EXPECT_EQ(VersionOf(Ent(this->Act(fmt::format(
                R"({{"store":"save","kind":"entry","id":"e1","version":2,"ent":{{"user":"{}"}}}})",
                ann)))),
            3u);
  EXPECT_EQ(VersionOf(Ent(this->Act(
                fmt::format(R"({{"store":"save","kind":"entry","id":"e1","ent":{{"user":"{}"}}}})",
                            UsersOnShard(false)[1])))),
            4u);
  all = this->List("entry");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(VersionOf(all[0]), 4u);
}

// The old shard keeps a trace of a moved entity for a while: it is no entity to bulk saves, loads
// or removes (a bulk save keeping the new shard is an ordinary save; a remove finds one copy).
TYPED_TEST(store_routed_conformance, AMovedEntityLeavesNothingBehindForOtherMessages) {
  const std::string ann = UsersOnShard(false)[0], bob = UsersOnShard(true)[0];
  this->Act(
      fmt::format(R"({{"store":"save","kind":"entry","id":"t1","ent":{{"user":"{}"}}}})", ann));
  this->Act(
      fmt::format(R"({{"store":"save","kind":"entry","id":"t1","ent":{{"user":"{}"}}}})", bob));
  std::string bulk = this->Act(
      fmt::format(R"({{"store":"save","kind":"entry","ents":[{{"id":"t1","user":"{}","n":3}}]}})",
                  UsersOnShard(true)[1]));
  rapidjson::Document items = Json(bulk);
  ASSERT_TRUE(items.HasMember("items") && items["items"][0].HasMember("ent")) << bulk;
  EXPECT_EQ(VersionOf(ToJsonText(items["items"][0]["ent"])), 3u) << bulk;
  std::string loaded = this->Act(R"({"store":"load","kind":"entry","ids":["t1"]})");
  EXPECT_EQ(Json(loaded)["items"][0]["ent"]["version"].GetUint64(), 3u) << loaded;
  std::string removed = this->Act(R"({"store":"remove","kind":"entry","id":"t1"})");
  EXPECT_EQ(VersionOf(Ent(removed)), 3u) << removed;
  EXPECT_NE(this->Load("entry", "t1").find("\"not_found\""), std::string::npos);
  EXPECT_TRUE(this->List("entry").empty());
  // Saved anew (insert only) under the old shard's value: a new entity, version 1.
  std::string anew = this->Act(fmt::format(
      R"({{"store":"save","kind":"entry","id":"t1","insert_only":true,"ent":{{"user":"{}"}}}})",
      ann));
  EXPECT_EQ(VersionOf(Ent(anew)), 1u) << anew;
  EXPECT_EQ(this->List("entry").size(), 1u);
}

// A move sent again with its idempotency key answers what the first one answered and moves
// nothing more; an insert-only save of a stored entity is a conflict wherever it lives.
TYPED_TEST(store_routed_conformance, AKeyedShardKeyChangeReplaysItsAnswer) {
  const std::string ann = UsersOnShard(false)[0], bob = UsersOnShard(true)[0];
  this->Act(
      fmt::format(R"({{"store":"save","kind":"entry","id":"k1","ent":{{"user":"{}"}}}})", ann));
  const std::string move = fmt::format(
      R"({{"store":"save","kind":"entry","id":"k1","ent":{{"user":"{}","n":1}}}})", bob);
  std::string first = this->Act(move, "MOVE1");
  ASSERT_EQ(VersionOf(Ent(first)), 2u) << first;
  for (int copy = 1; copy < 3; ++copy) EXPECT_EQ(this->Act(move, "MOVE1"), first) << copy;
  EXPECT_EQ(this->List("entry"), std::vector<std::string>{Ent(first)});
  std::string insert = this->Act(fmt::format(
      R"({{"store":"save","kind":"entry","id":"k1","insert_only":true,"ent":{{"user":"{}"}}}})",
      ann));
  EXPECT_NE(insert.find("\"conflict\""), std::string::npos) << insert;
  EXPECT_EQ(this->List("entry"), std::vector<std::string>{Ent(first)});
}

// The marker property is the router's: a client's entity with it is refused, naming it, and so
// is a message with a move step's fields sent to a router.
TYPED_TEST(store_routed_conformance, TheMoveMarkerPropertyIsRefusedInClientEntities) {
  std::string forged = this->Act(
      R"({"store":"save","kind":"entry","id":"f","ent":{"user":"u","moving$":{"to":"80-"}}})");
  EXPECT_NE(forged.find("\"invalid\""), std::string::npos) << forged;
  EXPECT_NE(forged.find(R"("field":"ent.moving$")"), std::string::npos) << forged;
  if (!TypeParam::kRouted) return;  // a store serves a router's move steps (docs/messages.md)
  std::string step = this->Act(
      R"({"store":"save","kind":"entry","id":"f","move":"insert","at_version":5,"ent":{"user":"u"}})");
  EXPECT_NE(step.find("\"invalid\""), std::string::npos) << step;
  EXPECT_NE(step.find(R"("field":"move")"), std::string::npos) << step;
  // The field named is the first of move, at_version, observed_version present, whatever the
  // message's order.
  std::string reordered = this->Act(
      R"({"store":"save","kind":"entry","id":"f","observed_version":2,"at_version":5,"ent":{"user":"u"}})");
  EXPECT_NE(reordered.find(R"("field":"at_version")"), std::string::npos) << reordered;
  EXPECT_TRUE(this->List("entry").empty());
}

// A cache in front (store:*,kind:entry, forwarding as cache:true) that follows the stores' feeds:
// a move made behind its back (straight to the router) is not served from the old copy once the
// feeds are followed, and the follower reads no marker as an entity.
TYPED_TEST(store_routed_conformance, ACacheFollowingTheFeedsDropsTheOldCopyOfAMovedEntity) {
  auto cache = cache::MakeEntityCache({});
  ASSERT_TRUE(this->bus_.Add("store:*,kind:entry,cache:true", this->front_, "behind").ok());
  ASSERT_TRUE(this->bus_.Add("store:*,kind:entry", cache, "entry-cache").ok());
  cache::FeedFollowerOptions options;
  for (const char* shard : {"-80", "80-"}) {
    std::string source =
        TypeParam::kRouted
            ? fmt::format(R"({{"store":"changes","kind":"entry","shard":"{}"}})", shard)
            : R"({"store":"changes","kind":"entry","cache":true})";
    options.sources.push_back({shard, *ParseMessage(source)});
    if (!TypeParam::kRouted) break;
  }
  std::vector<std::string> ops;
  options.on_change = [&](std::string_view, std::string_view id, std::string_view op, uint64_t v) {
    ops.push_back(fmt::format("{} {} {}", id, op, v));
  };
  cache::FeedFollower follower(this->bus_, cache, options);
  ASSERT_TRUE(follower.PollOnce().ok());
  const std::string ann = UsersOnShard(false)[0], bob = UsersOnShard(true)[0];
  this->Act(
      fmt::format(R"({{"store":"save","kind":"entry","id":"c1","ent":{{"user":"{}"}}}})", ann));
  ASSERT_EQ(VersionOf(Ent(this->Load("entry", "c1"))), 1u);  // cached
  std::string moved = this->Act(fmt::format(
      R"({{"store":"save","kind":"entry","id":"c1","cache":true,"ent":{{"user":"{}"}}}})", bob));
  ASSERT_EQ(VersionOf(Ent(moved)), 2u) << moved;
  EXPECT_EQ(VersionOf(Ent(this->Load("entry", "c1"))), 1u);  // stale until the feeds are followed
  ASSERT_TRUE(follower.PollOnce().ok());
  EXPECT_EQ(Ent(this->Load("entry", "c1")), Ent(moved));
  EXPECT_GE(cache->stats().invalidations, 1u);
  EXPECT_FALSE(ops.empty());
}

// A projection of each shard's change feed (the entities read model) sees a cross-shard move as
// the entity leaving the old shard and arriving on the new one: the marker and the tombstone are
// never copied as entities, and across the read models the entity is found once, at the moved
// version.
TYPED_TEST(store_routed_conformance, FeedProjectionsSeeAMovedEntityOnceAndNoMarkers) {
  const std::vector<std::string> shards =
      TypeParam::kRouted ? std::vector<std::string>{"-80", "80-"} : std::vector<std::string>{""};
  auto changes = [&](const std::string& shard) {
    return shard.empty()
               ? std::string(R"({"store":"changes","kind":"entry"})")
               : fmt::format(R"({{"store":"changes","kind":"entry","shard":"{}"}})", shard);
  };
  struct ReadModel {
    std::shared_ptr<cqrs::ProjectionService> projection;
    std::unique_ptr<Bus> bus;  // answers the read model's store:load / store:list
  };
  std::vector<ReadModel> models;
  for (const std::string& shard : shards) {
    cqrs::ProjectionOptions options;
    options.path = this->dir_.path() + "/read-model" + shard;
    auto started = cqrs::ProjectionService::Start(
        cqrs::MakeEntitiesProjection("entry"),
        cqrs::MakeChangeFeedSource(this->bus_, *ParseMessage(changes(shard))), options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    ReadModel model{*started, std::make_unique<Bus>()};
    ASSERT_TRUE(model.bus->Add("store:*", model.projection).ok());
    models.push_back(std::move(model));
  }
  auto caught_up = [&] {
    for (size_t i = 0; i < shards.size(); ++i) {
      auto last = Json(this->Act(changes(shards[i])));
      ASSERT_TRUE(last.HasMember("last")) << ToJsonText(last);
      ASSERT_TRUE(
          models[i].projection->WaitApplied(last["last"].GetUint64(), std::chrono::seconds(10)));
    }
  };
  const std::string ann = UsersOnShard(false)[0], bob = UsersOnShard(true)[0];
  this->Act(
      fmt::format(R"({{"store":"save","kind":"entry","id":"p1","ent":{{"user":"{}"}}}})", ann));
  std::string moved = this->Act(
      fmt::format(R"({{"store":"save","kind":"entry","id":"p1","ent":{{"user":"{}"}}}})", bob));
  ASSERT_EQ(VersionOf(Ent(moved)), 2u) << moved;
  caught_up();
  int found = 0;
  for (ReadModel& model : models) {
    auto load =
        model.bus->ActAndWait(*ParseMessage(R"({"store":"load","kind":"entry","id":"p1"})"));
    if (load.ok()) {
      ++found;
      EXPECT_EQ(std::string(load->GetObjectJson("ent").value_or("")), Ent(moved));
    } else {
      EXPECT_EQ(load.status().code(), Code::kNotFound) << load.status().ToString();
    }
    auto list = model.bus->ActAndWait(*ParseMessage(R"({"store":"list","kind":"entry"})"));
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    EXPECT_EQ(std::string(list->GetArrayJson("items").value_or("")).find("moving$"),
              std::string::npos)
        << "a move marker was projected as an entity";
  }
  EXPECT_EQ(found, 1) << "the moved entity is in " << found << " read models";
  for (ReadModel& model : models) model.projection->Stop();
}

// Eight clients move four entities between users of both shards with blind saves and load them
// without the shard key: every load finds exactly the value of a save (never absent, never a
// stale copy after a newer one was read: each entity's history is linearizable), and at the end
// each entity exists once, at 1 + its acknowledged saves.
TYPED_TEST(store_routed_conformance, ConcurrentMovesAndLoadsSeeOneCopyAtATime) {
  using migrate::testing::RegisterOp;
  const auto low = UsersOnShard(false), high = UsersOnShard(true);
  const std::vector<std::string> ids = {"m0", "m1", "m2", "m3"};
  std::mutex mu;
  std::map<std::string, std::vector<RegisterOp>> history;
  std::map<std::string, uint64_t> saved, unknown;  // acknowledged saves, saves without an answer
  auto now = [] { return std::chrono::steady_clock::now().time_since_epoch().count(); };
  for (const auto& id : ids) {
    int64_t call = now();
    std::string w = id + "-0";
    ASSERT_FALSE(
        Ent(this->Act(fmt::format(
                R"({{"store":"save","kind":"entry","id":"{}","ent":{{"user":"{}","w":"{}"}}}})", id,
                low[0], w)))
            .empty());
    history[id].push_back({RegisterOp::Kind::kSave, call, now(), w});
    saved[id] = 1;
  }
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 24; ++i) {
        const std::string& id = ids[(c + i) % ids.size()];
        RegisterOp op;
        op.call = now();
        std::string reply;
        if (i % 2 == 0) {
          op.kind = RegisterOp::Kind::kSave;
          op.value = fmt::format("c{}-{}", c, i);
          const std::string user = ((c + i / 2) % 2 ? high : low)[(c + i) % 4];
          reply = this->Act(fmt::format(
              R"({{"store":"save","kind":"entry","id":"{}","ent":{{"user":"{}","w":"{}"}}}})", id,
              user, *op.value));
          if (reply.find("\"conflict\"") != std::string::npos) continue;  // not applied
          // A save is applied, or refused as a conflict; any other error leaves it unknown, but
          // a refusal of the move itself fails the test.
          EXPECT_EQ(reply.find("\"invalid\""), std::string::npos) << reply;
          if (!Ent(reply).empty()) op.ret = now();
        } else {
          reply = this->Load("entry", id);
          op.ret = now();
          rapidjson::Document d = Json(reply);
          if (d.HasMember("ent") && d["ent"].HasMember("w")) op.value = d["ent"]["w"].GetString();
          EXPECT_TRUE(op.value.has_value()) << reply;
        }
        std::lock_guard lock(mu);
        if (op.kind == RegisterOp::Kind::kSave)
          ++(op.ret == RegisterOp::kUnknown ? unknown : saved)[id];
        history[id].push_back(std::move(op));
      }
    });
  }
  for (auto& t : clients) t.join();
  auto all = this->List("entry");
  ASSERT_EQ(all.size(), ids.size());
  uint64_t acknowledged = 0;
  for (const auto& [id, n] : saved) acknowledged += n - 1;
  EXPECT_GT(acknowledged, 8u);  // most blind saves apply: each retries a conflict of the router's
  for (const auto& e : all) {
    EXPECT_GE(VersionOf(e), saved[IdOf(e)]) << e;
    EXPECT_LE(VersionOf(e), saved[IdOf(e)] + unknown[IdOf(e)]) << e;
    EXPECT_EQ(Ent(this->Load("entry", IdOf(e))), e);
  }
  for (auto& [id, ops] : history) {
    auto verdict = migrate::testing::CheckRegister(ops, std::nullopt);
    EXPECT_TRUE(verdict.ok) << id << ": " << verdict.explanation;
  }
}

TYPED_TEST(store_routed_conformance, ABulkShardKeyChangeNeverLeavesASecondCopy) {
  const auto low = UsersOnShard(false), high = UsersOnShard(true);
  this->Act(fmt::format(R"({{"store":"save","kind":"entry","ents":[{{"id":"a","user":"{}"}},)"
                        R"({{"id":"b","user":"{}"}}]}})",
                        low[0], low[1]));
  std::string reply = this->Act(fmt::format(
      R"({{"store":"save","kind":"entry","ents":[{{"id":"a","user":"{}"}},{{"id":"b","user":"{}"}},)"
      R"({{"id":"c","user":"{}"}}]}})",
      high[0], low[2], high[1]));
  rapidjson::Document items = Json(reply);
  ASSERT_TRUE(items.HasMember("items")) << reply;
  EXPECT_EQ(TypeParam::kRouted, items["items"][0].HasMember("error$")) << reply;
  EXPECT_EQ(VersionOf(ToJsonText(items["items"][1]["ent"])), 2u) << reply;
  EXPECT_EQ(VersionOf(ToJsonText(items["items"][2]["ent"])), 1u) << reply;
  std::set<std::string> ids;
  for (const auto& e : this->List("entry")) EXPECT_TRUE(ids.insert(IdOf(e)).second) << e;
  EXPECT_EQ(ids, (std::set<std::string>{"a", "b", "c"}));
}

// Eight clients update one entity, mostly with read-modify-write saves, each to a user of either
// shard.
// Every acknowledged save counts: the entity exists once, at 1 + the number of saves that
// succeeded.
TYPED_TEST(store_routed_conformance, ConcurrentShardKeyChangesLeaveOneEntityAtTheCountedVersion) {
  const auto low = UsersOnShard(false), high = UsersOnShard(true);
  ASSERT_FALSE(
      Ent(this->Act(fmt::format(
              R"({{"store":"save","kind":"entry","id":"hot","ent":{{"user":"{}"}}}})", low[0])))
          .empty());
  std::atomic<uint64_t> saved{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 15; ++i) {
        const std::string user = ((c + i) % 2 ? high : low)[(c + i) % 4];
        // Every third save is blind (no version): it must not create a copy either.
        std::string version;
        if (i % 3 != 0) {
          std::string loaded = this->Load("entry", "hot");
          ASSERT_FALSE(Ent(loaded).empty()) << loaded;
          version = fmt::format(R"("version":{},)", VersionOf(Ent(loaded)));
        }
        std::string reply = this->Act(
            fmt::format(R"({{"store":"save","kind":"entry","id":"hot",{}"ent":{{"user":"{}"}}}})",
                        version, user));
        if (!Ent(reply).empty()) ++saved;
      }
    });
  }
  for (auto& t : clients) t.join();
  auto all = this->List("entry");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_GT(saved.load(), 0u);
  EXPECT_EQ(VersionOf(all[0]), 1 + saved.load()) << all[0];
  EXPECT_EQ(Ent(this->Load("entry", "hot")), all[0]);
}

}  // namespace
}  // namespace shardkit::store::testing
