// The W-TinyLFU policy's frequency sketch (cache/src/policy.h): it never counts a key lower than it
// was used (until ageing halves it), keeps keys apart, and ages. The policy's behaviour as a whole
// is tested through the cache (cache_test.cc, ScanTest).
#include "policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>

namespace shardkit::cache {
namespace {

uint64_t HashOf(uint64_t n) { return std::hash<std::string>{}("key" + std::to_string(n)); }

constexpr int kMax = FrequencySketch::kMaxCount;

TEST(FrequencySketch, NeverCountsAKeyLowerThanItsUsesUpToTheMaximum) {
  FrequencySketch sketch(1024);
  for (uint64_t key = 0; key < 500; ++key) {
    const int uses = static_cast<int>(key % (kMax + 5));
    for (int i = 0; i < uses; ++i) sketch.Increment(HashOf(key));
  }
  for (uint64_t key = 0; key < 500; ++key) {
    const int uses = static_cast<int>(key % (kMax + 5));
    EXPECT_GE(sketch.Estimate(HashOf(key)), std::min(uses, kMax)) << "key " << key;
    EXPECT_LE(sketch.Estimate(HashOf(key)), kMax);
  }
}

TEST(FrequencySketch, KeepsKeysApart) {
  // 500 keys used once each in a sketch sized for 1,024: a key never used reads mostly 0 (each of
  // its four counters is shared with about half a key), and a key used ten times stands out.
  FrequencySketch sketch(1024);
  for (uint64_t key = 0; key < 500; ++key) sketch.Increment(HashOf(key));
  for (int i = 0; i < 10; ++i) sketch.Increment(HashOf(5000));
  int unseen_total = 0, unseen_above_one = 0;
  for (uint64_t key = 10'000; key < 11'000; ++key) {
    const int estimate = sketch.Estimate(HashOf(key));
    unseen_total += estimate;
    unseen_above_one += estimate > 1;
  }
  EXPECT_LT(unseen_total, 150) << "unseen keys should read mostly 0";
  EXPECT_LT(unseen_above_one, 10);
  EXPECT_GE(sketch.Estimate(HashOf(5000)), 10);
}

// A key settles when every one of its counters reaches the maximum: no increment changes it
// then, until the next ageing (which TinyLfu::Hit relies on to skip counting hot keys' hits).
TEST(FrequencySketch, SaysWhenAKeyIsSettledAndAgeingUnsettlesIt) {
  FrequencySketch sketch(16);  // 64 counters a row, halved every 320 additions
  for (int i = 0; i < kMax - 1; ++i) EXPECT_FALSE(sketch.Increment(HashOf(1))) << "use " << i + 1;
  EXPECT_TRUE(sketch.Increment(HashOf(1))) << "the last use up to the maximum fills its counters";
  EXPECT_TRUE(sketch.Increment(HashOf(1))) << "and it stays settled";
  EXPECT_EQ(sketch.ageings(), 0u);
  uint64_t key = 100;
  while (sketch.ageings() == 0) (void)sketch.Increment(HashOf(key++));
  EXPECT_LE(sketch.Estimate(HashOf(1)), kMax / 2 + 1);
  EXPECT_FALSE(sketch.Increment(HashOf(1))) << "halved: unsettled until filled again";
}

TEST(FrequencySketch, HalvesEveryCountAfterFiveIncrementsPerCounterOfARow) {
  FrequencySketch sketch(64);  // 256 counters a row: ages after 1,280 additions
  for (int i = 0; i < kMax; ++i) sketch.Increment(HashOf(1));
  ASSERT_EQ(sketch.Estimate(HashOf(1)), kMax);
  // Other keys fill the sample; each new key's increment is an addition (as were key 1's).
  for (uint64_t key = 100; key < 100 + 1280 - kMax - 15; ++key) sketch.Increment(HashOf(key));
  EXPECT_EQ(sketch.Estimate(HashOf(1)), kMax) << "no halving before the sample is full";
  for (uint64_t key = 2000; key < 2000 + 15; ++key) sketch.Increment(HashOf(key));
  EXPECT_LE(sketch.Estimate(HashOf(1)), kMax / 2 + 1) << "one halving (plus collisions) by now";
  EXPECT_GE(sketch.Estimate(HashOf(1)), kMax / 2);
}

}  // namespace
}  // namespace shardkit::cache
