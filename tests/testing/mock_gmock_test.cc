// MockResponder as a GMock user expects it: a dropped reply, expectations chosen by any field
// (With + GoogleTest matchers), cardinalities, sequences.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <shardkit/testing/testing.h>

#include "test_util.h"

namespace shardkit::testing {
namespace {

using ::testing::AnyNumber;
using ::testing::AtLeast;
using ::testing::AtMost;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(MockDrop, TheCallerNeverGetsAReplyWhenItHasNoDeadline) {
  ManualScheduler scheduler;
  Bus bus;
  MockResponder store(bus, {.scheduler = &scheduler});
  auto& load = store.On("store:load").Drop();

  PendingReply reply = Send(bus, Msg("store:load,kind:entry,id:1"));
  scheduler.Advance(60'000);
  EXPECT_FALSE(reply.ready());
  EXPECT_EQ(load.calls(), 1);
}

TEST(MockDrop, ACallerWithADeadlineGetsTimeoutWhenItPasses) {
  ManualScheduler scheduler;
  BusOptions options;
  options.clock = &scheduler.clock();
  Bus bus(options);
  MockResponder store(bus, {.scheduler = &scheduler});
  store.On("store:load").Drop();

  Message load = Msg("store:load,kind:entry,id:1");
  load.meta().deadline = scheduler.clock().NowMs() + 500;
  PendingReply reply = Send(bus, std::move(load));
  scheduler.Advance(499);
  EXPECT_FALSE(reply.ready());
  scheduler.Advance(1);
  ASSERT_TRUE(reply.ready());
  EXPECT_THAT(reply.get(), IsErrorReply(Code::kTimeout, HasSubstr("dropped store:load")));
}

TEST(MockWith, ChoosesTheExpectationByNestedFieldsAndGMockMatchers) {
  Bus bus;
  MockResponder store(bus);
  auto& urgent = store.On("store:save,kind:entry")
                     .With(HasField("ent.text", HasSubstr("urgent")), HasField("version", 3))
                     .Reply(R"({"which":"urgent"})");
  store.On("store:save,kind:entry").Reply(R"({"which":"other"})");

  EXPECT_THAT(bus.ActAndWait(Msg(R"({"store":"save","kind":"entry","version":3,
                                     "ent":{"text":"an urgent note"}})")),
              IsOkReply(HasField("which", "urgent")));
  EXPECT_THAT(bus.ActAndWait(Msg(R"({"store":"save","kind":"entry","version":4,
                                     "ent":{"text":"an urgent note"}})")),
              IsOkReply(HasField("which", "other")));
  EXPECT_THAT(urgent.received(), SizeIs(1));
}

TEST(MockWith, AMessageNoExpectationAcceptsFailsSayingWhichMatcherRefusedIt) {
  Bus bus;
  Result<Message> reply = Message();
  auto failures = FailuresOf([&] {
    MockResponder store(bus);
    store.On("store:save").With(HasField("ent.count", 8)).Reply("{}");
    reply = bus.ActAndWait(Msg(R"({"store":"save","ent":{"count":7}})"));
  });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("mock: unexpected message"));
  EXPECT_THAT(failures[0], HasSubstr("On('store:save') at line "));
  EXPECT_THAT(failures[0], HasSubstr("With: expected has field ent.count"));
  EXPECT_THAT(reply, IsErrorReply(Code::kNotFound));
}

TEST(MockCardinality, AtLeastAtMostAndAnyNumber) {
  Bus bus;
  auto failures = FailuresOf([&] {
    MockResponder mock(bus);
    mock.On("a:1").Times(AtLeast(2));
    mock.On("b:1").Times(AtMost(1));
    mock.On("c:1").Times(AnyNumber());
    (void)bus.ActAndWait(Msg("a:1"));
    (void)bus.ActAndWait(Msg("b:1"));
    (void)bus.ActAndWait(Msg("b:1"));
  });
  ASSERT_THAT(failures, SizeIs(2));
  EXPECT_THAT(failures[0],
              HasSubstr("'b:1': called more often than expected (called at most once)"));
  EXPECT_THAT(failures[1], HasSubstr("'a:1': expected to be called at least twice, got 1 call(s)"));
}

TEST(MockCardinality, SatisfiedCardinalitiesReportNothing) {
  Bus bus;
  auto failures = FailuresOf([&] {
    MockResponder mock(bus);
    mock.On("a:1").Times(AtLeast(2));
    mock.On("b:1").Times(AtMost(1));
    mock.On("c:1").Times(AnyNumber());
    for (int i = 0; i < 3; ++i) (void)bus.ActAndWait(Msg("a:1"));
    (void)bus.ActAndWait(Msg("b:1"));
  });
  EXPECT_THAT(failures, IsEmpty());
}

TEST(MockSequence, ACallBeforeItsPredecessorFailsNamingIt) {
  Bus bus;
  auto failures = FailuresOf([&] {
    MockResponder mock(bus);
    Sequence order;
    mock.On("store:load").InSequence(order).Times(1);
    mock.On("store:save").InSequence(order).Times(1);
    (void)bus.ActAndWait(Msg("store:save"));
    (void)bus.ActAndWait(Msg("store:load"));
  });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("'store:save': called out of sequence: 'store:load' (line "));
  EXPECT_THAT(failures[0], HasSubstr("comes first and has 0 call(s), expected Times(1)"));
}

TEST(MockSequence, CallsInOrderPass) {
  Bus bus;
  auto failures = FailuresOf([&] {
    MockResponder mock(bus);
    Sequence order;
    mock.On("store:load").InSequence(order).Times(1);
    mock.On("store:save").InSequence(order).Times(1);
    (void)bus.ActAndWait(Msg("store:load"));
    (void)bus.ActAndWait(Msg("store:save"));
  });
  EXPECT_THAT(failures, IsEmpty());
}

}  // namespace
}  // namespace shardkit::testing
