// Per-thread slots (shardkit/message/thread_slots.h): counters added to from many threads, more
// threads than slots, and taken from on other threads than they were added on, sum exactly.
#include "shardkit/message/thread_slots.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace shardkit {
namespace {

TEST(ThreadSlots, AThreadKeepsItsSlotAndThreadsSpreadOverThem) {
  const size_t mine = ThreadSlot();
  EXPECT_LT(mine, kThreadSlots);
  EXPECT_EQ(ThreadSlot(), mine);
  std::set<size_t> seen;
  for (size_t i = 0; i < kThreadSlots; ++i) {
    std::thread([&] { seen.insert(ThreadSlot()); }).join();
  }
  EXPECT_EQ(seen.size(), kThreadSlots) << "kThreadSlots threads in a row take every slot";
}

TEST(StripedCounters, SumsAddsFromMoreThreadsThanSlotsExactly) {
  StripedCounters<3> counters;
  const int threads = static_cast<int>(kThreadSlots) * 2 + 3;  // slots are shared
  constexpr int kAdds = 20'000;
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&] {
      for (int i = 0; i < kAdds; ++i) {
        counters.Add(0);
        counters.Add(2, 3);
      }
    });
  }
  for (auto& t : running) t.join();
  EXPECT_EQ(counters.Sum(0), int64_t{threads} * kAdds);
  EXPECT_EQ(counters.Sum(1), 0);
  EXPECT_EQ(counters.Sum(2), int64_t{threads} * kAdds * 3);
  const auto sums = counters.Sums();
  EXPECT_EQ(sums[0], counters.Sum(0));
  EXPECT_EQ(sums[2], counters.Sum(2));
}

TEST(StripedCounters, AnInFlightCountAddedOnOneThreadAndTakenOnAnotherSumsToZero) {
  StripedCounters<1> in_flight;
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) in_flight.Add(0);
  }).join();
  EXPECT_EQ(in_flight.Sum(0), 1000);
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) in_flight.Add(0, -1);
  }).join();
  EXPECT_EQ(in_flight.Sum(0), 0);
}

}  // namespace
}  // namespace shardkit
