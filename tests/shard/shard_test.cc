// Sharding: keyspace uniformity, range notation and map validation, boundaries, epoch fencing,
// per-kind shard keys, bulk splitting, and scatter/gather equal to one unsharded store.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <future>
#include <random>

#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/service.h>

namespace shardkit::shard {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> EqualRanges(int n) {
  std::vector<std::string> ranges;
  for (int i = 0; i < n; ++i) {
    const uint64_t step = ~uint64_t{0} / n + 1;  // n is a power of two
    uint64_t begin = step * i;
    uint64_t end = i == n - 1 ? 0 : step * (i + 1);
    ranges.push_back(FormatRange(store::KsidRange{begin, end}));
  }
  return ranges;
}

TEST(Keyspace, OneMillionRandomIdsSpreadEvenlyOverSixteenRanges) {
  auto map = ShardMap::Make(1, EqualRanges(16));
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  std::vector<int> counts(16);
  std::mt19937_64 rng(2024);
  constexpr int kIds = 1'000'000;
  for (int i = 0; i < kIds; ++i) {
    std::string id = std::to_string(rng());
    const Shard& s = map->ShardFor(store::Ksid(id));
    counts[&s - map->shards().data()]++;
  }
  for (int c : counts) {
    EXPECT_NEAR(c, kIds / 16.0, kIds / 16.0 * 0.02) << "a range got " << c;
  }
}

TEST(ShardMapTest, RangesUseVitessNotation) {
  EXPECT_EQ(FormatRange(*ParseRange("40-80")), "40-80");
  EXPECT_EQ(FormatRange(*ParseRange("-40")), "-40");
  EXPECT_EQ(FormatRange(*ParseRange("c0-")), "c0-");
  EXPECT_EQ(FormatRange(*ParseRange("-")), "-");
  EXPECT_EQ(ParseRange("4080-80")->begin, 0x4080000000000000ull);
  EXPECT_EQ(FormatRange(*ParseRange("4000-8000")), "40-80");
  EXPECT_EQ(ParseRange("C0-")->begin, 0xc000000000000000ull);
}

TEST(ShardMapTest, MalformedRangesAreRefusedNamingThem) {
  for (const char* bad :
       {"4-80", "40", "40-80-c0", "zz-", "80-40", "40-40", "00-40", "-00", "0123456789abcdef01-"}) {
    auto r = ParseRange(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr(std::string("'") + bad + "'"))
        << r.status().message();
  }
}

TEST(ShardMapTest, GapsAndOverlapsAreRefusedNamingTheRanges) {
  EXPECT_THAT(ShardMap::Make(1, {"-40", "50-"}).status().message(),
              HasSubstr("gap between '-40' and '50-'"));
  EXPECT_THAT(ShardMap::Make(1, {"-40", "30-"}).status().message(),
              HasSubstr("ranges '-40' and '30-' overlap"));
  EXPECT_THAT(ShardMap::Make(1, {"40-"}).status().message(), HasSubstr("gap before '40-'"));
  EXPECT_THAT(ShardMap::Make(1, {"-40"}).status().message(), HasSubstr("gap after '-40'"));
  EXPECT_THAT(ShardMap::Make(1, {}).status().message(), HasSubstr("no ranges"));
  EXPECT_TRUE(ShardMap::Make(1, {"c0-", "-40", "80-c0", "40-80"}).ok());
}

TEST(ShardMapTest, KeysOnRangeBoundsGoToTheRangeThatStartsThere) {
  auto map = *ShardMap::Make(1, {"-40", "40-80", "80-c0", "c0-"});
  EXPECT_EQ(map.ShardFor(0).name, "-40");
  EXPECT_EQ(map.ShardFor(0x3fffffffffffffffull).name, "-40");
  EXPECT_EQ(map.ShardFor(0x4000000000000000ull).name, "40-80");
  EXPECT_EQ(map.ShardFor(0x7fffffffffffffffull).name, "40-80");
  EXPECT_EQ(map.ShardFor(0x8000000000000000ull).name, "80-c0");
  EXPECT_EQ(map.ShardFor(0xc000000000000000ull).name, "c0-");
  EXPECT_EQ(map.ShardFor(~uint64_t{0}).name, "c0-");
  EXPECT_TRUE(ParseRange("c0-")->Contains(~uint64_t{0}));
  EXPECT_FALSE(ParseRange("-40")->Contains(0x4000000000000000ull));
}

TEST(ShardMapTest, CompareAndSwapNeedsTheCurrentEpoch) {
  ShardMapHolder holder(*ShardMap::Make(3, {"-"}));
  EXPECT_EQ(holder.CompareAndSwap(2, *ShardMap::Make(4, {"-80", "80-"})).code(), Code::kConflict);
  EXPECT_EQ(holder.CompareAndSwap(3, *ShardMap::Make(3, {"-80", "80-"})).code(), Code::kInvalid);
  EXPECT_TRUE(holder.CompareAndSwap(3, *ShardMap::Make(4, {"-80", "80-"})).ok());
  EXPECT_EQ(holder.Current()->epoch(), 4u);
  EXPECT_EQ(holder.Current()->shards().size(), 2u);
}

// A bus with one memory store per shard behind a guard, and a shard router in front.
class ShardedCluster {
 public:
  ShardedCluster(const std::vector<std::string>& ranges,
                 std::map<std::string, std::string> shard_keys = {}, uint64_t epoch = 1,
                 size_t max_shard_page = 1000, size_t max_reply_bytes = 16 << 20)
      : shard_keys_(shard_keys),
        authority_(std::make_shared<ShardMapHolder>(*ShardMap::Make(epoch, ranges, shard_keys))),
        router_map_(std::make_shared<ShardMapHolder>(*ShardMap::Make(epoch, ranges, shard_keys))),
        ids_(std::make_shared<store::IdGenerator>(1)) {
    for (const auto& range : ranges) AddShard(FormatRange(*ParseRange(range)));
    EXPECT_TRUE(
        bus.Add("store:*",
                MakeShardRouter({router_map_, Refresher(), ids_, max_shard_page, max_reply_bytes}),
                "router")
            .ok());
  }

