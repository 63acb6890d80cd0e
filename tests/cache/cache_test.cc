// The entry cache: read-through, invalidation, single-flight, stale-refill prevention, negative
// caching, TTL, byte bound with LRU, lists, and the book's transition sequence under traffic (the
// feed follower: feed_follower_test.cc).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <array>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <shardkit/cache/entity_cache.h>
#include <shardkit/cache/feed_follower.h>
#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/service.h>

#include "cache_fixture.h"

namespace shardkit::cache {
namespace {

using test_support::CacheTest;
using test_support::M;
using test_support::TextOf;

TEST_F(CacheTest, LoadsAreReadThroughAndHitsSkipTheStore) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  int before = store_calls_;
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "one");
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "one");
  EXPECT_EQ(store_calls_ - before, 1);
  CacheStats s = cache_->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_DOUBLE_EQ(s.hit_ratio(), 0.5);
  auto stats = Act(R"({"sys":"cache","cmd":"stats"})");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->GetUint("hits"), 1u);
}

TEST_F(CacheTest, ALoadInFlightKeepsTheCacheAfterEveryOtherOwnerIsGoneAndNoLonger) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  std::shared_ptr<Handler> stats = cache_->StatsHandler();  // holds the cache weakly
  hold_loads_ = true;
  std::string got;
  bus_.Act(M(R"({"store":"load","kind":"entry","id":"a"})"),
           [&got](Result<Message> r) { got = TextOf(r); });
  bus_.Replace(Router());
  cache_.reset();
  EXPECT_TRUE(Alive(stats)) << "the load in flight holds the cache";
  Release();  // lands in the cache, which answers
  EXPECT_EQ(got, "one");
  EXPECT_FALSE(Alive(stats)) << "nothing holds the cache once it landed";
}

TEST_F(CacheTest, AStaleLoadInFlightAlsoKeepsTheCacheUntilItLands) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  std::shared_ptr<Handler> stats = cache_->StatsHandler();
  hold_loads_ = true;
  std::string got;
  bus_.Act(M(R"({"store":"load","kind":"entry","id":"a"})"),
           [&got](Result<Message> r) { got = TextOf(r); });
  cache_->Invalidate("entry", "a");  // the load in flight is detached: it will not fill
  bus_.Replace(Router());
  cache_.reset();
  EXPECT_TRUE(Alive(stats)) << "the detached load holds the cache";
  Release();
  EXPECT_EQ(got, "one");
  EXPECT_FALSE(Alive(stats)) << "nothing holds the cache once it landed";
}

TEST_F(CacheTest, ACacheWithNoLoadInFlightGoesWithItsLastOwner) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "one");
  std::shared_ptr<Handler> stats = cache_->StatsHandler();
  bus_.Replace(Router());
  cache_.reset();
  EXPECT_FALSE(Alive(stats)) << "no load was in flight: the cache went with its last owner";
}

TEST_F(CacheTest, WritesGoToTheStoreFirstThenInvalidate) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "one");
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"two"}})").ok());
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "two");
  ASSERT_TRUE(Act(R"({"store":"remove","kind":"entry","id":"a"})").ok());
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "error:not_found");
}

TEST_F(CacheTest, ConcurrentMissesForOneKeyCostOneStoreLoad) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  hold_loads_ = true;
  int before = store_calls_;
  std::vector<std::string> got(8);
  for (int i = 0; i < 8; ++i) {
    bus_.Act(M(R"({"store":"load","kind":"entry","id":"a"})"),
             [&got, i](Result<Message> r) { got[i] = TextOf(r); });
  }
  EXPECT_EQ(store_calls_ - before, 1);
  Release();
  for (const auto& g : got) EXPECT_EQ(g, "one");
  EXPECT_EQ(cache_->stats().coalesced, 7u);
}

TEST_F(CacheTest, ARefillThatRacesAWriteDoesNotResurrectTheOldValue) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"old"}})").ok());
  hold_loads_ = true;
  std::string first;
  bus_.Act(M(R"({"store":"load","kind":"entry","id":"a"})"),
           [&](Result<Message> r) { first = TextOf(r); });
  // The load has read "old" and is in flight; a write lands meanwhile.
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"new"}})").ok());
  Release();
  EXPECT_EQ(first, "old");  // it began before the write
  hold_loads_ = false;
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "new");
  EXPECT_EQ(cache_->stats().stale_refills_prevented, 1u);
}

