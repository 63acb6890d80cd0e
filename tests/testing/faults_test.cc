// FaultInjector and WaitFor: every fault, on the routes and messages it names, deterministically.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include <shardkit/testing/testing.h>

#include "test_util.h"

namespace shardkit::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Echoes `n` and counts calls, remembering their order.
class Faulty : public ::testing::Test {
 protected:
  void SetUp() override {
    auto echo = MakeSyncHandler([this](Message m, const Context&) -> Result<Message> {
      seen_.push_back(std::string(m.GetString("n").value_or("")));
      return Message().SetString("n", m.GetString("n").value_or(""));
    });
    ASSERT_TRUE(bus_.Add("echo:*", faults_.Wrap("echo", echo)).ok());
    ASSERT_TRUE(bus_.Add("other:*", faults_.Wrap("other", echo)).ok());
  }

  ManualScheduler scheduler_;
  FaultInjector faults_{scheduler_};
  Bus bus_{BusOptions{.clock = &scheduler_.manual_clock(), .max_hops = 32, .id_prefix = {}}};
  std::vector<std::string> seen_;
};

TEST_F(Faulty, DelayHoldsTheMessageUntilTimeReachesIt) {
  auto& rule = faults_.On("echo").Delay(40);
  PendingReply r = Send(bus_, Msg("echo:go,n:1"));
  scheduler_.Advance(39);
  EXPECT_FALSE(r.ready());
  EXPECT_TRUE(seen_.empty());
  scheduler_.Advance(1);
  EXPECT_THAT(r.get(), IsOkReply(HasField("n", "1")));
  EXPECT_EQ(rule.hits(), 1);
}

TEST_F(Faulty, DropAnswersTimeoutAtTheDeadlineWithoutReachingTheHandler) {
  faults_.On("echo").Drop();
  Message m = Msg("echo:go,n:1");
  m.meta().deadline = scheduler_.clock().NowMs() + 300;
  PendingReply r = Send(bus_, std::move(m));
  scheduler_.Advance(299);
  EXPECT_FALSE(r.ready());
  scheduler_.Advance(1);
  EXPECT_THAT(r.get(), IsErrorReply(Code::kTimeout,
                                    HasSubstr("dropped by fault injection on route 'echo'")));
  EXPECT_TRUE(seen_.empty());
}

TEST_F(Faulty, DropWithoutADeadlineTimesOutAfterTheDropTimeout) {
  faults_.On("echo").Drop();
  PendingReply r = Send(bus_, Msg("echo:go"));
  scheduler_.Advance(FaultOptions{}.drop_timeout_ms - 1);
  EXPECT_FALSE(r.ready());
  scheduler_.Advance(1);
  EXPECT_THAT(r.get(), IsErrorReply(Code::kTimeout));
}

TEST_F(Faulty, ErrorAnswersAtOnceAndTimesLimitsIt) {
  faults_.On("echo").Error(Code::kUnavailable, "link down").Times(1);
  EXPECT_THAT(bus_.ActAndWait(Msg("echo:go,n:1")), IsErrorReply(Code::kUnavailable, "link down"));
  EXPECT_THAT(bus_.ActAndWait(Msg("echo:go,n:2")), IsOkReply());
  EXPECT_THAT(seen_, ElementsAre("2"));
}

TEST_F(Faulty, DuplicateDeliversTwiceAndRepliesOnce) {
  faults_.On("echo").Duplicate();
  PendingReply r = Send(bus_, Msg("echo:go,n:1"));
  EXPECT_THAT(seen_, ElementsAre("1", "1"));
  EXPECT_EQ(r.reply_count(), 1);
}

TEST_F(Faulty, ReorderDeliversAFullWindowNewestFirst) {
  faults_.On("echo").Reorder(3);
  PendingReply a = Send(bus_, Msg("echo:go,n:1"));
  PendingReply b = Send(bus_, Msg("echo:go,n:2"));
  EXPECT_TRUE(seen_.empty());
  PendingReply c = Send(bus_, Msg("echo:go,n:3"));
  EXPECT_THAT(seen_, ElementsAre("3", "2", "1"));
  EXPECT_THAT(a.get(), IsOkReply(HasField("n", "1")));
  EXPECT_THAT(c.get(), IsOkReply(HasField("n", "3")));
}

TEST_F(Faulty, ReorderReleasesAPartialWindowAfterTheFlushDelay) {
  faults_.On("echo").Reorder(5);
  PendingReply a = Send(bus_, Msg("echo:go,n:1"));
  PendingReply b = Send(bus_, Msg("echo:go,n:2"));
  EXPECT_TRUE(WaitFor(scheduler_, [&] { return a.ready() && b.ready(); }));
  EXPECT_THAT(seen_, ElementsAre("2", "1"));
  EXPECT_EQ(scheduler_.manual_clock().NowMs() - ManualClock().NowMs(),
            FaultOptions{}.reorder_flush_ms);
}

TEST_F(Faulty, RulesApplyOnlyToTheRoutesAndMessagesTheyName) {
  faults_.On("oth*", "other:go,n:2").Error(Code::kInternal);
  EXPECT_THAT(bus_.ActAndWait(Msg("echo:go,n:2")), IsOkReply());
  EXPECT_THAT(bus_.ActAndWait(Msg("other:go,n:1")), IsOkReply());
  EXPECT_THAT(bus_.ActAndWait(Msg("other:go,n:2")), IsErrorReply(Code::kInternal));
}

TEST_F(Faulty, ClearRemovesTheRulesAndReleasesHeldMessages) {
  faults_.On("echo").Reorder(10);
  PendingReply a = Send(bus_, Msg("echo:go,n:1"));
  faults_.Clear();
  EXPECT_TRUE(a.ready());
  EXPECT_THAT(bus_.ActAndWait(Msg("echo:go,n:2")), IsOkReply());
}

TEST(WaitFor, SimulatedTimeStopsAtTheTimeoutAndSaysSo) {
  ManualScheduler scheduler;
  bool done = false;
  scheduler.RunAfter(500, [&] { done = true; });
  auto result = WaitFor(
      scheduler, [&] { return done; }, 100);
  EXPECT_FALSE(result);
  EXPECT_THAT(result.message(), HasSubstr("after 100 ms of simulated time (1 task(s) pending)"));
  EXPECT_TRUE(WaitFor(
      scheduler, [&] { return done; }, 1000));
  EXPECT_THAT(WaitFor(scheduler, [] { return false; }).message(), HasSubstr("nothing scheduled"));
}

TEST(WaitFor, RealTimePollsUntilAnotherThreadMakesProgress) {
  RealTimeScheduler scheduler;
  std::atomic<bool> done{false};
  scheduler.RunAfter(5, [&] { done = true; });
  EXPECT_TRUE(WaitFor([&] { return done.load(); }, std::chrono::seconds(10)));
  EXPECT_FALSE(WaitFor([] { return false; }, std::chrono::milliseconds(5)));
}

}  // namespace
}  // namespace shardkit::testing
