// Conformance: feed retention — trimming by age and size, consumers within and beyond the lag
// limit, stats. Rounds are run directly (TrimRetained) against the fixture's manual clock.
#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

template <typename B>
class store_retention : public StoreFixture<B> {
 public:
  void SetUp() override {
    this->options_.feed_retention = {
        .retention_ms = 1'000, .max_bytes = 0, .max_consumer_lag_ms = 5'000, .interval_ms = 0};
    StoreFixture<B>::SetUp();
  }
  void SaveMany(int n, const std::string& value = "{}") {
    for (int i = 0; i < n; ++i) this->MustSave("thing", value, "k" + std::to_string(i % 7));
  }
  TrimReport Round() {
    Result<TrimReport> report = this->feed().TrimRetained();
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : TrimReport{};
  }
};
TYPED_TEST_SUITE(store_retention, StoreBackends, BackendName);

TYPED_TEST(store_retention, TrimsRecordsOlderThanTheRetentionWithoutConsumers) {
  this->SaveMany(10);
  EXPECT_EQ(this->Round().trimmed, 0u);  // written just now
  this->clock_.Advance(1'001);
  this->SaveMany(5);
  EXPECT_EQ(this->Round().trimmed, 10u);
  EXPECT_EQ(this->feed().FirstRetainedSequence(), 11u);
  Result<std::vector<ChangeRecord>> old = this->feed().ReadChanges(1, 10);
  EXPECT_EQ(old.status().code(), Code::kNotFound);
  EXPECT_EQ(this->feed().ReadChanges(11, 10)->size(), 5u);
  // Trimming the feed never touches the data.
  for (int i = 0; i < 7; ++i)
    EXPECT_TRUE(this->store().Load("thing", "k" + std::to_string(i)).ok());
}

TYPED_TEST(store_retention, NeverTrimsPastAConsumerWithinTheLagLimit) {
  ASSERT_TRUE(this->feed().RegisterConsumer("projection", 1).ok());
  this->SaveMany(10);
  this->Round();
  this->clock_.Advance(4'000);  // past the retention, within the 5 s lag limit
  this->SaveMany(5);
  TrimReport report = this->Round();
  EXPECT_EQ(report.trimmed, 0u);
  EXPECT_TRUE(report.dropped.empty());
  EXPECT_EQ(this->feed().Consumers().at("projection"), 1u);
  EXPECT_EQ(this->feed().ReadChanges(1, 100)->size(), 15u);
  ASSERT_TRUE(this->feed().AdvanceConsumer("projection", 7).ok());
  EXPECT_EQ(this->Round().trimmed, 6u);  // up to the consumer, not to the retention's 11
  EXPECT_EQ(this->feed().FirstRetainedSequence(), 7u);
}

TYPED_TEST(store_retention, DropsAConsumerBeyondTheLagLimitWhichThenReadsNotFound) {
  ASSERT_TRUE(this->feed().RegisterConsumer("slow", 1).ok());
  ASSERT_TRUE(this->feed().RegisterConsumer("fast", 1).ok());
  this->SaveMany(10);
  this->Round();
  this->clock_.Advance(6'000);
  this->SaveMany(5);
  ASSERT_TRUE(this->feed().AdvanceConsumer("fast", 11).ok());
  TrimReport report = this->Round();
  EXPECT_EQ(report.dropped, std::vector<std::string>{"slow"});
  EXPECT_EQ(report.trimmed, 10u);
  EXPECT_EQ(this->feed().Consumers().count("slow"), 0u);
  EXPECT_EQ(this->feed().Consumers().at("fast"), 11u);
  Result<std::vector<ChangeRecord>> read = this->feed().ReadChanges(1, 10);
  ASSERT_EQ(read.status().code(), Code::kNotFound);
  EXPECT_EQ(IntField(read.status().details_json(), "first_retained"), 11);
  EXPECT_EQ(this->feed().AdvanceConsumer("slow", 11).code(), Code::kNotFound);
  EXPECT_EQ(this->feed().Stats().dropped_consumers_total, 1u);
}

TYPED_TEST(store_retention, KeepsTheFeedUnderItsByteLimit) {
  this->options_.feed_retention = {.retention_ms = 0, .max_bytes = 20'000, .interval_ms = 0};
  this->Reopen();
  const std::string value = R"({"pad":")" + std::string(200, 'x') + R"("})";
  for (int round = 0; round < 20; ++round) {
    this->SaveMany(20, value);
    this->Round();
    EXPECT_LE(this->feed().Stats().bytes, 20'000u) << "round " << round;
  }
  FeedStats stats = this->feed().Stats();
  EXPECT_GT(stats.first_retained, 300u);  // 400 records of ~300 bytes: most are gone
  EXPECT_EQ(stats.records, stats.last_sequence + 1 - stats.first_retained);
  EXPECT_EQ(this->feed().ReadChanges(stats.first_retained, 1000)->size(), stats.records);
}

TYPED_TEST(store_retention, StatsListConsumersWithPositionAndLag) {
  this->SaveMany(10);
  this->Round();
  ASSERT_TRUE(this->feed().RegisterConsumer("cache", 4).ok());
  this->clock_.Advance(700);
  this->SaveMany(2);
  FeedStats stats = this->feed().Stats();
  EXPECT_EQ(stats.records, 12u);
  EXPECT_EQ(stats.first_retained, 1u);
  EXPECT_EQ(stats.last_sequence, 12u);
  EXPECT_GT(stats.bytes, 12u * 20);
  ASSERT_EQ(stats.consumers.size(), 1u);
  EXPECT_EQ(stats.consumers[0].name, "cache");
  EXPECT_EQ(stats.consumers[0].position, 4u);
  EXPECT_EQ(stats.consumers[0].lag_records, 9u);
  EXPECT_EQ(stats.consumers[0].lag_ms, 700);
}

// A restart keeps a consumer's registration and position: only an explicit removal ends it.
TYPED_TEST(store_retention, AReopenKeepsConsumersAndTheirHold) {
  if (!TypeParam::kPersistent) return;  // the memory store starts empty
  this->SaveMany(10);
  ASSERT_TRUE(this->feed().RegisterConsumer("migration", 3).ok());
  this->Reopen();
  this->clock_.Advance(2'000);
  this->SaveMany(1);
  EXPECT_EQ(this->Round().trimmed, 2u);  // records 1-2; 3 on stay for the consumer
  EXPECT_EQ(this->feed().Consumers().at("migration"), 3u);
}

}  // namespace
}  // namespace shardkit::store::testing

namespace shardkit::store::testing {
namespace {

// Without limits nothing is trimmed, so the feed's history of samples is thinned instead of
// growing with every round: past that point the bytes stay exact and a consumer's lag is never
// overstated (it would be dropped early).
class store_retention_history : public StoreFixture<MemoryBackend> {};

TEST_F(store_retention_history, AFeedNeverTrimmedKeepsItsStatsAcrossThinning) {
  options_.feed_retention = {.retention_ms = 0, .max_bytes = 0, .interval_ms = 0};
  Reopen();
  // Ids of one length: every record has the same size.
  auto id = [](int i) {
    return std::string(6 - std::to_string(i).size(), '0') + std::to_string(i);
  };
  MustSave("thing", "{}", id(0));
  ASSERT_TRUE(feed().RegisterConsumer("old", 1).ok());
  const int64_t registered_at = clock_.NowMs();
  const uint64_t one = feed().Stats().bytes;
  constexpr int kRounds = 140'000;  // beyond the samples kept (131,072)
  for (int i = 0; i < kRounds; ++i) {
    clock_.Advance(1);
    MustSave("thing", "{}", id(i + 1));
    ASSERT_TRUE(feed().TrimRetained().ok());
  }
  FeedStats stats = feed().Stats();
  EXPECT_EQ(stats.records, kRounds + 1u);
  EXPECT_EQ(stats.first_retained, 1u);
  EXPECT_EQ(stats.bytes, one * (kRounds + 1u));
  ASSERT_EQ(stats.consumers.size(), 1u);
  EXPECT_LE(stats.consumers[0].lag_ms, clock_.NowMs() - registered_at);
  EXPECT_GT(stats.consumers[0].lag_ms, clock_.NowMs() - registered_at - 10);
}

}  // namespace
}  // namespace shardkit::store::testing
