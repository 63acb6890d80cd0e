// Conformance: applying changes replicated from another store (live migration targets).
#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

TYPED_TEST_SUITE(store_conformance, StoreBackends, BackendName);

TYPED_TEST(store_conformance, ReplicatedChangesApplyVerbatimWithTheirPosition) {
  const std::string value = R"({"id":"r1","version":7,"text":"copied"})";
  std::vector<ChangeRecord> changes = {
      {11, Ksid("r1"), "thing", "r1", ChangeOp::kSave, 7, value, 0},
      {12, Ksid("r2"), "thing", "r2", ChangeOp::kSave, 3, R"({"id":"r2","version":3})", 0},
      {13, Ksid("r2"), "thing", "r2", ChangeOp::kRemove, 3, "", 0},
  };
  ASSERT_TRUE(this->store().ApplyReplicated("from-a", changes, 13).ok());
  auto loaded = this->store().Load("thing", "r1");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, value);  // same version, same text: not re-versioned
  EXPECT_EQ(this->store().Load("thing", "r2").status().code(), Code::kNotFound);
  EXPECT_EQ(*this->store().ReplicatedPosition("from-a"), 13u);
  EXPECT_EQ(*this->store().ReplicatedPosition("other"), 0u);
  // Appended to this store's own feed, with its own sequence numbers.
  auto feed = this->feed().ReadChanges(1, 10);
  ASSERT_TRUE(feed.ok());
  ASSERT_EQ(feed->size(), 3u);
  EXPECT_EQ((*feed)[0].sequence, 1u);
  EXPECT_EQ((*feed)[0].version, 7u);
  EXPECT_EQ((*feed)[2].op, ChangeOp::kRemove);
  // A later normal save continues from the replicated version.
  std::string saved = this->MustSave("thing", R"({"text":"local"})", "r1");
  EXPECT_EQ(VersionOf(saved), 8u);
}

TYPED_TEST(store_conformance, ReplicationPositionsAreNotConsumersAndDoNotHoldBackTrimming) {
  for (int i = 0; i < 4; ++i) this->MustSave("thing", "{}");
  ASSERT_TRUE(this->store().ApplyReplicated("from-a", {}, 99).ok());
  EXPECT_TRUE(this->feed().Consumers().empty());
  ASSERT_TRUE(this->feed().RegisterConsumer("reader", 3).ok());
  EXPECT_EQ(*this->feed().TrimFeed(), 2u);
  EXPECT_EQ(this->feed().RegisterConsumer("replica$x", 3).code(), Code::kInvalid);
}

