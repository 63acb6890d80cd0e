// Conformance: saving, loading, updating, removing, TTL, persistence, shard keys and range scans.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

TYPED_TEST_SUITE(store_conformance, StoreBackends, BackendName);

TYPED_TEST(store_conformance, SaveThenLoadRoundTripsEveryJsonValueType) {
  const std::string ent =
      R"({"s":"h\u00e9llo \u2713 \ud83d\ude00 日本","esc":"q\"b\\s/n\nt\tc\u0001z\u0000end",)"
      R"("u64":18446744073709551615,"i64":-9223372036854775808,"zero":0,"neg":-1,)"
      R"("pi":3.141592653589793,"tiny":1e-300,"tenth":0.1,"big":1.7976931348623157e308,)"
      R"("t":true,"f":false,"n":null,"nested":{"a":{"b":[1,{"c":"d"}]}},)"
      R"("arr":[1,"two",3.5,null,[],{}],"empty_obj":{},"empty_arr":[]})";
  std::string saved = this->MustSave("thing", ent, "x1");
  Result<std::string> loaded = this->store().Load("thing", "x1");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, saved);
  EXPECT_NE(loaded->find("18446744073709551615"), std::string::npos);
  EXPECT_NE(loaded->find("-9223372036854775808"), std::string::npos);
  EXPECT_EQ(loaded->rfind(R"({"id":"x1","version":1,)", 0), 0u) << *loaded;

  rapidjson::Document expected = Json(ent);
  rapidjson::Document actual = Json(*loaded);
  for (auto it = expected.MemberBegin(); it != expected.MemberEnd(); ++it) {
    ASSERT_TRUE(actual.HasMember(it->name)) << it->name.GetString();
    EXPECT_TRUE(actual[it->name] == it->value) << it->name.GetString();
  }
  EXPECT_EQ(actual["u64"].GetUint64(), 18446744073709551615ull);
  EXPECT_EQ(actual["i64"].GetInt64(), INT64_MIN);
  EXPECT_EQ(actual["tenth"].GetDouble(), 0.1);
  EXPECT_EQ(std::string(actual["esc"].GetString(), actual["esc"].GetStringLength()),
            std::string("q\"b\\s/n\nt\tc\x01z\0end", 17));
}

TYPED_TEST(store_conformance, LoadInPlaceSeesWhatLoadRecordReturns) {
  this->MustSave("thing", R"({"a":1})", "kept");
  this->MustSave("thing", R"({"a":2})", "kept");
  ASSERT_TRUE(this->store().Save({"thing", "brief", R"({"b":1})", std::nullopt, false, 2}).ok());
  int calls = 0;
  auto view_of = [&](std::string_view id, EntityRecord& out) {
    return this->store().LoadInPlace("thing", id, [&](const EntityView& row) {
      ++calls;
      out.value = std::string(row.value);
      out.version = row.version;
      out.expires_at_ms = row.expires_at_ms;
    });
  };
  for (std::string_view id : {"kept", "brief"}) {
    EntityRecord seen;
    ASSERT_TRUE(view_of(id, seen).ok()) << id;
    Result<EntityRecord> record = this->store().LoadRecord("thing", id);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_EQ(seen.value, record->value);
    EXPECT_EQ(seen.version, record->version);
    EXPECT_EQ(seen.expires_at_ms, record->expires_at_ms);
  }
  EXPECT_EQ(calls, 2);
  EntityRecord unused;
  EXPECT_EQ(view_of("absent", unused).code(), Code::kNotFound);
  EXPECT_EQ(view_of("", unused).code(), Code::kInvalid);
  this->clock_.Advance(2'000);  // "brief" has expired, not yet purged
  EXPECT_EQ(view_of("brief", unused).code(), Code::kNotFound);
  EXPECT_EQ(calls, 2);  // never called without a live entity
}

// A save reads the version and expiry of the row it replaces: after a batch larger than the write
// set the store keeps between saves, after an expiry, and under an expected version.
TYPED_TEST(store_conformance, ASaveFindsTheRowItReplaces) {
  std::vector<SaveRequest> batch;
  for (int i = 0; i < 40; ++i)
    batch.push_back({"thing", "b" + std::to_string(i), R"({"i":)" + std::to_string(i) + "}"});
  for (const auto& saved : this->store().SaveBatch(batch)) ASSERT_TRUE(saved.ok());
  EXPECT_EQ(VersionOf(this->MustSave("thing", R"({"i":7})", "b7")), 2u);
  Result<std::string> stale = this->store().Save({"thing", "b7", "{}", uint64_t{1}});
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  Result<std::string> current = this->store().Save({"thing", "b7", R"({"x":1})", uint64_t{2}});
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  EXPECT_EQ(VersionOf(*current), 3u);
  EXPECT_EQ(this->store().Load("thing", "b7").value(), *current);
  // An expired row is absent to a save: versions start again, the row's expiry goes with it.
  ASSERT_TRUE(this->store().Save({"thing", "brief", "{}", std::nullopt, false, 1}).ok());
  this->clock_.Advance(2'000);
  EXPECT_TRUE(this->store().Save({"thing", "brief", "{}", std::nullopt, true}).ok());
  Result<EntityRecord> again = this->store().LoadRecord("thing", "brief");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->version, 1u);
  EXPECT_EQ(again->expires_at_ms, 0);
}

TYPED_TEST(store_conformance, GeneratedIdsAreUniqueAndIncreasing) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 300; ++i) {
    std::string saved = this->MustSave("thing", R"({"i":)" + std::to_string(i) + "}");
    ids.push_back(std::stoull(IdOf(saved)));
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), ids.size());
}

