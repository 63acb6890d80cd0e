// MessageCapture and the matchers: what is recorded, in which order, and how failures read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <shardkit/testing/testing.h>

#include "test_util.h"

namespace shardkit::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// A service that saves, then announces, then answers.
std::shared_ptr<Handler> SavingService() {
  return MakeHandler([](Message m, const Context& context, ReplyFn reply) {
    Message save = Msg(
        R"({"store":"save","kind":"entry","ent":{"text":"hi","tags":["a","b"],"n":3,"deep":{"ok":true}}})");
    context.Act(std::move(save), [context, reply](Result<Message> saved) {
      context.Publish(Msg("info:entry,id:1"));
      reply(std::move(saved));
    });
  });
}

template <typename M, typename T>
std::string Explain(const M& matcher, const T& value) {
  ::testing::StringMatchResultListener listener;
  ::testing::Matcher<const T&>(matcher).MatchAndExplain(value, &listener);
  return listener.str();
}

TEST(MessageCapture, RecordsRequestsAndPublishesInTheOrderTheyHappened) {
  Bus bus;
  ASSERT_TRUE(bus.Add("svc:go", SavingService()).ok());
  MockResponder store(bus);
  store.On("store:save").Reply(R"({"ent":{"id":"1"}})");
  MessageCapture sent(bus);

  ASSERT_THAT(bus.ActAndWait(Msg("svc:go")), IsOkReply());

  auto entries = sent.entries();
  ASSERT_THAT(entries, SizeIs(3));
  EXPECT_EQ(entries[0].kind, CapturedMessage::Kind::kAct);
  EXPECT_EQ(entries[0].message.RoutingString(), "svc:go");
  EXPECT_EQ(entries[1].message.RoutingString(), "store:save,kind:entry");
  EXPECT_EQ(entries[2].kind, CapturedMessage::Kind::kPublish);
  EXPECT_EQ(entries[2].message.RoutingString(), "info:entry,id:1");
  EXPECT_THAT(sent.Matching("store:*"), SizeIs(1));
}

TEST(MessageCapture, UnwrapsTheRoutesItWrappedWhenDestroyed) {
  Bus bus;
  auto service = SavingService();
  ASSERT_TRUE(bus.Add("svc:go", service).ok());
  {
    MessageCapture sent(bus);
    EXPECT_NE(bus.routes()->Get(*Pattern::Parse("svc:go"))->handler, service);
  }
  EXPECT_EQ(bus.routes()->Get(*Pattern::Parse("svc:go"))->handler, service);
  EXPECT_EQ(bus.routes()->Get(*Pattern::Parse("svc:go"))->prior, nullptr);
}

TEST(MessageCapture, AWrappedRouteKeepsItsOwnPrior) {
  Bus bus;
  ASSERT_TRUE(bus.Add("a:1", MakeSyncHandler([](Message, const Context&) -> Result<Message> {
                        return Msg("from:prior");
                      }))
                  .ok());
  ASSERT_TRUE(bus.Override("a:1", MakeHandler([](Message m, const Context& c, ReplyFn reply) {
                             c.Prior(std::move(m), std::move(reply));
                           }))
                  .ok());
  MessageCapture sent(bus);
  EXPECT_THAT(bus.ActAndWait(Msg("a:1")), IsOkReply(HasField("from", "prior")));
  EXPECT_THAT(sent, SentCount("a:1", 1));
}

TEST(MessageCapture, TapRecordsHandlersAddedLater) {
  Bus bus;
  MessageCapture sent(bus);
  ASSERT_TRUE(
      bus.Add("late:1", sent.Tap(MakeSyncHandler(
                            [](Message, const Context&) -> Result<Message> { return Message(); })))
          .ok());
  (void)bus.ActAndWait(Msg("late:1"));
  EXPECT_THAT(sent, SentMessage("late:1"));
}

TEST(Matchers, HasFieldWalksNestedObjectsAndArrays) {
  Message m = Msg(
      R"({"ent":{"text":"hi","tags":["a","b"],"n":3,"deep":{"ok":true}},"top":1.5,"flag":false})");
  EXPECT_THAT(m, HasField("ent.text", "hi"));
  EXPECT_THAT(m, HasField("ent.tags.1", "b"));
  EXPECT_THAT(m, HasField("ent.tags", R"(["a","b"])"));
  EXPECT_THAT(m, HasField("ent.n", 3));
  EXPECT_THAT(m, HasField("ent.n", 3.0));
  EXPECT_THAT(m, HasField("ent.deep.ok", true));
  EXPECT_THAT(m, HasField("ent.deep", R"({"ok":true})"));
  EXPECT_THAT(m, HasField("top", 1.5));
  EXPECT_THAT(m, HasField("flag", false));
  EXPECT_THAT(m, HasField("ent.text", HasSubstr("h")));
  EXPECT_THAT(m, HasField("ent.tags.0"));
  EXPECT_THAT(m, Not(HasField("ent.tags.2")));
  EXPECT_THAT(m, Not(HasField("ent.missing")));
  EXPECT_THAT(m, Not(HasField("ent.n", "4")));
  EXPECT_THAT(m, Not(HasField("ent.text", 3)));
  EXPECT_EQ(Explain(HasField("ent.text", "hello"), m), "ent.text is \"hi\"");
  EXPECT_EQ(Explain(HasField("ent.nope", "x"), m), "has no field ent.nope");
}