  void AddShard(const std::string& name) {
    store::StoreOptions options;
    options.shard_key_fields = shard_keys_;
    options.purge_interval_ms = 0;
    std::shared_ptr<store::EntityStore> s = std::move(store::NewMemoryStore(options)).value();
    stores[name] = s;
    // The store's route, then the guard over it (a decorator: it calls the store as Prior).
    std::string pattern = fmt::format("store:*,shard:\"{}\"", name);
    EXPECT_TRUE(bus.Add(pattern, store::MakeStoreService(s), "store " + name).ok());
    EXPECT_TRUE(
        bus.Override(pattern, MakeShardGuard({name, authority_, Refresher()}), "shard " + name)
            .ok());
  }

  MapRefresher Refresher() {
    return [authority = authority_]() -> Result<ShardMap> { return *authority->Current(); };
  }

  Result<Message> Act(const std::string& json) {
    return bus.ActAndWait(std::move(ParseMessage(json)).value());
  }

  std::map<std::string, std::string> shard_keys_;
  std::shared_ptr<ShardMapHolder> authority_;   // what shards know (the "truth")
  std::shared_ptr<ShardMapHolder> router_map_;  // what the router believes
  std::shared_ptr<store::IdGenerator> ids_;
  std::map<std::string, std::shared_ptr<store::EntityStore>> stores;
  Bus bus;
};

rapidjson::Document Json(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  return d;
}

TEST(ShardRouterTest, KeyedMessagesLandOnTheShardOwningTheirKsid) {
  ShardedCluster c({"-40", "40-80", "80-c0", "c0-"});
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(
        c.Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"e{}"}}}})", i)).ok());
  }
  for (const auto& [name, s] : c.stores) {
    auto range = *ParseRange(name);
    ASSERT_TRUE(s->ScanRange("entry", store::KsidRange{}, [&](const store::EntityRecord& r) {
                   EXPECT_TRUE(range.Contains(store::Ksid(r.id))) << r.id << " on " << name;
                   return true;
                 }).ok());
  }
  auto loaded = c.Act(R"({"store":"load","kind":"entry","id":"e7"})");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(std::string(Json(*loaded->GetObjectJson("ent"))["id"].GetString()), "e7");
}

