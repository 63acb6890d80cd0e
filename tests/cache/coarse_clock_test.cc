// The clock of a hit's expiry check (cache/src/coarse_clock.h): the coarse reading lags the
// precise system clock by less than the margin, an expiry the precise clock has reached is never
// taken for fresh, and one far ahead is fresh.
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
  int stepped_back = 0;
  while (std::chrono::steady_clock::now() < until) {
    // Busy runs cross ticks while the core is awake; the short sleeps let it go idle, so some
    // reads come right after a wake-up, before the tick that catches the coarse clock up.
    for (int i = 0; i < 2000; ++i, ++reads) {
      const int64_t before = precise.NowMs();
      const int64_t coarse = CoarseClock::NowMsOrEarlier();
      const bool reached = CoarseClock::Before(before);
      const bool passed = CoarseClock::Before(before - 1);
      const bool far = CoarseClock::Before(before + 2 * CoarseClock::kMarginMs);
      const int64_t after = precise.NowMs();
      // A system clock stepped back inside the window (time sync, as on a CI machine) un-reaches
      // the expiry itself; such a read says nothing about the coarse clock.
      if (after < before) {
        ++stepped_back;
        continue;
      }
      ASSERT_LT(after - coarse, CoarseClock::kMarginMs) << "read " << reads;
      ASSERT_FALSE(reached) << "read " << reads;
      ASSERT_FALSE(passed) << "read " << reads;
      ASSERT_TRUE(far) << "read " << reads;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(300 + reads % 3000));
  }
  EXPECT_LT(stepped_back, reads / 100) << "the system clock kept going back";
  EXPECT_GT(reads, 10'000);
}

}  // namespace
}  // namespace shardkit::cache
