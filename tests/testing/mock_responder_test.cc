// MockResponder: replies, errors, strictness, cardinality, order, delays, forwarding, cleanup.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <shardkit/testing/testing.h>

#include "test_util.h"

namespace shardkit::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(MockResponder, RepliesWithTheConfiguredJson) {
  Bus bus;
  MockResponder mock(bus);
  mock.On("store:load,kind:entry").Reply(R"({"ent":{"id":"1","text":"hi"}})");
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:1")),
              IsOkReply(HasField("ent.text", "hi")));
}

TEST(MockResponder, ComputedRepliesSeeTheRequest) {
  Bus bus;
  MockResponder mock(bus);
  mock.On("store:load,kind:entry").Reply([](const Message& m) -> Result<Message> {
    return Msg(R"({"ent":{}})").SetString("echo", m.GetString("id").value_or("?"));
  });
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:42")),
              IsOkReply(HasField("echo", "42")));
}

TEST(MockResponder, ReplyErrorAnswersTheCanonicalCode) {
  Bus bus;
  MockResponder mock(bus);
  mock.On("store:save").ReplyError(Code::kConflict, "version 3, expected 2");
  EXPECT_THAT(bus.ActAndWait(Msg("store:save,kind:entry")),
              IsErrorReply(Code::kConflict, HasSubstr("version 3")));
}

TEST(MockResponder, TheMostSpecificPatternAnswers) {
  Bus bus;
  MockResponder mock(bus);
  mock.On("store:*").Reply(R"({"who":"any"})");
  mock.On("store:load,kind:entry").Reply(R"({"who":"entry"})");
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry")), IsOkReply(HasField("who", "entry")));
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:user")), IsOkReply(HasField("who", "any")));
}

TEST(MockResponder, AnUnexpectedMessageFailsAStrictTestNamingTheClosestPatterns) {
  Bus bus;
  MockResponder mock(bus);
  mock.On("store:load,kind:entry").Reply("{}");
  mock.On("cache:stats").Reply("{}");
  Result<Message> reply = Status::Internal("unset");
  auto failures = FailuresOf([&] { reply = bus.ActAndWait(Msg("store:load,kind:user,id:7")); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(
      failures[0],
      AllOf(HasSubstr("unexpected message"), HasSubstr("store:load,kind:user,id:7"),
            HasSubstr("closest routed patterns"), HasSubstr("store:load,kind:entry"),
            HasSubstr("1 of 2 terms match"), HasSubstr("kind is 'user', pattern wants 'entry'")));
  // The closest pattern is listed before the unrelated one.
  EXPECT_LT(failures[0].find("store:load,kind:entry"), failures[0].find("cache:stats"));
  EXPECT_THAT(reply, IsErrorReply(Code::kNotFound, HasSubstr("no expectation")));
}

TEST(MockResponder, ALenientMockAnswersNotFoundWithoutFailing) {
  Bus bus;
  MockResponder mock(bus, {.strictness = Strictness::kLenient});
  Result<Message> reply = Status::Internal("unset");
  EXPECT_THAT(FailuresOf([&] { reply = bus.ActAndWait(Msg("store:load,kind:user")); }), IsEmpty());
  EXPECT_THAT(reply, IsErrorReply(Code::kNotFound));
  EXPECT_THAT(mock.received(), SizeIs(1));
}

TEST(MockResponder, TimesFailsOnAnExtraCallAndOnAMissingOne) {
  Bus bus;
  auto failures = FailuresOf([&] {
    MockResponder mock(bus);
    mock.On("store:save").Reply("{}").Times(1);
    mock.On("store:remove").Reply("{}").Times(2);
    (void)bus.ActAndWait(Msg("store:save"));
    (void)bus.ActAndWait(Msg("store:save"));
    (void)bus.ActAndWait(Msg("store:remove"));
  });
  ASSERT_THAT(failures, SizeIs(2));
  EXPECT_THAT(failures[0], HasSubstr("'store:save': called more often than expected (Times(1))"));
  EXPECT_THAT(failures[1], HasSubstr("'store:remove': expected 2 call(s), got 1"));
}

TEST(MockResponder, ExpectationsForOnePatternAreUsedInTheOrderDeclared) {
  Bus bus;
  MockResponder mock(bus);
  auto& first = mock.On("store:load").ReplyError(Code::kNotFound, "not yet").Times(1);
  auto& then = mock.On("store:load").Reply(R"({"ent":{"id":"1"}})");
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,id:1")), IsErrorReply(Code::kNotFound));
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,id:1")), IsOkReply());
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,id:1")), IsOkReply());
  EXPECT_EQ(first.calls(), 1);
  EXPECT_EQ(then.calls(), 2);
}

TEST(MockResponder, ADelayedReplyArrivesWhenTheSchedulerReachesIt) {
  ManualScheduler scheduler;
  Bus bus;
  MockResponder mock(bus, {.scheduler = &scheduler});
  mock.On("store:load").Reply(R"({"ent":{}})").Delay(100);
  PendingReply reply = Send(bus, Msg("store:load"));
  EXPECT_FALSE(reply.ready());
  scheduler.Advance(99);
  EXPECT_FALSE(reply.ready());
  scheduler.Advance(1);
  EXPECT_TRUE(reply.ready());
  EXPECT_EQ(reply.reply_count(), 1);
}

TEST(MockResponder, ForwardReachesTheHandlerThePatternOverrode) {
  Bus bus;
  auto store = FixtureStore::FromJson(R"({"entry":[{"id":"1","text":"real"}]})");
  ASSERT_TRUE(store.Register(bus, "store:*,kind:entry").ok());
  MockResponder mock(bus);
  mock.On("store:*,kind:entry").Forward().Times(1);
  mock.On("store:*,kind:entry").ReplyError(Code::kUnavailable, "second call fails");
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:1")),
              IsOkReply(HasField("ent.text", "real")));
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:1")), IsErrorReply(Code::kUnavailable));
}

TEST(MockResponder, DestroyingTheMockRestoresTheRoutesItOverrode) {
  Bus bus;
  auto store = FixtureStore::FromJson(R"({"entry":[{"id":"1","text":"real"}]})");
  ASSERT_TRUE(store.Register(bus, "store:*").ok());
  size_t routes_before = bus.routes()->size();
  {
    MockResponder mock(bus);
    mock.On("store:*").ReplyError(Code::kInternal, "mocked");
    EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:1")), IsErrorReply(Code::kInternal));
  }
  EXPECT_EQ(bus.routes()->size(), routes_before);
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:1")),
              IsOkReply(HasField("ent.text", "real")));
  EXPECT_THAT(bus.ActAndWait(Msg("other:thing")), IsErrorReply(Code::kNoRoute));
}

TEST(MockResponder, AnInvalidReplyTextFailsTheTestAndAnswersInternal) {
  Bus bus;
  MockResponder mock(bus, {.strictness = Strictness::kLenient});
  std::vector<std::string> failures = FailuresOf([&] { mock.On("a:b").Reply("{not json"); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("mock 'a:b': Reply:"));
  EXPECT_THAT(bus.ActAndWait(Msg("a:b")), IsErrorReply(Code::kInternal));
}

TEST(MockResponder, MessagesReceivedAreKeptInOrder) {
  Bus bus;
  MockResponder mock(bus);
  auto& save = mock.On("store:save").Reply("{}");
  (void)bus.ActAndWait(Msg("store:save,n:1"));
  (void)bus.ActAndWait(Msg("store:save,n:2"));
  EXPECT_THAT(save.received(), ElementsAre(MessageLike("n:1"), MessageLike("n:2")));
}

}  // namespace
}  // namespace shardkit::testing