TEST(ShardRouterTest, SavesWithoutAnIdGetOneBeforeRouting) {
  ShardedCluster c({"-80", "80-"});
  auto saved = c.Act(R"({"store":"save","kind":"entry","ent":{"text":"hi"}})");
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  std::string id = Json(*saved->GetObjectJson("ent"))["id"].GetString();
  EXPECT_TRUE(c.Act(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id)).ok());
}

TEST(ShardRouterTest, AStaleRouterIsCorrectedWithoutAClientVisibleError) {
  ShardedCluster c({"-80", "80-"});
  // The authority moves to epoch 2 with four shards; the router still believes epoch 1.
  c.AddShard("-40");
  c.AddShard("40-80");
  ASSERT_TRUE(c.authority_->CompareAndSwap(1, *ShardMap::Make(2, {"-40", "40-80", "80-"})).ok());
  for (int i = 0; i < 50; ++i) {
    auto r = c.Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"s{}"}}}})", i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(c.router_map_->Current()->epoch(), 2u);
  EXPECT_EQ(c.stores["-80"]->feed().LastSequence(), 0u) << "the retired shard took writes";
}

// A bulk save or load planned on the old map (two shards) while a split cut over to three: the
// stale shard refuses its part, the router places those items again on the new map and sends
// them once (a second send of the items already stored would apply them twice; a plan indexed by
// the old map's shards read past its end on the new one).
TEST(ShardRouterTest, ABulkSaveAndLoadPlannedOnAMapThatMovedArePlacedAgainAndAppliedOnce) {
  ShardedCluster c({"-80", "80-"});
  ASSERT_TRUE(c.Act(R"({"store":"save","kind":"entry","ent":{"id":"warm"}})").ok());
  c.AddShard("-40");
  c.AddShard("40-80");
  ASSERT_TRUE(c.authority_->CompareAndSwap(1, *ShardMap::Make(2, {"-40", "40-80", "80-"})).ok());
  std::string ents = "[";
  for (int i = 0; i < 40; ++i) ents += fmt::format(R"({}{{"id":"b{}"}})", i ? "," : "", i);
  auto saved = c.Act(R"({"store":"save","kind":"entry","ents":)" + ents + "]}");
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  auto items = Json(*saved->GetArrayJson("items"));
  ASSERT_EQ(items.Size(), 40u);
  for (rapidjson::SizeType i = 0; i < items.Size(); ++i) {
    ASSERT_TRUE(items[i].HasMember("ent")) << i << ": " << ToJsonText(items[i]);
    EXPECT_EQ(items[i]["ent"]["version"].GetUint64(), 1u) << "b" << i << " applied twice";
  }
  EXPECT_EQ(c.router_map_->Current()->epoch(), 2u);
  uint64_t records = 0;
  for (const auto& [name, store] : c.stores) records += store->feed().LastSequence();
  EXPECT_EQ(records, 41u) << "one change record per save, the warm-up's included";
  EXPECT_EQ(c.stores["-80"]->feed().LastSequence(), 0u) << "the retired shard took writes";

  // The same for a bulk load planned on a map that moves under it.
  ASSERT_TRUE(c.authority_->CompareAndSwap(2, *ShardMap::Make(3, {"-40", "40-80", "80-"})).ok());
  c.AddShard("80-c0");
  c.AddShard("c0-");
  ASSERT_TRUE(
      c.authority_->CompareAndSwap(3, *ShardMap::Make(4, {"-40", "40-80", "80-c0", "c0-"})).ok());
  auto loaded = c.Act(R"({"store":"load","kind":"entry","ids":["b0","b1","b2","b3"]})");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(Json(*loaded->GetArrayJson("items")).Size(), 4u);
}