TYPED_TEST(store_conformance, SaveTakesTheEntityOwnIdWhenNoIdIsGiven) {
  std::string saved = this->MustSave("thing", R"({"id":"mine","a":1})");
  EXPECT_EQ(IdOf(saved), "mine");
  EXPECT_TRUE(this->store().Load("thing", "mine").ok());
}

TYPED_TEST(store_conformance, UpdateIncrementsVersionAndReplacesTheWholeEntity) {
  EXPECT_EQ(VersionOf(this->MustSave("thing", R"({"a":1,"b":2})", "u")), 1u);
  std::string second = this->MustSave("thing", R"({"a":3,"version":99})", "u");
  EXPECT_EQ(second, R"({"id":"u","version":2,"a":3})");
  EXPECT_EQ(*this->store().Load("thing", "u"), second);
  EXPECT_EQ(VersionOf(this->MustSave("thing", R"({})", "u")), 3u);
}

TYPED_TEST(store_conformance, ExpectedVersionMismatchIsConflictAndWritesNothing) {
  this->MustSave("thing", R"({"a":1})", "v");
  const uint64_t before = this->feed().LastSequence();
  SaveRequest r{"thing", "v", R"({"a":2})", 5, false, std::nullopt};
  Result<std::string> stale = this->store().Save(r);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  EXPECT_EQ(this->feed().LastSequence(), before);
  r.expected_version = 1;
  EXPECT_EQ(VersionOf(*this->store().Save(r)), 2u);
}

TYPED_TEST(store_conformance, ExpectedVersionOnAMissingEntityOnlyMatchesZero) {
  SaveRequest r{"thing", "new", R"({})", 1, false, std::nullopt};
  Result<std::string> missing = this->store().Save(r);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kConflict);
  r.expected_version = 0;
  EXPECT_EQ(VersionOf(*this->store().Save(r)), 1u);
  Result<std::string> again = this->store().Save(r);  // 0 now means "only if absent": it exists
  EXPECT_EQ(again.status().code(), Code::kConflict);
}

TYPED_TEST(store_conformance, InsertOnlyConflictsWhenTheIdExists) {
  SaveRequest r{"thing", "i", R"({"a":1})", std::nullopt, true, std::nullopt};
  ASSERT_TRUE(this->store().Save(r).ok());
  Result<std::string> dup = this->store().Save(r);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), Code::kConflict);
  EXPECT_EQ(VersionOf(*this->store().Load("thing", "i")), 1u);
}