TEST_F(CacheTest, LoadsInFlightDetachedByWritesAndAClearAnswerEveryCallerAndLeaveNothingBehind) {
  Install({});
  constexpr int kIds = 20;
  auto save = [&](int i, std::string_view text) {
    return Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"a{}","text":"{}"}}}})",
                           i, text));
  };
  auto load = [](int i) {
    return M(fmt::format(R"({{"store":"load","kind":"entry","id":"a{}"}})", i));
  };
  for (int i = 0; i < kIds; ++i) ASSERT_TRUE(save(i, "old").ok());
  hold_loads_ = true;
  std::vector<std::string> got(2 * kIds);
  for (int i = 0; i < 2 * kIds; ++i)  // two callers per id: one load each, the second waits
    bus_.Act(load(i % kIds), [&got, i](Result<Message> r) { got[i] = TextOf(r); });
  EXPECT_EQ(cache_->stats().coalesced, static_cast<uint64_t>(kIds));
  // Writes detach the loads of the first five ids; a clear detaches the rest.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(save(i, "new").ok());
  cache_->Clear();
  Release();
  for (int i = 0; i < 2 * kIds; ++i) EXPECT_EQ(got[i], "old") << i;  // read before the writes
  EXPECT_EQ(cache_->stats().stale_refills_prevented, static_cast<uint64_t>(kIds));
  EXPECT_EQ(cache_->stats().entries, 0u);
  // No load is left for a new caller to wait on: each id is loaded afresh, then served cached.
  hold_loads_ = false;
  const int before = store_calls_;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kIds; ++i)
      EXPECT_EQ(TextOf(bus_.ActAndWait(load(i))), i < 5 ? "new" : "old") << i;
  }
  EXPECT_EQ(store_calls_ - before, kIds);
}

TEST_F(CacheTest, NotFoundIsCachedBrieflyAndEntriesExpire) {
  Install({.ttl_ms = 10'000, .not_found_ttl_ms = 500});
  int before = store_calls_;
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"x"})")), "error:not_found");
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"x"})")), "error:not_found");
  EXPECT_EQ(store_calls_ - before, 1);
  clock_.Advance(501);
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"x"})")), "error:not_found");
  EXPECT_EQ(store_calls_ - before, 2);

  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  before = store_calls_;
  (void)Act(R"({"store":"load","kind":"entry","id":"a"})");
  (void)Act(R"({"store":"load","kind":"entry","id":"a"})");
  EXPECT_EQ(store_calls_ - before, 1);
  clock_.Advance(10'001);
  (void)Act(R"({"store":"load","kind":"entry","id":"a"})");
  EXPECT_EQ(store_calls_ - before, 2);
}

// The store's promise: an expired entity is absent for every read. The cache keeps an entry no
// longer than the entity it holds lives, however long its own ttl_ms.
TEST_F(CacheTest, AnEntitySavedWithATtlIsNotServedPastItsExpiry) {
  store::StoreOptions o;
  o.purge_interval_ms = 0;
  o.clock = &clock_;  // the store and the cache share one clock
  store_ = std::move(store::NewMemoryStore(o)).value();
  service_ = store::MakeStoreService(store_);
  Install({});  // ttl_ms 60 s
  ASSERT_TRUE(
      Act(R"({"store":"save","kind":"entry","ent":{"id":"t","text":"brief"},"ttl":1})").ok());
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"k","text":"kept"}})").ok());
  const auto load_t = R"({"store":"load","kind":"entry","id":"t"})";
  const auto load_k = R"({"store":"load","kind":"entry","id":"k"})";
  EXPECT_EQ(TextOf(Act(load_t)), "brief");
  EXPECT_EQ(TextOf(Act(load_k)), "kept");
  const int calls = store_calls_;
  EXPECT_EQ(TextOf(Act(load_t)), "brief");  // a hit while it lives
  EXPECT_EQ(store_calls_, calls);
  clock_.Advance(1'001);
  EXPECT_EQ(TextOf(Act(load_t)), "error:not_found");
  EXPECT_EQ(TextOf(Act(load_k)), "kept");  // an entity without a TTL stays cached
  EXPECT_EQ(store_calls_, calls + 1);
}

TEST_F(CacheTest, StoreErrorsAreNotCached) {
  Install({});
  fail_next_ = true;
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "error:internal");
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "error:not_found");
}

TEST_F(CacheTest, MemoryIsBoundedInBytesEvictingTheLeastRecentlyUsed) {
  Install({.max_bytes = 4096, .policy = CachePolicy::kLru});
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"k{}","text":"{}"}}}})", i,
                        std::string(100, 'x')))
            .ok());
  }
  for (int i = 0; i < 100; ++i) {
    (void)Act(fmt::format(R"({{"store":"load","kind":"entry","id":"k{}"}})", i));
    (void)Act(R"({"store":"load","kind":"entry","id":"k0"})");  // keep k0 hot
  }
  CacheStats s = cache_->stats();
  EXPECT_LE(s.bytes_used, 4096u);
  EXPECT_GT(s.evictions, 50u);
  int before = store_calls_;
  (void)Act(R"({"store":"load","kind":"entry","id":"k0"})");
  EXPECT_EQ(store_calls_, before) << "the most recently used entry was evicted";
}