TEST(ShardGuardTest, MessagesWithAPastOrFutureEpochOrAForeignKeyAreRefused) {
  ShardedCluster c({"-80", "80-"}, {}, 5);
  // Find an id owned by -80.
  std::string id;
  for (int i = 0; id.empty(); ++i) {
    if (store::Ksid("k" + std::to_string(i)) < 0x8000000000000000ull) id = "k" + std::to_string(i);
  }
  auto direct = [&](uint64_t epoch, const std::string& shard) {
    return c.Act(fmt::format(
        R"({{"store":"save","kind":"entry","shard":"{}","epoch":{},"ent":{{"id":"{}"}}}})", shard,
        epoch, id));
  };
  auto past = direct(4, "-80");
  EXPECT_EQ(past.status().code(), Code::kWrongShard);
  EXPECT_THAT(past.status().details_json(), HasSubstr("\"epoch\":5"));
  EXPECT_EQ(direct(6, "-80").status().code(), Code::kWrongShard);
  EXPECT_EQ(direct(5, "80-").status().code(), Code::kWrongShard);
  EXPECT_TRUE(direct(5, "-80").ok());
  EXPECT_EQ(c.stores["80-"]->feed().LastSequence(), 0u);
}

TEST(ShardRouterTest, APerKindShardKeyKeepsOneUsersEntitiesOnOneShard) {
  ShardedCluster c({"-40", "40-80", "80-c0", "c0-"}, {{"timeline", "user"}});
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        c.Act(fmt::format(R"({{"store":"save","kind":"timeline","ent":{{"user":"u{}","n":{}}}}})",
                          i % 5, i))
            .ok());
  }
  for (int u = 0; u < 5; ++u) {
    int holders = 0;
    for (const auto& [name, s] : c.stores) {
      auto page = s->List(
          store::Query{.kind = "timeline", .filters = {{"user", fmt::format("\"u{}\"", u)}}});
      ASSERT_TRUE(page.ok());
      holders += !page->items.empty();
      if (!page->items.empty()) {
        EXPECT_EQ(page->items.size(), 20u);
      }
    }
    EXPECT_EQ(holders, 1) << "user u" << u;
  }
  // Missing shard key: refused naming it.
  auto missing = c.Act(R"({"store":"save","kind":"timeline","ent":{"n":1}})");
  EXPECT_EQ(missing.status().code(), Code::kInvalid);
  EXPECT_THAT(missing.status().message(), HasSubstr("ent.user"));
  // Load by id: with the shard key as a property, or without (asks every shard).
  auto listed = c.Act(R"({"store":"list","kind":"timeline","q":{"user":"u3","limit$":1}})");
  ASSERT_TRUE(listed.ok());
  std::string id = Json(*listed->GetArrayJson("items"))[0]["id"].GetString();
  EXPECT_TRUE(
      c.Act(fmt::format(R"({{"store":"load","kind":"timeline","id":"{}","user":"u3"}})", id)).ok());
  EXPECT_TRUE(c.Act(fmt::format(R"({{"store":"load","kind":"timeline","id":"{}"}})", id)).ok());
  EXPECT_EQ(c.Act(R"({"store":"load","kind":"timeline","id":"nope"})").status().code(),
            Code::kNotFound);
}

