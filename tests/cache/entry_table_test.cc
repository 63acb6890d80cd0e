// The cache's entry table (cache/src/entry_table.h): open addressing whose erase shifts the rest of
// a run back. Hashes are chosen here so that runs collide, wrap around the end of the array and
// lose members in the middle: every remaining entry must still be found, and no erased one.
#include "entry_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace shardkit::cache {
namespace {

struct Item {
  std::string key;
};

std::string Key(uint64_t n) {
  std::string key = "k";
  key += std::to_string(n);
  return key;
}

std::unique_ptr<Item> MakeItem(const std::string& key) { return std::make_unique<Item>(Item{key}); }

TEST(EntryTable, FindsWhatWasInsertedAndNothingElse) {
  EntryTable<Item> table;
  table.Insert(7, MakeItem("a"));
  table.Insert(7, MakeItem("b"));  // same hash, another key
  ASSERT_NE(table.Find(7, "a"), nullptr);
  EXPECT_EQ(table.Find(7, "b")->key, "b");
  EXPECT_EQ(table.Find(7, "c"), nullptr);
  EXPECT_EQ(table.Find(8, "a"), nullptr);
  EXPECT_EQ(table.size(), 2u);
}

TEST(EntryTable, ErasingFromACollidingRunKeepsTheRestReachable) {
  EntryTable<Item> table;
  // 16 buckets at first: hashes 14 and 15 run past the end and wrap to 0, 1, ….
  for (int i = 0; i < 6; ++i) table.Insert(14 + (i % 2), MakeItem(Key(i)));
  table.Erase(14, table.Find(14, "k0"));  // the run's first
  table.Erase(15, table.Find(15, "k3"));  // one in the middle, after the wrap
  for (int i : {1, 2, 4, 5}) {
    const std::string key = Key(i);
    ASSERT_NE(table.Find(14 + (i % 2), key), nullptr) << key;
  }
  EXPECT_EQ(table.Find(14, "k0"), nullptr);
  EXPECT_EQ(table.Find(15, "k3"), nullptr);
  EXPECT_EQ(table.size(), 4u);
}

TEST(EntryTable, RandomInsertsAndErasesAgreeWithAMap) {
  EntryTable<Item> table;
  std::map<std::string, uint64_t> model;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 20000; ++step) {
    const std::string key = Key(rng() % 300);
    const uint64_t hash = rng() % 3 == 0 ? 5 : std::hash<std::string>{}(key) % 64;  // clusters
    auto known = model.find(key);
    if (known == model.end()) {
      table.Insert(hash, MakeItem(key));
      model[key] = hash;
    } else {
      table.Erase(known->second, table.Find(known->second, key));
      model.erase(known);
    }
  }
  EXPECT_EQ(table.size(), model.size());
  for (const auto& [key, hash] : model) ASSERT_NE(table.Find(hash, key), nullptr) << key;
  size_t seen = 0;
  table.ForEach([&](const Item& item) { seen += model.count(item.key); });
  EXPECT_EQ(seen, model.size());
}

}  // namespace
}  // namespace shardkit::cache