TYPED_TEST(store_conformance, LoadOfAMissingEntityIsNotFound) {
  this->MustSave("thing", R"({})", "here");
  EXPECT_EQ(this->store().Load("thing", "absent").status().code(), Code::kNotFound);
  EXPECT_EQ(this->store().Load("other", "here").status().code(), Code::kNotFound);
  std::vector<Result<std::string>> batch =
      this->store().LoadBatch({{"thing", "here"}, {"thing", "absent"}, {"", "x"}});
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_TRUE(batch[0].ok());
  EXPECT_EQ(batch[1].status().code(), Code::kNotFound);
  EXPECT_EQ(batch[2].status().code(), Code::kInvalid);
}

TYPED_TEST(store_conformance, RemoveReturnsTheEntityAndItIsGone) {
  std::string saved = this->MustSave("thing", R"({"a":1})", "r");
  Result<std::string> removed = this->store().Remove("thing", "r");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, saved);
  EXPECT_EQ(this->store().Load("thing", "r").status().code(), Code::kNotFound);
  EXPECT_EQ(this->store().Remove("thing", "r").status().code(), Code::kNotFound);
  EXPECT_EQ(VersionOf(this->MustSave("thing", R"({})", "r")), 1u);  // a new life starts at 1
}

TYPED_TEST(store_conformance, SaveBatchWritesValidItemsAndFailsBadOnesAlone) {
  this->MustSave("thing", R"({})", "exists");
  const uint64_t before = this->feed().LastSequence();
  std::vector<SaveRequest> batch = {
      {"thing", "a", R"({"n":1})", std::nullopt, false, std::nullopt},
      {"thing", "b", R"({"n":)", std::nullopt, false, std::nullopt},   // malformed
      {"thing", "exists", R"({})", std::nullopt, true, std::nullopt},  // insert-only conflict
      {"thing", "c", R"({"n":3})", std::nullopt, false, std::nullopt},
      {"thing", "a", R"({"n":4})", std::nullopt, false, std::nullopt},  // sees the first item
  };
  std::vector<Result<std::string>> results = this->store().SaveBatch(batch);
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].status().code(), Code::kInvalid);
  EXPECT_EQ(results[2].status().code(), Code::kConflict);
  EXPECT_TRUE(results[3].ok());
  ASSERT_TRUE(results[4].ok());
  EXPECT_EQ(VersionOf(*results[4]), 2u);
  EXPECT_EQ(this->feed().LastSequence(), before + 3);
  EXPECT_EQ(IntField(*this->store().Load("thing", "a"), "n"), 4);
  EXPECT_EQ(this->store().Load("thing", "b").status().code(), Code::kNotFound);
}