TEST(ShardRouterTest, BulkSavesAndLoadsAreSplitPerShardAndAnsweredInOrder) {
  ShardedCluster c({"-40", "40-80", "80-c0", "c0-"});
  auto saved = c.Act(
      R"({"store":"save","kind":"entry","ents":[{"id":"a"},{"id":"b"},7,{"id":"c"},{"text":"no id"}]})");
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  auto items = Json(*saved->GetArrayJson("items"));
  ASSERT_EQ(items.Size(), 5u);
  EXPECT_EQ(std::string(items[0]["ent"]["id"].GetString()), "a");
  EXPECT_EQ(std::string(items[1]["ent"]["id"].GetString()), "b");
  EXPECT_TRUE(items[2].HasMember("error$"));
  EXPECT_EQ(std::string(items[3]["ent"]["id"].GetString()), "c");
  ASSERT_TRUE(items[4].HasMember("ent"));
  std::string generated = items[4]["ent"]["id"].GetString();
  auto loaded = c.Act(
      fmt::format(R"({{"store":"load","kind":"entry","ids":["c","zz","a","{}"]}})", generated));
  ASSERT_TRUE(loaded.ok());
  auto got = Json(*loaded->GetArrayJson("items"));
  ASSERT_EQ(got.Size(), 4u);
  EXPECT_EQ(std::string(got[0]["ent"]["id"].GetString()), "c");
  EXPECT_EQ(std::string(got[1]["error$"]["code"].GetString()), "not_found");
  EXPECT_EQ(std::string(got[2]["ent"]["id"].GetString()), "a");
  EXPECT_EQ(std::string(got[3]["ent"]["id"].GetString()), generated);
}

TEST(ShardRouterTest, AFailingShardFailsTheListNamingItUnlessPartialIsAsked) {
  ShardedCluster c({"-80", "80-"});
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(
        c.Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"p{}"}}}})", i)).ok());
  ASSERT_TRUE(c.bus
                  .Override("store:*,shard:\"80-\"",
                            MakeSyncHandler([](Message, const Context&) -> Result<Message> {
                              return Status::Unavailable("disk gone");
                            }))
                  .ok());
  auto failed = c.Act(R"({"store":"list","kind":"entry"})");
  EXPECT_EQ(failed.status().code(), Code::kUnavailable);
  EXPECT_THAT(failed.status().message(), HasSubstr("shard 80-"));
  auto partial = c.Act(R"({"store":"list","kind":"entry","partial":true})");
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(*partial->GetArrayJson("missing"), R"(["80-"])");
  EXPECT_GT(Json(*partial->GetArrayJson("items")).Size(), 0u);
}

TEST(ShardRouterTest, RemoveByQueryReachesEveryShard) {
  ShardedCluster c({"-40", "40-80", "80-c0", "c0-"});
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(
        c.Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"r{}","odd":{}}}}})", i,
                          i % 2 ? "true" : "false"))
            .ok());
  }
  EXPECT_EQ(c.Act(R"({"store":"remove","kind":"entry","q":{"odd":true}})").status().code(),
            Code::kInvalid);
  auto removed = c.Act(R"({"store":"remove","kind":"entry","q":{"odd":true},"all":true})");
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(removed->GetUint("count"), 20u);
  EXPECT_EQ(Json(*removed->GetArrayJson("items")).Size(), 20u);
  EXPECT_EQ(Json(*c.Act(R"({"store":"list","kind":"entry"})")->GetArrayJson("items")).Size(), 20u);
}

// Each shard removes by query within the share of max_reply_bytes the router measured for it, or
// nothing: a shard whose matches grew past its share keeps them, and the error says which shard
// failed and what the others removed.
TEST(ShardRouterTest, AShardWhosePartOutgrewItsShareRemovesNothingAndTheErrorSaysSo) {
  ShardedCluster c({"-80", "80-"}, {}, 1, 1000, 20000);  // 15,904 bytes of removed entities
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(
        c.Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"g{}","p":"{}"}}}})", i,
                          std::string(300, 'x')))
            .ok());
  const size_t high = c.stores["80-"]->List({"entry"})->items.size();
  ASSERT_GT(high, 5u);
  // 80- answers the measuring list as if it held nothing: its share is then too small.
  auto measured_empty = MakeHandler([](Message m, const Context& context, ReplyFn reply) {
    if (m.GetString("store") != "list") return context.Prior(std::move(m), std::move(reply));
    Message none;
    none.SetArrayJson("items", "[]");
    reply(std::move(none));
  });
  ASSERT_TRUE(c.bus.Override("store:*,shard:\"80-\"", measured_empty).ok());
  auto removed = c.Act(R"({"store":"remove","kind":"entry","all":true})");
  ASSERT_FALSE(removed.ok());
  EXPECT_THAT(removed.status().message(), HasSubstr("shard 80-"));
  EXPECT_THAT(removed.status().details_json(), HasSubstr(R"("failed":["80-"])"));
  EXPECT_THAT(removed.status().details_json(),
              HasSubstr(fmt::format(R"("removed":{})", 40 - high)));
  EXPECT_EQ(c.stores["80-"]->List({"entry"})->items.size(), high) << "80- removed past its share";
  EXPECT_TRUE(c.stores["-80"]->List({"entry"})->items.empty());
}

