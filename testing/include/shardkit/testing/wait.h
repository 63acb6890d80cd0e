// Waiting for a condition instead of sleeping.
//
//   EXPECT_TRUE(WaitFor([&] { return follower.position("a") > 3; }));              // real time
//   EXPECT_TRUE(WaitFor(scheduler, [&] { return reply.ready(); }, /*timeout_ms=*/500));  //
//   simulated
//
// The real-time form polls every `poll` until the condition holds or `timeout` passes; use it when
// another thread makes progress. The scheduler form runs the scheduler's tasks one by one (moving
// its clock to each) until the condition holds, nothing is pending, or `timeout_ms` of simulated
// time passed: deterministic, and it never sleeps. Both return an AssertionResult saying how long
// was waited, for EXPECT_TRUE / ASSERT_TRUE.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>

#include <shardkit/testing/scheduler.h>

namespace shardkit::testing {

::testing::AssertionResult WaitFor(const std::function<bool()>& condition,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                   std::chrono::milliseconds poll = std::chrono::milliseconds(1));

::testing::AssertionResult WaitFor(ManualScheduler& scheduler,
                                   const std::function<bool()>& condition,
                                   int64_t timeout_ms = 60'000);

}  // namespace shardkit::testing
