// The clock of a hit's expiry check (cache/src/coarse_clock.h): the coarse reading is never ahead
// of the precise system clock, an expiry the precise clock has reached is never taken for fresh,
// and one far ahead is fresh without the precise clock.
#include "coarse_clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <shardkit/message/clock.h>

namespace shardkit::cache {
namespace {

TEST(CoarseClock, NeverServesAnExpiryThePreciseClockHasReached) {
  const SystemClock& precise = SystemClock::Default();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(400);
  int reads = 0;
  while (std::chrono::steady_clock::now() < until) {
    // Busy runs cross ticks while the core is awake; the short sleeps let it go idle, so some
    // reads come right after a wake-up, before the tick that catches the coarse clock up.
    for (int i = 0; i < 2000; ++i, ++reads) {
      const int64_t before = precise.NowMs();
      ASSERT_LE(CoarseClock::NowMsOrEarlier(), precise.NowMs()) << "read " << reads;
      ASSERT_FALSE(CoarseClock::Before(before)) << "read " << reads;
      ASSERT_FALSE(CoarseClock::Before(before - 1)) << "read " << reads;
      ASSERT_TRUE(CoarseClock::Before(before + 2 * CoarseClock::kMarginMs)) << "read " << reads;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(300 + reads % 3000));
  }
  EXPECT_GT(reads, 10'000);
}

}  // namespace
}  // namespace shardkit::cache
