// Conformance: idempotency keys. A keyed write that changed something is applied once: its copies
// get the first answer and change nothing (across a reopen too); a key reused for another request
// is a conflict; writes that changed nothing leave no receipt; receipts expire.
#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

template <typename B>
class store_idempotency : public StoreFixture<B> {
 protected:
  SaveRequest Request(std::string id, std::string ent) {
    SaveRequest r;
    r.kind = "thing";
    r.id = std::move(id);
    r.ent = std::move(ent);
    return r;
  }
  uint64_t ChangesSoFar() { return this->feed().LastSequence(); }
};

TYPED_TEST_SUITE(store_idempotency, StoreBackends, BackendName);

TYPED_TEST(store_idempotency, AKeyedSaveSentTwiceIsAppliedOnceAndAnsweredAlike) {
  auto first = this->store().Save(this->Request("a", R"({"n":1})"), "key-1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const uint64_t changes = this->ChangesSoFar();
  auto again = this->store().Save(this->Request("a", R"({"n":1})"), "key-1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(VersionOf(*this->store().Load("thing", "a")), 1u);
  EXPECT_EQ(this->ChangesSoFar(), changes) << "the copy appended to the change feed";
  // Without a key the same save is a second write.
  auto unkeyed = this->store().Save(this->Request("a", R"({"n":1})"));
  ASSERT_TRUE(unkeyed.ok());
  EXPECT_EQ(VersionOf(*unkeyed), 2u);
}

TYPED_TEST(store_idempotency, AKeyedSaveWithAGeneratedIdCreatesOneEntity) {
  auto first = this->store().Save(this->Request("", R"({"n":1})"), "gen");
  auto again = this->store().Save(this->Request("", R"({"n":1})"), "gen");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(IdOf(*again), IdOf(*first));
  Query all;
  all.kind = "thing";
  auto page = this->store().List(all);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 1u);
}

TYPED_TEST(store_idempotency, AKeyReusedForAnotherRequestIsAConflictAndWritesNothing) {
  ASSERT_TRUE(this->store().Save(this->Request("a", R"({"n":1})"), "k").ok());
  auto other = this->store().Save(this->Request("a", R"({"n":2})"), "k");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kConflict);
  EXPECT_EQ(other.status().details_json(), R"({"field":"meta$.idempotency_key"})");
  EXPECT_EQ(other.status().message().rfind("meta$.idempotency_key:", 0), 0u)
      << other.status().message();
  auto removed = this->store().Remove("thing", "a", "k");
  EXPECT_EQ(removed.status().code(), Code::kConflict);
  auto loaded = this->store().Load("thing", "a");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, R"({"id":"a","version":1,"n":1})");
}

TYPED_TEST(store_idempotency, AKeyedRemoveRepeatedAnswersTheRemovedValueNotNotFound) {
  this->MustSave("thing", R"({"n":1})", "a");
  auto first = this->store().Remove("thing", "a", "rm");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto again = this->store().Remove("thing", "a", "rm");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *first);
  // The same remove without the key finds nothing.
  EXPECT_EQ(this->store().Remove("thing", "a").status().code(), Code::kNotFound);
}

TYPED_TEST(store_idempotency, AKeyedBatchIsReplayedItemByItemFailuresIncluded) {
  this->MustSave("thing", R"({"n":0})", "taken");
  std::vector<SaveRequest> batch = {this->Request("b1", R"({"n":1})"),
                                    this->Request("taken", R"({"n":2})"),
                                    this->Request("b2", R"({"n":3})")};
  batch[1].insert_only = true;
  auto first = this->store().SaveBatch(batch, "batch");
  ASSERT_EQ(first.size(), 3u);
  EXPECT_TRUE(first[0].ok() && first[2].ok());
  ASSERT_FALSE(first[1].ok());
  auto again = this->store().SaveBatch(batch, "batch");
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(*again[0], *first[0]);
  EXPECT_EQ(*again[2], *first[2]);
  EXPECT_EQ(again[1].status().code(), first[1].status().code());
  EXPECT_EQ(again[1].status().message(), first[1].status().message());
  EXPECT_EQ(VersionOf(*this->store().Load("thing", "b1")), 1u);
}