TYPED_TEST(store_conformance, ExpiredEntitiesAreNeverReturned) {
  SaveRequest r{"thing", "t", R"({"a":1})", std::nullopt, false, 10};
  ASSERT_TRUE(this->store().Save(r).ok());
  this->MustSave("thing", R"({"a":1})", "forever");
  this->clock_.Advance(9'999);
  EXPECT_TRUE(this->store().Load("thing", "t").ok());
  this->clock_.Advance(1);
  EXPECT_EQ(this->store().Load("thing", "t").status().code(), Code::kNotFound);
  EXPECT_EQ(this->store().Remove("thing", "t").status().code(), Code::kNotFound);
  Result<ListPage> page = this->store().List({.kind = "thing"});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(IdOf(page->items[0]), "forever");
  int scanned = 0;
  ASSERT_TRUE(
      this->store().ScanRange("", {}, [&](const EntityRecord&) { return ++scanned, true; }).ok());
  EXPECT_EQ(scanned, 1);
  // Insert-only and expected version treat it as absent; a new save starts at version 1.
  SaveRequest again{"thing", "t", R"({"a":2})", 0, true, std::nullopt};
  EXPECT_EQ(VersionOf(*this->store().Save(again)), 1u);
}

TYPED_TEST(store_conformance, PurgeExpiredDeletesAndWritesExpireChanges) {
  for (const char* id : {"e1", "e2"}) {
    ASSERT_TRUE(this->store().Save({"thing", id, R"({})", std::nullopt, false, 5}).ok());
  }
  ASSERT_TRUE(this->store().Save({"thing", "late", R"({})", std::nullopt, false, 50}).ok());
  EXPECT_EQ(*this->store().PurgeExpired(), 0u);
  const uint64_t before = this->feed().LastSequence();
  this->clock_.Advance(5'000);
  EXPECT_EQ(*this->store().PurgeExpired(), 2u);
  EXPECT_EQ(*this->store().PurgeExpired(), 0u);
  auto changes = this->feed().ReadChanges(before + 1, 10);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 2u);
  std::set<std::string> expired;
  for (const ChangeRecord& c : *changes) {
    EXPECT_EQ(c.op, ChangeOp::kExpire);
    EXPECT_EQ(c.value, "");
    EXPECT_EQ(c.version, 1u);
    EXPECT_EQ(c.ksid, Ksid(c.id));
    expired.insert(c.id);
  }
  EXPECT_EQ(expired, (std::set<std::string>{"e1", "e2"}));
  EXPECT_TRUE(this->store().Load("thing", "late").ok());
}

TYPED_TEST(store_conformance, BackgroundPurgeRemovesExpiredEntitiesByItself) {
  this->options_.purge_interval_ms = 5;
  this->store_.reset();
  this->Open();
  ASSERT_TRUE(this->store().Save({"thing", "t", "{}", std::nullopt, false, 1}).ok());
  this->clock_.Advance(1'000);
  for (int i = 0; i < 400 && this->feed().LastSequence() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(this->feed().LastSequence(), 2u);
  EXPECT_EQ(this->feed().ReadChanges(2, 1)->front().op, ChangeOp::kExpire);
}

TYPED_TEST_SUITE(store_conformance_reopen, PersistentBackends, BackendName);

TYPED_TEST(store_conformance_reopen, DataFeedAndConsumersPersistAcrossReopen) {
  std::string a = this->MustSave("thing", R"({"a":1})", "a");
  this->MustSave("thing", R"({"b":1})", "b");
  ASSERT_TRUE(this->store().Remove("thing", "b").ok());
  ASSERT_TRUE(this->store().Save({"thing", "ttl", R"({})", std::nullopt, false, 1}).ok());
  ASSERT_TRUE(this->feed().RegisterConsumer("projection", 2).ok());
  this->Reopen();
  EXPECT_EQ(*this->store().Load("thing", "a"), a);
  EXPECT_EQ(this->store().Load("thing", "b").status().code(), Code::kNotFound);
  EXPECT_EQ(this->feed().LastSequence(), 4u);
  EXPECT_EQ(this->feed().Consumers(), (std::map<std::string, uint64_t>{{"projection", 2}}));
  this->clock_.Advance(1'000);
  EXPECT_EQ(*this->store().PurgeExpired(), 1u);  // the expiry index survived too
  // Trimming everything still remembers the last sequence.
  ASSERT_TRUE(this->feed().AdvanceConsumer("projection", 6).ok());
  EXPECT_EQ(*this->feed().TrimFeed(), 5u);  // 3 saves, a remove, an expire
  this->Reopen();
  EXPECT_EQ(this->feed().LastSequence(), 5u);
  EXPECT_EQ(this->feed().FirstRetainedSequence(), 6u);
  this->MustSave("thing", R"({})", "c");
  EXPECT_EQ(this->feed().ReadChanges(6, 10)->front().sequence, 6u);
}

TYPED_TEST(store_conformance, ShardKeyFieldPlacesEntitiesAndMovesThemWhenItChanges) {
  this->options_.shard_key_fields = {{"entry", "user"}};
  this->store_.reset();
  this->Open();
  std::string saved = this->MustSave("entry", R"({"user":"alice","text":"hi"})", "e1");
  EXPECT_EQ(*this->store().Load("entry", "e1"), saved);
  std::vector<uint64_t> ksids;
  ASSERT_TRUE(this->store()
                  .ScanRange("entry", {},
                             [&](const EntityRecord& r) {
                               ksids.push_back(r.ksid);
                               return true;
                             })
                  .ok());
  EXPECT_EQ(ksids, std::vector<uint64_t>{Ksid("alice")});

  const uint64_t before = this->feed().LastSequence();
  std::string moved = this->MustSave("entry", R"({"user":"bob","text":"hi"})", "e1");
  EXPECT_EQ(VersionOf(moved), 2u);
  auto changes = *this->feed().ReadChanges(before + 1, 10);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].op, ChangeOp::kRemove);
  EXPECT_EQ(changes[0].ksid, Ksid("alice"));
  EXPECT_EQ(changes[1].op, ChangeOp::kSave);
  EXPECT_EQ(changes[1].ksid, Ksid("bob"));
  int count = 0;
  ASSERT_TRUE(this->store()
                  .ScanRange("entry", {}, [&](const EntityRecord&) { return ++count, true; })
                  .ok());
  EXPECT_EQ(count, 1);
  ASSERT_TRUE(this->store().Remove("entry", "e1").ok());
  EXPECT_EQ(this->store().Load("entry", "e1").status().code(), Code::kNotFound);

  SaveRequest no_key{"entry", "e2", R"({"text":"no user"})", std::nullopt, false, std::nullopt};
  Result<std::string> missing = this->store().Save(no_key);
  EXPECT_EQ(missing.status().code(), Code::kInvalid);
  EXPECT_NE(missing.status().message().find("user"), std::string::npos);
}

// Loads run without the write lock; a shard-key change moves the row in one commit, so a load
// must find the entity before or after the move, never neither.
TYPED_TEST(store_conformance, LoadsDuringShardKeyChangesAlwaysFindTheEntity) {
  this->options_.shard_key_fields = {{"entry", "user"}};
  this->store_.reset();
  this->Open();
  this->MustSave("entry", R"({"user":"u0"})", "e1");
  std::atomic<bool> done{false};
  std::atomic<int> missed{0}, loads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!done) {
        if (!this->store().Load("entry", "e1").ok()) ++missed;
        ++loads;
      }
    });
  }
  for (int i = 1; i <= 400 || loads < 1000; ++i)
    this->MustSave("entry", R"({"user":"u)" + std::to_string(i % 7) + R"("})", "e1");
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(missed.load(), 0) << "of " << loads.load() << " loads";
  EXPECT_GT(loads.load(), 0);
}

