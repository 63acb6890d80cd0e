// The wall clock for a hit's expiry check, read from the kernel's coarse clock: a vDSO read of the
// time at the last timer tick, a few times cheaper than a precise read, on every hit.
//
// The coarse clock lags the precise one by up to a tick (clock_getres says how long; 1 to 10 ms),
// so it is rounded up, never down: NowMsOrLater() is no earlier than SystemClock::NowMs() read at
// the same moment, and at most a few ticks later. An entry is then taken for expired a few
// milliseconds early, never served late (an entity's store expiry is a promise; docs/store.md).
//
// Thread-safety: safe from any thread.
#pragma once

#include <time.h>

#include <cstdint>

namespace shardkit::cache {

class CoarseClock {
 public:
  // Milliseconds since the Unix epoch, no earlier than now.
  static int64_t NowMsOrLater() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000 + SlackMs();
  }

  // What NowMsOrLater adds: two ticks, rounded up to whole milliseconds, and one more for the
  // truncation of both readings to milliseconds. Two ticks, not one: a core coming out of idle
  // without a tick may read the clock before the tick that catches it up.
  static int64_t SlackMs() {
    static const int64_t slack = [] {
      timespec res;
      if (clock_getres(CLOCK_REALTIME_COARSE, &res) != 0) return int64_t{20};
      const int64_t tick_ms = (res.tv_sec * 1'000'000'000 + res.tv_nsec + 999'999) / 1'000'000;
      return 2 * tick_ms + 1;
    }();
    return slack;
  }
};

}  // namespace shardkit::cache