TYPED_TEST(store_idempotency, AKeyedRemoveWhereIsReplayed) {
  for (int i = 0; i < 3; ++i) this->MustSave("thing", R"({"g":"x"})", "w" + std::to_string(i));
  Query q;
  q.kind = "thing";
  q.filters.push_back({"g", R"("x")"});
  auto first = this->store().RemoveWhere(q, "rw");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 3u);
  this->MustSave("thing", R"({"g":"x"})", "late");  // a new match after the first removal
  auto again = this->store().RemoveWhere(q, "rw");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  EXPECT_TRUE(this->store().Load("thing", "late").ok()) << "the copy removed a later entity";
}

TYPED_TEST(store_idempotency, AWriteThatChangedNothingLeavesNoReceipt) {
  this->MustSave("thing", R"({"n":1})", "a");
  SaveRequest stale = this->Request("a", R"({"n":2})");
  stale.expected_version = 7;
  auto conflicted = this->store().Save(stale, "retry-me");
  EXPECT_EQ(conflicted.status().code(), Code::kConflict);
  // The key is still free: a request under it is judged afresh and applied.
  stale.expected_version = 1;
  auto applied = this->store().Save(stale, "retry-me");
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(VersionOf(*applied), 2u);
  EXPECT_EQ(this->store().Remove("thing", "missing", "rm-missing").status().code(),
            Code::kNotFound);
  this->MustSave("thing", R"({"n":1})", "missing");
  EXPECT_TRUE(this->store().Remove("thing", "missing", "rm-missing").ok());
}

TYPED_TEST(store_idempotency, AnOverlongKeyIsInvalidAndWritesNothing) {
  std::string key(257, 'k');
  auto saved = this->store().Save(this->Request("a", R"({"n":1})"), key);
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.status().code(), Code::kInvalid);
  EXPECT_EQ(saved.status().details_json(), R"({"field":"meta$.idempotency_key"})");
  EXPECT_EQ(this->store().Load("thing", "a").status().code(), Code::kNotFound);
  EXPECT_TRUE(this->store().Save(this->Request("a", R"({"n":1})"), std::string(256, 'k')).ok());
}

TYPED_TEST(store_idempotency, ReceiptsExpireAfterTheirTtl) {
  this->options_.idempotency_ttl_ms = 60'000;
  this->Reopen();
  ASSERT_TRUE(this->store().Save(this->Request("a", R"({"n":1})"), "k").ok());
  this->clock_.Advance(59'999);
  EXPECT_EQ(VersionOf(*this->store().Save(this->Request("a", R"({"n":1})"), "k")), 1u);
  this->clock_.Advance(1);
  // Expired: the copy is a new write (and its receipt replaces the old one).
  EXPECT_EQ(VersionOf(*this->store().Save(this->Request("a", R"({"n":1})"), "k")), 2u);
  EXPECT_EQ(VersionOf(*this->store().Save(this->Request("a", R"({"n":1})"), "k")), 2u);
  // After a purge over expired receipts a different request may use the key.
  this->clock_.Advance(60'000);
  ASSERT_TRUE(this->store().PurgeExpired().ok());
  auto other = this->store().Save(this->Request("b", R"({"n":1})"), "k");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(VersionOf(*other), 1u);
}

TYPED_TEST(store_idempotency, ATtlOfZeroTurnsKeysOff) {
  this->options_.idempotency_ttl_ms = 0;
  this->Reopen();
  ASSERT_TRUE(this->store().Save(this->Request("a", R"({"n":1})"), "k").ok());
  EXPECT_EQ(VersionOf(*this->store().Save(this->Request("a", R"({"n":1})"), "k")), 2u);
}

// Across a reopen: the backends that keep data.
template <typename B>
class store_idempotency_reopen : public store_idempotency<B> {};
TYPED_TEST_SUITE(store_idempotency_reopen, PersistentBackends, BackendName);

TYPED_TEST(store_idempotency_reopen, ReceiptsSurviveAReopen) {
  auto first = this->store().Save(this->Request("a", R"({"n":1})"), "durable");
  ASSERT_TRUE(first.ok());
  this->Reopen();
  auto again = this->store().Save(this->Request("a", R"({"n":1})"), "durable");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(VersionOf(*this->store().Load("thing", "a")), 1u);
}

}  // namespace
}  // namespace shardkit::store::testing
