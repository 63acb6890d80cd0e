// A deliberately failing test, to show in docs/testing.md what a failure looks like. It is built
// but skipped unless SHARDKIT_SHOW_FAILURES=1 is set, so CI stays green:
//   SHARDKIT_SHOW_FAILURES=1 build/testing/examples/timeline_failing_example
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include <shardkit/testing/testing.h>
#include <timeline/timeline_service.h>

namespace {

using namespace shardkit;           // NOLINT
using namespace shardkit::testing;  // NOLINT

TEST(FailingExample, WhatAUserSeesWhenExpectationsAreWrong) {
  if (std::getenv("SHARDKIT_SHOW_FAILURES") == nullptr)
    GTEST_SKIP() << "set SHARDKIT_SHOW_FAILURES=1 to see the failures";
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