TEST(Matchers, MessageLikeSaysWhichTermFails) {
  Message m = Msg("store:load,kind:user");
  EXPECT_THAT(m, MessageLike("store:load"));
  EXPECT_THAT(m, MessageLike("store:*,kind:us*"));
  EXPECT_THAT(m, Not(MessageLike("store:load,kind:entry")));
  EXPECT_EQ(Explain(MessageLike("store:load,kind:entry"), m),
            "does not route as 'store:load,kind:entry': kind is 'user', pattern wants 'entry'");
  EXPECT_EQ(Explain(MessageLike("store:load,id:1"), m),
            "does not route as 'store:load,id:1': no property 'id'");
}

TEST(Matchers, SentMessageFailureListsEveryCapturedMessageWithWhyItDoesNotMatch) {
  std::vector<Message> sent = {Msg(R"({"store":"save","kind":"entry","ent":{"text":"hi"}})"),
                               Msg("info:entry,id:1")};
  EXPECT_THAT(sent, SentMessage("store:save,kind:entry", HasField("ent.text", "hi")));
  auto why = Explain(SentMessage("store:save,kind:entry", HasField("ent.text", "hello")), sent);
  EXPECT_THAT(
      why, AllOf(HasSubstr("none of the 2 captured message(s) matches"),
                 HasSubstr(R"(#0 {"store":"save","kind":"entry","ent":{"text":"hi"}})"),
                 HasSubstr("routes as 'store:save,kind:entry' but ent.text is \"hi\""),
                 HasSubstr(R"(#1 {"info":"entry","id":"1"})"), HasSubstr("no property 'store'")));
  EXPECT_EQ(
      ::testing::DescribeMatcher<std::vector<Message>>(
          SentMessage("store:save", HasField("ent.text", "hi"))),
      "has sent a message routed as 'store:save' that has field ent.text that is equal to \"hi\"");
}

TEST(Matchers, SentInOrderAllowsInterleavingButNotReordering) {
  std::vector<Message> sent = {Msg("a:1"), Msg("x:1"), Msg("b:1"), Msg("c:1")};
  EXPECT_THAT(sent, SentInOrder(MessageLike("a:1"), MessageLike("b:1"), MessageLike("c:1")));
  EXPECT_THAT(sent, Not(SentInOrder(MessageLike("b:1"), MessageLike("a:1"))));
  EXPECT_THAT(Explain(SentInOrder(MessageLike("b:1"), MessageLike("a:1")), sent),
              HasSubstr("step 2 of 2 (a message routed as 'a:1') was not sent after message #2"));
  EXPECT_THAT(sent, SentCount("x:*", 1));
  EXPECT_THAT(sent, Not(SentCount("a:1", 2)));
}

TEST(Matchers, ReplyMatchersSeparateSuccessFromEachErrorCode) {
  Result<Message> ok = Msg(R"({"id":"7"})");
  Result<Message> missing = Status::NotFound("entry 7: no such entity");
  EXPECT_THAT(ok, IsOkReply(HasField("id", "7")));
  EXPECT_THAT(ok, Not(IsErrorReply(Code::kNotFound)));
  EXPECT_THAT(missing, IsErrorReply(Code::kNotFound, HasSubstr("no such")));
  EXPECT_THAT(missing, Not(IsErrorReply(Code::kInvalid)));
  EXPECT_THAT(missing, Not(IsOkReply()));
  EXPECT_EQ(Explain(IsOkReply(), missing), "which is an error");
  EXPECT_EQ(::testing::PrintToString(missing), "error not_found: entry 7: no such entity");
}

TEST(Msg, AcceptsJsonOrTheSeedNotation) {
  EXPECT_EQ(Msg("store:load,kind:entry,id:42"),
            Msg(R"({"store":"load","kind":"entry","id":"42"})"));
  auto failures = FailuresOf([] { (void)Msg("{broken"); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("Msg: not a valid message"));
}

}  // namespace
}  // namespace shardkit::testing