TYPED_TEST(store_conformance, ReplicatedExpiryIsKept) {
  const int64_t expires = this->clock_.NowMs() + 5'000;
  ASSERT_TRUE(this->store()
                  .ApplyReplicated("from-a",
                                   {{1, Ksid("t"), "thing", "t", ChangeOp::kSave, 1,
                                     R"({"id":"t","version":1})", expires}},
                                   1)
                  .ok());
  EXPECT_TRUE(this->store().Load("thing", "t").ok());
  this->clock_.Advance(5'001);
  EXPECT_EQ(this->store().Load("thing", "t").status().code(), Code::kNotFound);
}

TYPED_TEST(store_conformance, ReplicatedChangesAreMarkedInTheFeedAndClientChangesAreNot) {
  this->MustSave("thing", "{}", "local");
  ASSERT_TRUE(
      this->store()
          .ApplyReplicated(
              "from-a",
              {{4, Ksid("r"), "thing", "r", ChangeOp::kSave, 2, R"({"id":"r","version":2})", 0}}, 4)
          .ok());
  this->MustSave("thing", "{}", "r");  // a client write over the replicated entity
  auto check = [&] {
    auto feed = this->feed().ReadChanges(1, 10);
    ASSERT_TRUE(feed.ok());
    ASSERT_EQ(feed->size(), 3u);
    EXPECT_FALSE((*feed)[0].replicated);
    EXPECT_TRUE((*feed)[1].replicated);
    EXPECT_EQ((*feed)[1].op, ChangeOp::kSave);
    EXPECT_FALSE((*feed)[2].replicated);
    EXPECT_EQ((*feed)[2].version, 3u);
  };
  check();
  if (TypeParam::kPersistent) {
    this->Reopen();
    check();
  }
}

TYPED_TEST(store_conformance, AClaimIsHeldByOneOwnerAndIsNotAConsumer) {
  EXPECT_EQ(*this->store().Claimant(), "");
  ASSERT_TRUE(this->store().Claim("m1").ok());
  EXPECT_TRUE(this->store().Claim("m1").ok());  // its holder again: no change
  Status second = this->store().Claim("m2");
  EXPECT_EQ(second.code(), Code::kConflict);
  EXPECT_EQ(second.message(), "store is claimed by migration 'm1'");
  EXPECT_TRUE(this->store().ReleaseClaim("m2").ok());  // not the holder: a no-op
  EXPECT_EQ(*this->store().Claimant(), "m1");
  EXPECT_TRUE(this->feed().Consumers().empty());
  EXPECT_EQ(this->feed().LastSequence(), 0u) << "a claim is not a change";
  EXPECT_EQ(this->feed().RegisterConsumer("claim$x", 1).code(), Code::kInvalid);
  ASSERT_TRUE(this->store().ReleaseClaim("m1").ok());
  EXPECT_EQ(*this->store().Claimant(), "");
  EXPECT_TRUE(this->store().Claim("m2").ok());
}

TYPED_TEST_SUITE(store_conformance_reopen, PersistentBackends, BackendName);

TYPED_TEST(store_conformance_reopen, AClaimAndTheReplicatedStreamsSurviveReopen) {
  ASSERT_TRUE(this->store().Claim("m1").ok());
  ASSERT_TRUE(this->store().ApplyReplicated("from-a", {}, 9).ok());
  this->Reopen();
  EXPECT_EQ(*this->store().Claimant(), "m1");
  EXPECT_EQ(this->store().Claim("m2").code(), Code::kConflict);
  auto streams = this->store().ReplicatedStreams();
  ASSERT_TRUE(streams.ok());
  EXPECT_EQ(*streams, (std::map<std::string, uint64_t>{{"from-a", 9}}));
  ASSERT_TRUE(this->store().ReleaseClaim("m1").ok());
  this->Reopen();
  EXPECT_EQ(*this->store().Claimant(), "");
}

TYPED_TEST(store_conformance_reopen, ReplicationPositionSurvivesReopen) {
  ASSERT_TRUE(
      this->store()
          .ApplyReplicated(
              "from-a",
              {{5, Ksid("p"), "thing", "p", ChangeOp::kSave, 2, R"({"id":"p","version":2})", 0}}, 5)
          .ok());
  this->Reopen();
  EXPECT_EQ(*this->store().ReplicatedPosition("from-a"), 5u);
  EXPECT_TRUE(this->store().Load("thing", "p").ok());
  EXPECT_TRUE(this->feed().Consumers().empty());
}

}  // namespace
}  // namespace shardkit::store::testing

namespace shardkit::store::testing {
namespace {

TYPED_TEST_SUITE(store_conformance, StoreBackends, BackendName);

TYPED_TEST(store_conformance_reopen, APopulatedKindsShardKeyCannotChange) {
  this->options_.shard_key_fields = {{"timeline", "user"}};
  this->Reopen();
  this->MustSave("timeline", R"({"user":"ann","text":"hi"})");
  this->MustSave("entry", R"({"text":"by id"})");
  this->store_.reset();
  this->options_.shard_key_fields = {};  // timeline would now be sharded by id
  auto refused = TypeParam::Open(this->options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalid);
  EXPECT_EQ(refused.status().message(),
            "shard_key_fields: kind 'timeline' already has data sharded by 'user'; its shard key "
            "cannot change to 'id'");
  this->options_.shard_key_fields = {{"timeline", "user"},
                                     {"fresh", "owner"}};  // a kind without data may choose
  this->Open();
  EXPECT_TRUE(
      this->store().Load("entry", IdOf(this->MustSave("entry", R"({"text":"again"})"))).ok());
  EXPECT_TRUE(this->feed().Consumers().empty());
}

}  // namespace
}  // namespace shardkit::store::testing