// Property test: any list over 4 shards equals the same list over one unsharded store,
// page by page, following cursors. Shards answer pages of at most `shard_page` items.
void ExpectListsEqualOneUnshardedStore(size_t shard_page, int max_skip) {
  ShardedCluster sharded({"-40", "40-80", "80-c0", "c0-"}, {}, 1, shard_page);
  ShardedCluster single({"-"});
  std::mt19937 rng(99);
  const char* users[] = {"ann", "bob", "cy"};
  for (int i = 0; i < 300; ++i) {
    std::string score = rng() % 10 == 0 ? "null" : std::to_string(rng() % 40);
    std::string ent =
        fmt::format(R"({{"id":"i{}","user":"{}","score":{},"t":"{}"}})", i, users[rng() % 3], score,
                    std::string(1, static_cast<char>('a' + rng() % 26)));
    if (rng() % 7 == 0)
      ent = fmt::format(R"({{"id":"i{}","user":"{}"}})", i, users[rng() % 3]);  // no score
    std::string save = fmt::format(R"({{"store":"save","kind":"entry","ent":{}}})", ent);
    ASSERT_TRUE(sharded.Act(save).ok());
    ASSERT_TRUE(single.Act(save).ok());
  }
  for (int trial = 0; trial < 60; ++trial) {
    std::string q = "{";
    auto add = [&](const std::string& member) { q += (q.size() > 1 ? "," : "") + member; };
    if (rng() % 2) add(fmt::format(R"("user":"{}")", users[rng() % 3]));
    if (rng() % 3)
      add(fmt::format(R"("sort$":{{"{}":{}}})", rng() % 2 ? "score" : "t", rng() % 2 ? "1" : "-1"));
    if (rng() % 8) add(fmt::format(R"("limit$":{})", 1 + rng() % 25));
    if (rng() % 2) add(fmt::format(R"("skip$":{})", rng() % max_skip));
    if (rng() % 4 == 0) add(R"("fields$":["score"])");
    int pages = 0;
    std::string cursor;
    while (pages++ < 200) {
      std::string with_cursor =
          q + (cursor.empty() ? "" : fmt::format(R"(,"cursor$":"{}")", cursor)) + "}";
      std::string list = fmt::format(R"({{"store":"list","kind":"entry","q":{}}})", with_cursor);
      auto a = sharded.Act(list);
      auto b = single.Act(list);
      ASSERT_TRUE(a.ok()) << list << ": " << a.status().ToString();
      ASSERT_TRUE(b.ok()) << list << ": " << b.status().ToString();
      ASSERT_EQ(*a->GetArrayJson("items"), *b->GetArrayJson("items")) << list;
      ASSERT_EQ(a->Has("cursor"), b->Has("cursor")) << list;
      if (!a->Has("cursor")) break;
      cursor = std::string(*a->GetString("cursor"));
      // The single store's cursor and ours name the same position, so either works on both.
      ASSERT_EQ(cursor, std::string(*b->GetString("cursor"))) << list;
    }
  }
}

TEST(ScatterGather, ListsOverFourShardsEqualOneUnshardedStore) {
  ExpectListsEqualOneUnshardedStore(1000, 10);
}

// Pages of 7 items: every list merges many pages of each shard, and skip$ crosses them.
TEST(ScatterGather, ListsMergedFromSmallShardPagesEqualOneUnshardedStore) {
  ExpectListsEqualOneUnshardedStore(7, 320);
}

