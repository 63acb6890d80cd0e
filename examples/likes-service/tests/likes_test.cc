// The like counter's tests, with shardkit::testing: mocked store messages for the races, a fixture
// store for the whole protocol.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <likes/likes_service.h>
#include <shardkit/testing/testing.h>

namespace {

using ::testing::HasSubstr;
using namespace shardkit;           // NOLINT: Bus, Message, Code
using namespace shardkit::testing;  // NOLINT: mocks, matchers

TEST(Likes, AddSavesTheCountWithTheLoadedVersion) {
  Bus bus;
  ASSERT_TRUE(bus.Add("likes:*", likes::MakeLikesService()).ok());
  MockResponder store(bus);
  MessageCapture sent(bus);
  store.On("store:load,kind:likes").Reply(R"({"ent":{"id":"p1","version":3,"count":7}})");
  store.On("store:save,kind:likes").Reply(R"({"ent":{"id":"p1","version":4,"count":8}})");

  EXPECT_THAT(bus.ActAndWait(Msg("likes:add,post:p1")), IsOkReply(HasField("likes", 8)));
  EXPECT_THAT(sent, SentMessage("store:save,kind:likes", HasField("version", 3),
                                HasField("ent.count", 8), HasField("ent.id", "p1")));
}

TEST(Likes, ALostRaceIsRetriedFromAFreshLoad) {
  Bus bus;
  ASSERT_TRUE(bus.Add("likes:*", likes::MakeLikesService()).ok());
  MockResponder store(bus);
  MessageCapture sent(bus);
  store.On("store:load,kind:likes").Reply(R"({"ent":{"id":"p1","version":1,"count":1}})").Times(1);
  store.On("store:load,kind:likes").Reply(R"({"ent":{"id":"p1","version":2,"count":2}})").Times(1);
  store.On("store:save,kind:likes").ReplyError(Code::kConflict, "expected 1, found 2").Times(1);
  store.On("store:save,kind:likes").Reply(R"({"ent":{"id":"p1","version":3}})").Times(1);

  EXPECT_THAT(bus.ActAndWait(Msg("likes:add,post:p1")), IsOkReply(HasField("likes", 3)));
  EXPECT_THAT(sent, SentCount("store:save", 2));
}

TEST(Likes, AMissingPostIsRefusedAndNothingIsSent) {
  Bus bus;
  ASSERT_TRUE(bus.Add("likes:*", likes::MakeLikesService()).ok());
  MessageCapture sent(bus);
  EXPECT_THAT(bus.ActAndWait(Msg("likes:add")), IsErrorReply(Code::kInvalid, HasSubstr("post")));
  EXPECT_THAT(sent, SentCount("store:*", 0));
}

TEST(Likes, CountsAgainstARealStoreProtocol) {
  Bus bus;
  ASSERT_TRUE(bus.Add("likes:*", likes::MakeLikesService()).ok());
  FixtureStore store;
  ASSERT_TRUE(store.Register(bus).ok());

  EXPECT_THAT(bus.ActAndWait(Msg("likes:get,post:p9")), IsOkReply(HasField("likes", 0)));
  for (int i = 1; i <= 3; ++i)
    EXPECT_THAT(bus.ActAndWait(Msg("likes:add,post:p9")), IsOkReply(HasField("likes", i)));
  EXPECT_THAT(store.Get("likes", "p9"), ::testing::Optional(HasSubstr("\"count\":3")));
}

}  // namespace