TEST_F(CacheTest, ListsPassThroughUnlessCachedAndCachedListsDropOnWrites) {
  Install({});
  int before = store_calls_;
  (void)Act(R"({"store":"list","kind":"entry"})");
  (void)Act(R"({"store":"list","kind":"entry"})");
  EXPECT_EQ(store_calls_ - before, 2);
}

TEST_F(CacheTest, CachedListsAreDroppedOnAnyWriteToTheKind) {
  Install({.cache_lists = true});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  int before = store_calls_;
  auto first = Act(R"({"store":"list","kind":"entry"})");
  (void)Act(R"({"store":"list","kind":"entry"})");
  EXPECT_EQ(store_calls_ - before, 1);
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"b","text":"two"}})").ok());
  auto after = Act(R"({"store":"list","kind":"entry"})");
  ASSERT_TRUE(after.ok());
  EXPECT_NE(*first->GetArrayJson("items"), *after->GetArrayJson("items"));
}

TEST_F(CacheTest, AMessageAlreadyMarkedCacheTrueDoesNotLoop) {
  Install({});
  ASSERT_TRUE(bus_.Remove("store:*,kind:entry,cache:true").ok());
  auto r = Act(R"({"store":"load","kind":"entry","id":"a"})");
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
}

// The book's transition sequence, as whole-table swaps (what a config reload does), with a client
// sending throughout: no request fails.
TEST(CacheTransition, AddingTheCacheUnderTrafficFailsNoRequest) {
  store::StoreOptions o;
  o.purge_interval_ms = 0;
  std::shared_ptr<store::EntityStore> s = std::move(store::NewMemoryStore(o)).value();
  auto service = store::MakeStoreService(s);
  auto cache = MakeEntityCache();
  Bus bus;
  auto table = [&](bool plain_store, bool cache_true_store, bool with_cache) {
    Router r;
    if (plain_store && !with_cache) {
      EXPECT_TRUE(r.Add(*Pattern::Parse("store:*,kind:entry"), service).ok());
    }
    if (cache_true_store) {
      EXPECT_TRUE(r.Add(*Pattern::Parse("store:*,kind:entry,cache:true"), service).ok());
    }
    if (with_cache) {
      EXPECT_TRUE(r.Add(*Pattern::Parse("store:*,kind:entry"), cache).ok());
    }
    return r;
  };
  bus.Replace(table(true, false, false));
  ASSERT_TRUE(
      bus.ActAndWait(M(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"x"}})")).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, requests{0};
  std::thread client([&] {
    for (int i = 0; !stop && i < 1'000'000; ++i) {
      auto r = bus.ActAndWait(
          M(i % 5 == 0 ? R"({"store":"save","kind":"entry","ent":{"id":"a","text":"x"}})"
                       : R"({"store":"load","kind":"entry","id":"a"})"));
      ++requests;
      if (!r.ok()) ++failures;
    }
  });
  auto settle = [&] {
    int target = requests + 200;
    while (requests < target) std::this_thread::yield();
  };
  settle();
  bus.Replace(table(true, true, false));  // 1. the store serves both patterns
  settle();
  bus.Replace(table(true, true, true));  // 2. the cache takes store:*,kind:entry
  settle();
  bus.Replace(table(false, true, true));  // 3. the store serves only cache:true
  settle();
  stop = true;
  client.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(cache->stats().hits, 0u);
}

}  // namespace
}  // namespace shardkit::cache

namespace shardkit::cache {
namespace {

TEST_F(CacheTest, AHundredConcurrentLoadsOfAColdKeyCostOneStoreLoad) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"cold","text":"c"}})").ok());
  hold_loads_ = true;
  int before = store_calls_;
  std::atomic<int> answered{0};
  for (int i = 0; i < 100; ++i) {
    bus_.Act(M(R"({"store":"load","kind":"entry","id":"cold"})"),
             [&](Result<Message> r) { answered += TextOf(r) == "c"; });
  }
  EXPECT_EQ(store_calls_ - before, 1);
  Release();
  EXPECT_EQ(answered, 100);
  EXPECT_EQ(cache_->stats().coalesced, 99u);
}