// A spy over every shard's store route: the largest `limit$` any shard was asked, and the most
// items any one shard answer carried.
struct PageSpy {
  std::atomic<int64_t> largest_ask{0};
  std::atomic<size_t> largest_answer{0};
  std::atomic<int> lists{0};
};

std::shared_ptr<PageSpy> SpyOnLists(ShardedCluster& c) {
  auto spy = std::make_shared<PageSpy>();
  for (const auto& [name, store] : c.stores) {
    auto handler = MakeHandler([spy](Message m, const Context& context, ReplyFn reply) {
      if (m.GetString("store") != "list") return context.Prior(std::move(m), std::move(reply));
      ++spy->lists;
      auto q = Json(m.GetObjectJson("q").value_or("{}"));
      int64_t asked = q.HasMember("limit$") ? q["limit$"].GetInt64() : INT64_MAX;
      int64_t seen = spy->largest_ask.load();
      while (asked > seen && !spy->largest_ask.compare_exchange_weak(seen, asked)) {
      }
      context.Prior(std::move(m), [spy, reply](Result<Message> r) {
        if (r.ok()) {
          size_t n = Json(r->GetArrayJson("items").value_or("[]")).Size();
          size_t most = spy->largest_answer.load();
          while (n > most && !spy->largest_answer.compare_exchange_weak(most, n)) {
          }
        }
        reply(std::move(r));
      });
    });
    EXPECT_TRUE(c.bus.Override(fmt::format("store:*,shard:\"{}\"", name), handler).ok());
  }
  return spy;
}

// However large skip$ is, no shard is asked for more than one default page at a time: the
// router merges pages as they come and discards the skipped items in order.
TEST(ScatterGather, ALargeSkipAsksNoShardForMoreThanOnePage) {
  ShardedCluster sharded({"-40", "40-80", "80-c0", "c0-"});
  ShardedCluster single({"-"});
  for (int i = 0; i < 4400; ++i) {  // about 1100 a shard: more than one page each
    std::string save = fmt::format(
        R"({{"store":"save","kind":"entry","ent":{{"id":"k{}","n":{}}}}})", i, (i * 7919) % 4400);
    ASSERT_TRUE(sharded.Act(save).ok());
    ASSERT_TRUE(single.Act(save).ok());
  }
  auto spy = SpyOnLists(sharded);
  for (const char* q : {R"({"skip$":4200,"limit$":10})", R"({"skip$":4390,"sort$":{"n":-1}})",
                        R"({"skip$":2500,"limit$":1200,"sort$":{"n":1}})"}) {
    std::string list = fmt::format(R"({{"store":"list","kind":"entry","q":{}}})", q);
    auto a = sharded.Act(list);
    auto b = single.Act(list);
    ASSERT_TRUE(a.ok()) << list << ": " << a.status().ToString();
    ASSERT_TRUE(b.ok()) << list << ": " << b.status().ToString();
    EXPECT_EQ(*a->GetArrayJson("items"), *b->GetArrayJson("items")) << list;
    EXPECT_EQ(a->GetString("cursor"), b->GetString("cursor")) << list;
  }
  EXPECT_GT(spy->lists.load(), 12) << "the skipped items were read page by page";
  EXPECT_LE(spy->largest_ask.load(), store::kDefaultListLimit);
  EXPECT_LE(spy->largest_answer.load(), static_cast<size_t>(store::kDefaultListLimit));
}
}  // namespace
// Names a client or a config chose (a shard property, a shard name with an owner tag) reach error
// details escaped: every reply stays valid JSON and says the name back as it was.
// The guard is a decorator: an override of the store's route that reaches the store as Prior,
// holding writes at its write gate; another decorator stacks over it by overriding again.
TEST(ShardGuardTest, TheGuardOverridesTheStoreRouteAndGatesWritesItPassesToPrior) {
  auto map = std::make_shared<ShardMapHolder>(*ShardMap::Make(1, {"-"}));
  auto gate = std::make_shared<WriteGate>();
  store::StoreOptions options;
  options.purge_interval_ms = 0;
  std::shared_ptr<store::EntityStore> s = std::move(store::NewMemoryStore(options)).value();
  auto msg = [](std::string_view op, std::string_view id) {
    Message m;
    m.SetString("store", op).SetString("kind", "entry").SetString("shard", "-").SetInt("epoch", 1);
    if (op == "save") {
      m.SetObjectJson("ent", fmt::format(R"({{"id":"{}"}})", id));
    } else {
      m.SetString("id", id);
    }
    return m;
  };
  Bus alone;  // nothing under the guard: it has no prior to call
  ASSERT_TRUE(alone.Add("store:*", MakeShardGuard({"-", map, nullptr, gate})).ok());
  auto nothing = alone.ActAndWait(msg("load", "a"));
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.status().code(), Code::kNoRoute) << nothing.status().ToString();

  Bus bus;
  ASSERT_TRUE(bus.Add("store:*", store::MakeStoreService(s), "store").ok());
  ASSERT_TRUE(bus.Override("store:*", MakeShardGuard({"-", map, nullptr, gate}), "guard").ok());
  auto passed = std::make_shared<std::atomic<int>>(0);
  ASSERT_TRUE(bus.Override("store:*",
                           MakeHandler([passed](Message m, const Context& c, ReplyFn reply) {
                             ++*passed;
                             c.Prior(std::move(m), std::move(reply));
                           }),
                           "counter")
                  .ok());
  ASSERT_TRUE(bus.ActAndWait(msg("save", "a")).ok());
  gate->Close();
  std::promise<Result<Message>> held;
  auto answer = held.get_future();
  bus.Act(msg("save", "b"), [&held](Result<Message> r) { held.set_value(std::move(r)); });
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout)
      << "the write passed a closed gate";
  EXPECT_EQ(gate->held(), 1u);
  gate->Open();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(answer.get().ok());
  EXPECT_TRUE(bus.ActAndWait(msg("load", "b")).ok());
  gate->Retire();
  auto moved = bus.ActAndWait(msg("save", "c"));
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.status().code(), Code::kWrongShard) << moved.status().ToString();
  EXPECT_EQ(passed->load(), 4);  // save a, save b, load b, save c: each through the stack
  EXPECT_FALSE(s->Load("entry", "c").ok()) << "a write reached the store past a retired gate";
}

