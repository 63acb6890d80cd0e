// A deliberately failing test, to show in docs/testing.md what a failure looks like. It is built,
// not registered with CTest, and DISABLED_ so that nothing runs it by accident:
//   build/release/examples/timeline_failing_example --gtest_also_run_disabled_tests
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <shardkit/testing/testing.h>
#include <timeline/timeline_service.h>

namespace {

using namespace shardkit;           // NOLINT
using namespace shardkit::testing;  // NOLINT

// Disabled: it fails on purpose (run it with --gtest_also_run_disabled_tests). The two lines of
// this comment keep the line numbers docs/testing.md shows.
TEST(FailingExample, DISABLED_WhatAUserSeesWhenExpectationsAreWrong) {
  ManualClock clock;
  Bus bus;
  ASSERT_TRUE(bus.Add("timeline:*", timeline::MakeTimelineService({&clock})).ok());
  MockResponder store(bus);
  MessageCapture sent(bus);
  // The service saves kind:entry, but this test mocks kind:post: the save is unexpected.
  store.On("store:save,kind:post").Reply(R"({"ent":{"id":"1"}})").Times(1);
  store.On("store:load,kind:entry").Reply("{}");

  auto reply = bus.ActAndWait(Msg("timeline:post,user:ann,text:hi"));

  EXPECT_THAT(reply, IsOkReply(HasField("id", "1")));
  EXPECT_THAT(sent, SentMessage("store:save,kind:entry", HasField("ent.text", "hello")));
}

}  // namespace
