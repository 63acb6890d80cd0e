// Conformance: the change feed — a record per mutation, consumers, trimming.
#include <atomic>
#include <thread>

#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

TYPED_TEST_SUITE(store_conformance, StoreBackends, BackendName);

TYPED_TEST(store_conformance, ChangeFeedRecordsEveryMutationInOrder) {
  EXPECT_EQ(this->feed().LastSequence(), 0u);
  EXPECT_TRUE(this->feed().ReadChanges(1, 10)->empty());
  std::string v1 = this->MustSave("thing", R"({"a":1})", "x");
  std::string v2 = this->MustSave("thing", R"({"a":2})", "x");
  ASSERT_TRUE(this->store().Remove("thing", "x").ok());
  const int64_t saved_at = this->clock_.NowMs();
  ASSERT_TRUE(this->store().Save({"thing", "t", "{}", std::nullopt, false, 1}).ok());
  this->clock_.Advance(1'000);
  ASSERT_EQ(*this->store().PurgeExpired(), 1u);

  Result<std::vector<ChangeRecord>> changes = this->feed().ReadChanges(1, 100);
  ASSERT_TRUE(changes.ok());
  const std::string t1 = R"({"id":"t","version":1})";
  const std::vector<ChangeRecord> expected = {
      {1, Ksid("x"), "thing", "x", ChangeOp::kSave, 1, v1},
      {2, Ksid("x"), "thing", "x", ChangeOp::kSave, 2, v2},
      {3, Ksid("x"), "thing", "x", ChangeOp::kRemove, 2, ""},
      {4, Ksid("t"), "thing", "t", ChangeOp::kSave, 1, t1, saved_at + 1'000},  // carries its expiry
      {5, Ksid("t"), "thing", "t", ChangeOp::kExpire, 1, ""},
  };
  EXPECT_EQ(*changes, expected);
  EXPECT_EQ(this->feed().LastSequence(), 5u);
  Result<std::vector<ChangeRecord>> middle = this->feed().ReadChanges(2, 2);
  ASSERT_TRUE(middle.ok());
  ASSERT_EQ(middle->size(), 2u);
  EXPECT_EQ((*middle)[0].sequence, 2u);
  EXPECT_EQ((*middle)[1].sequence, 3u);
  EXPECT_EQ(ChangeOpName(ChangeOp::kExpire), "expire");
}

// Feed readers wait for a record instead of polling: a wake fires once, when a record past its
// position is committed (at once if there already is one), and not for writes without records.
TYPED_TEST(store_conformance, AWakeFiresOnceWhenARecordPastItsPositionIsCommitted) {
  std::atomic<int> woken{0};
  this->feed().WhenAppended(0, [&] { ++woken; });
  EXPECT_EQ(woken.load(), 0);
  ASSERT_TRUE(this->feed().RegisterConsumer("c", 1).ok());  // a write, but no change record
  EXPECT_EQ(woken.load(), 0);
  this->MustSave("thing", R"({"a":1})", "x");
  EXPECT_EQ(woken.load(), 1);
  this->MustSave("thing", R"({"a":2})", "x");
  EXPECT_EQ(woken.load(), 1);  // once

  std::atomic<int> late{0};
  this->feed().WhenAppended(1, [&] { ++late; });  // the feed is at 2 already
  EXPECT_EQ(late.load(), 1);
  std::atomic<int> waiting{0};
  this->feed().WhenAppended(2, [&] { ++waiting; });
  std::thread writer([&] { this->MustSave("thing", R"({"a":3})", "y"); });
  writer.join();
  EXPECT_EQ(waiting.load(), 1);
}

TYPED_TEST(store_conformance, TrimKeepsEverythingWithoutConsumers) {
  for (int i = 0; i < 5; ++i) this->MustSave("thing", "{}");
  EXPECT_EQ(*this->feed().TrimFeed(), 0u);
  EXPECT_EQ(this->feed().ReadChanges(1, 10)->size(), 5u);
}

TYPED_TEST(store_conformance, TrimDeletesOnlyBelowTheLowestConsumerPosition) {
  for (int i = 0; i < 10; ++i) this->MustSave("thing", "{}");
  ASSERT_TRUE(this->feed().RegisterConsumer("slow", 4).ok());
  ASSERT_TRUE(this->feed().RegisterConsumer("fast", 9).ok());
  EXPECT_EQ(this->feed().RegisterConsumer("slow", 5).code(), Code::kConflict);
  EXPECT_EQ(*this->feed().TrimFeed(), 3u);
  EXPECT_EQ(this->feed().FirstRetainedSequence(), 4u);
  EXPECT_EQ(this->feed().ReadChanges(3, 10).status().code(), Code::kNotFound);
  EXPECT_EQ(this->feed().ReadChanges(4, 100)->front().sequence, 4u);
  EXPECT_EQ(this->feed().AdvanceConsumer("slow", 3).code(), Code::kInvalid);   // backwards
  EXPECT_EQ(this->feed().AdvanceConsumer("slow", 12).code(), Code::kInvalid);  // past the end
  EXPECT_EQ(this->feed().AdvanceConsumer("ghost", 5).code(), Code::kNotFound);
  EXPECT_EQ(this->feed().RegisterConsumer("late", 2).code(), Code::kInvalid);  // trimmed already
  ASSERT_TRUE(this->feed().AdvanceConsumer("slow", 11).ok());
  EXPECT_EQ(*this->feed().TrimFeed(), 5u);  // now "fast" at 9 is the lowest
  ASSERT_TRUE(this->feed().RemoveConsumer("fast").ok());
  EXPECT_EQ(this->feed().RemoveConsumer("fast").code(), Code::kNotFound);
  EXPECT_EQ(*this->feed().TrimFeed(), 2u);
  EXPECT_TRUE(this->feed().ReadChanges(11, 10)->empty());
  EXPECT_EQ(this->feed().LastSequence(), 10u);
  this->MustSave("thing", "{}");
  EXPECT_EQ(this->feed().ReadChanges(11, 10)->front().sequence, 11u);
  EXPECT_EQ(this->feed().Consumers(), (std::map<std::string, uint64_t>{{"slow", 11}}));
}

}  // namespace
}  // namespace shardkit::store::testing