TEST(ShardErrors, NamesWithQuotesAndControlCharactersGiveValidJson) {
  const std::string odd = "-80@a\"b\\c\x01";
  auto round_trip = [](Result<Message> reply) {
    std::string wire = ToJson(ToWire(std::move(reply)));
    rapidjson::Document doc;
    doc.Parse(wire.data(), wire.size());
    EXPECT_FALSE(doc.HasParseError()) << wire;
    return doc;
  };
  ShardedCluster c({"-80", "80-"});
  Message routed;
  routed.SetString("store", "load").SetString("kind", "entry").SetString("id", "1");
  routed.SetString("shard", odd);
  auto doc = round_trip(c.bus.ActAndWait(std::move(routed)));
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("error$"));
  EXPECT_EQ(std::string(doc["error$"]["details"]["shard"].GetString()), odd);

  // A guard configured with a name the map does not know refuses with that name in its details.
  Bus bus;
  ASSERT_TRUE(bus.Add("store:*", store::MakeStoreService(c.stores.begin()->second)).ok());
  ASSERT_TRUE(bus.Override("store:*", MakeShardGuard({odd, c.authority_, c.Refresher()})).ok());
  Message direct;
  direct.SetString("store", "load").SetString("kind", "entry").SetString("id", "1");
  direct.SetString("shard", odd).SetInt("epoch", 1);
  doc = round_trip(bus.ActAndWait(std::move(direct)));
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("error$")) << "the guard let it through";
  EXPECT_EQ(std::string(doc["error$"]["details"]["shard"].GetString()), odd);
}

}  // namespace shardkit::shard
