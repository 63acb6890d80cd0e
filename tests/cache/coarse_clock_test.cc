// The clock of a hit's expiry check (cache/src/coarse_clock.h): read at any moment, it is never
// earlier than the precise system clock read just before it, so a cached entry is never served
// past its expiry; and it is later by at most its slack.
#include "coarse_clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <shardkit/message/clock.h>

namespace shardkit::cache {
namespace {

TEST(CoarseClock, IsNeverEarlierThanTheSystemClockAndLaterByAtMostItsSlack) {
  const SystemClock& precise = SystemClock::Default();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(400);
  int reads = 0;
  while (std::chrono::steady_clock::now() < until) {
    // Busy runs cross ticks while the core is awake; the short sleeps let it go idle, so some
    // reads come right after a wake-up, before the tick that catches the coarse clock up.
    for (int i = 0; i < 2000; ++i, ++reads) {
      const int64_t before = precise.NowMs();
      const int64_t coarse = CoarseClock::NowMsOrLater();
      ASSERT_GE(coarse, before) << "read " << reads;
      ASSERT_LE(coarse, precise.NowMs() + CoarseClock::SlackMs()) << "read " << reads;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(300 + reads % 3000));
  }
  EXPECT_GT(reads, 10'000);
}

}  // namespace
}  // namespace shardkit::cache