TYPED_TEST(store_conformance, ScanRangeVisitsLiveKeysOfTheRangeInKeyOrder) {
  for (int i = 0; i < 40; ++i) {
    this->MustSave(i % 2 ? "a" : "b", "{}", "id" + std::to_string(i));
  }
  const KsidRange range{uint64_t{1} << 62, uint64_t{3} << 62};
  std::vector<std::pair<std::string, uint64_t>> seen;
  ASSERT_TRUE(this->store()
                  .ScanRange("", range,
                             [&](const EntityRecord& r) {
                               EXPECT_TRUE(range.Contains(r.ksid));
                               EXPECT_EQ(r.ksid, Ksid(r.id));
                               seen.emplace_back(r.kind, r.ksid);
                               return true;
                             })
                  .ok());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  size_t expected = 0;
  for (int i = 0; i < 40; ++i) expected += range.Contains(Ksid("id" + std::to_string(i)));
  EXPECT_EQ(seen.size(), expected);
  size_t only_a = 0;
  ASSERT_TRUE(this->store()
                  .ScanRange("a", range,
                             [&](const EntityRecord& r) {
                               EXPECT_EQ(r.kind, "a");
                               return ++only_a, true;
                             })
                  .ok());
  EXPECT_LT(only_a, expected);
}

TYPED_TEST(store_conformance, ConcurrentWritersAreSerialized) {
  constexpr int kThreads = 4, kWrites = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        this->MustSave("counter", R"({"t":)" + std::to_string(t) + "}", "shared");
        this->MustSave("thing", "{}");
        (void)this->store().Load("counter", "shared");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(VersionOf(*this->store().Load("counter", "shared")), uint64_t{kThreads * kWrites});
  EXPECT_EQ(this->feed().LastSequence(), uint64_t{2 * kThreads * kWrites});
}

}  // namespace
}  // namespace shardkit::store::testing
