// The wall clock for a hit's expiry check, read from the kernel's coarse clock when that is
// enough: a vDSO read of the time at the last timer tick, a few times cheaper than a precise
// read, on every hit.
//
// The coarse clock lags the precise one by up to a tick (1 to 10 ms), and by more when the core
// that keeps time was not running (a virtual machine's vCPU descheduled by its host). It can also
// read a few milliseconds ahead of a later precise read, when the system clock is stepped back
// between the two (NTP, a virtual machine's time sync); ahead only makes the check more careful.
// So it decides only far from an expiry: an entry whose expiry is more than kMarginMs after the
// coarse reading is fresh whatever the lag; nearer, the precise clock decides. An entry is never
// served past its expiry (an entity's store expiry is a promise; docs/store.md) unless the coarse
// clock lagged by more than a second.
//
// Thread-safety: safe from any thread.
#pragma once

#include <time.h>

#include <cstdint>

#include <shardkit/message/clock.h>

namespace shardkit::cache {

class CoarseClock {
 public:
  static constexpr int64_t kMarginMs = 1000;

  // Milliseconds since the Unix epoch at the last timer tick: earlier than now unless the system
  // clock was just stepped back.
  static int64_t NowMsOrEarlier() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
  }

  // Whether the system clock's now is before `expires_at_ms`; the precise clock is read only when
  // the coarse one is within kMarginMs of the expiry.
  static bool Before(int64_t expires_at_ms) {
    if (expires_at_ms - NowMsOrEarlier() > kMarginMs) return true;
    return expires_at_ms > SystemClock::Default().NowMs();
  }
};

}  // namespace shardkit::cache