TEST_F(CacheTest, NoReadAfterAnAcknowledgedSaveIsStale) {
  Install({});
  constexpr int kKeys = 4;
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_TRUE(
        Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"h{}","text":"0"}}}})", k))
            .ok());
  }
  // Per key: the last acknowledged value. A reader that starts after an acknowledgement must see
  // that value or a later one.
  std::array<std::atomic<int>, kKeys> acknowledged{};
  std::atomic<bool> stop{false};
  std::atomic<int> stale{0}, reads{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < kKeys; ++k) {
    threads.emplace_back([&, k] {  // one writer per key: values only grow
      for (int v = 1; v <= 300 && !stop; ++v) {
        auto r = Act(fmt::format(
            R"({{"store":"save","kind":"entry","ent":{{"id":"h{}","text":"{}"}}}})", k, v));
        if (r.ok()) acknowledged[k] = v;
      }
    });
  }
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 3000; ++i) {
        int k = rng() % kKeys;
        int floor = acknowledged[k];
        auto text = TextOf(Act(fmt::format(R"({{"store":"load","kind":"entry","id":"h{}"}})", k)));
        ++reads;
        if (text.rfind("error", 0) == 0 || std::stoi(text) < floor) ++stale;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stale, 0) << "of " << reads << " reads";
  EXPECT_GT(cache_->stats().hits, 0u);
}

// Ten hot keys read five times each, then a scan of 200 keys read once, through a cache of 8 KB
// (room for about 17 entries) with `policy`: how many hot keys had to be loaded again after.
class ScanTest : public CacheTest {
 protected:
  int HotKeysLostToAScan(CachePolicy policy) {
    Install({.max_bytes = 8192, .policy = policy});
    for (int i = 0; i < 300; ++i) {
      EXPECT_TRUE(
          Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"k{}","text":"{}"}}}})",
                          i, std::string(100, 'x')))
              .ok());
    }
    auto load = [&](int i) {
      (void)Act(fmt::format(R"({{"store":"load","kind":"entry","id":"k{}"}})", i));
    };
    for (int round = 0; round < 5; ++round)
      for (int hot = 0; hot < 10; ++hot) load(hot);
    for (int cold = 100; cold < 300; ++cold) load(cold);
    const int before = store_calls_;
    for (int hot = 0; hot < 10; ++hot) load(hot);
    EXPECT_LE(cache_->stats().bytes_used, 8192u);
    return store_calls_ - before;
  }
};

// W-TinyLFU (the default) admits a newcomer only if it is used more often than what it displaces.
TEST_F(ScanTest, AScanOfColdKeysLeavesTheHotKeysCachedUnderTinyLfu) {
  EXPECT_EQ(HotKeysLostToAScan(CachePolicy::kTinyLfu), 0);
}

TEST_F(ScanTest, AScanOfColdKeysFlushesAnLru) {
  EXPECT_EQ(HotKeysLostToAScan(CachePolicy::kLru), 10);
}

TEST_F(CacheTest, TheByteBoundHoldsWithin10PercentUnderRandomValueSizes) {
  constexpr size_t kBound = 64 * 1024;
  Install({.max_bytes = kBound});
  std::mt19937 rng(5);
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(
        Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"r{}","text":"{}"}}}})", i,
                        std::string(rng() % 2000, 'v')))
            .ok());
  }
  size_t peak = 0;
  for (int i = 0; i < 2000; ++i) {
    (void)Act(fmt::format(R"({{"store":"load","kind":"entry","id":"r{}"}})", rng() % 400));
    peak = std::max<size_t>(peak, cache_->stats().bytes_used);
  }
  EXPECT_LE(peak, kBound);
  EXPECT_GE(peak, kBound * 9 / 10) << "the cache should fill close to its bound";
  EXPECT_GT(cache_->stats().evictions, 0u);
}

// Under steady eviction every fill reuses the entry let go last, and keys longer than those held
// in the entry itself go to the heap: each answer must still be its own key's value.
TEST_F(CacheTest, EntriesReusedAfterEvictionsAnswerTheirOwnKeys) {
  Install({.max_bytes = 4096});
  auto id_of = [](int i) {  // every third id makes a key longer than 48 bytes
    return i % 3 == 0 ? fmt::format("long-{}-{}", i, std::string(60, 'z')) : fmt::format("s{}", i);
  };
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(
        Act(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","text":"t{}"}}}})",
                        id_of(i), i))
            .ok());
  }
  std::mt19937 rng(11);
  for (int n = 0; n < 3000; ++n) {
    const int i = static_cast<int>(rng() % 60);
    ASSERT_EQ(TextOf(Act(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id_of(i)))),
              fmt::format("t{}", i))
        << "load " << n;
  }
  CacheStats s = cache_->stats();
  EXPECT_GT(s.evictions, 100u);
  EXPECT_GT(s.hits, 100u);
  EXPECT_LE(s.bytes_used, 4096u);
}

}  // namespace
}  // namespace shardkit::cache
