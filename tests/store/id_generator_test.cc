#include <shardkit/store/id_generator.h>

#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardkit::store {
namespace {

TEST(store_id_generator, IdsAreTimeOrderedAndCarryTheNode) {
  ManualClock clock(1'735'689'600'000);  // 2025-01-01
  IdGenerator ids(5, &clock);
  const uint64_t first = ids.Next();
  clock.Advance(1);
  const uint64_t second = ids.Next();
  EXPECT_LT(first, second);
  EXPECT_EQ((first >> 12) & 1023, 5u);
  EXPECT_EQ(first >> 22, static_cast<uint64_t>(1'735'689'600'000 - IdGenerator::kEpochMs));
  EXPECT_EQ(std::to_string(first).size(), 19u);  // string order == numeric order for decades
}

TEST(store_id_generator, IdsKeepIncreasingWhenTheClockStepsBack) {
  ManualClock clock(1'735'689'600'000);
  IdGenerator ids(1, &clock);
  uint64_t last = ids.Next();
  clock.Advance(-60'000);
  for (int i = 0; i < 10; ++i) {
    uint64_t next = ids.Next();
    EXPECT_GT(next, last);
    last = next;
  }
}

TEST(store_id_generator, MoreThan4096IdsInOneMillisecondStayUnique) {
  ManualClock clock(1'735'689'600'000);
  IdGenerator ids(0, &clock);
  std::set<uint64_t> seen;
  uint64_t last = 0;
  for (int i = 0; i < 10'000; ++i) {
    uint64_t id = ids.Next();
    EXPECT_GT(id, last);
    last = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10'000u);
}

TEST(store_id_generator, ConcurrentCallersNeverShareAnId) {
  IdGenerator ids(3);
  std::vector<std::vector<uint64_t>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& out : per_thread) {
    threads.emplace_back([&ids, &out] {
      for (int i = 0; i < 5'000; ++i) out.push_back(ids.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& out : per_thread) all.insert(out.begin(), out.end());
  EXPECT_EQ(all.size(), 20'000u);
}

TEST(store_id_generator, DifferentNodesNeverCollide) {
  ManualClock clock(1'735'689'600'000);
  IdGenerator a(1, &clock), b(2, &clock);
  std::set<uint64_t> all;
  for (int i = 0; i < 1000; ++i) {
    all.insert(a.Next());
    all.insert(b.Next());
  }
  EXPECT_EQ(all.size(), 2000u);
}

TEST(store_id_generator, NodeIdAboveTheLimitIsRejectedAtConstruction) {
  EXPECT_THROW(IdGenerator(1024), std::invalid_argument);
  EXPECT_NO_THROW(IdGenerator(1023));
}

}  // namespace
}  // namespace shardkit::store
