// The replication protocol (store/replication.h) through the store service: a batch applied with
// its position in one write, the state a migration reads, the scan pages, the migration claim,
// and every bad input refused naming the field with nothing written.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/store/keyspace.h"
#include "shardkit/store/replication.h"
#include "shardkit/store/service.h"

namespace shardkit::store {
namespace {

class ReplicationService : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = NewMemoryStore(StoreOptions{});
    ASSERT_TRUE(opened.ok());
    store_ = std::move(opened).value();
    service_ = MakeStoreService(store_);
  }
  Result<Message> Act(const std::string& json) {
    auto m = ParseMessage(json);
    EXPECT_TRUE(m.ok()) << json;
    Result<Message> answer = Status::Internal("no reply");
    Context context(nullptr, nullptr, m->meta());
    service_->Handle(std::move(m).value(), context, [&](Result<Message> r) { answer = r; });
    return answer;
  }
  void ExpectRefused(const std::string& json, const std::string& expected) {
    uint64_t before = store_->feed().LastSequence();
    auto r = Act(json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), Code::kInvalid) << r.status().ToString();
    EXPECT_NE(r.status().message().find(expected), std::string::npos)
        << "expected '" << expected << "' in: " << r.status().message();
    EXPECT_EQ(store_->feed().LastSequence(), before) << "written by a refused message: " << json;
  }
  std::shared_ptr<EntityStore> store_;
  std::shared_ptr<Handler> service_;
};

std::vector<ChangeRecord> TwoChanges() {
  return {{0, Ksid("a"), "entry", "a", ChangeOp::kSave, 3, R"({"id":"a","version":3,"t":"x\"y"})",
           0, false},
          {0, Ksid("b"), "entry", "b", ChangeOp::kRemove, 2, "", 0, false}};
}

TEST(ReplicationCodec, ChangesRoundTripExactly) {
  auto changes = TwoChanges();
  changes[0].expires_at_ms = 1234;
  auto back = ChangesFromReplicationJson(ChangesToReplicationJson(changes));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, changes);
}

TEST_F(ReplicationService, ABatchIsAppliedWithItsPositionAndTheStateShowsIt) {
  std::string changes = ChangesToReplicationJson(TwoChanges());
  auto r = Act(fmt::format(
      R"({{"store":"replicate","v":1,"stream":"s1","position":17,"changes":{}}})", changes));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->GetUint("position"), std::optional<uint64_t>(17));
  EXPECT_EQ(*store_->ReplicatedPosition("s1"), 17u);
  auto loaded = store_->Load("entry", "a");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, R"({"id":"a","version":3,"t":"x\"y"})");

  auto state = Act(R"({"store":"replication","v":1,"stream":"s1","claim":"m1"})");
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->GetUint("position"), std::optional<uint64_t>(17));
  EXPECT_EQ(state->GetUint("last"), std::optional<uint64_t>(store_->feed().LastSequence()));
  EXPECT_EQ(state->GetString("claimant"), std::optional<std::string_view>("m1"));
  EXPECT_EQ(*store_->Claimant(), "m1");
  auto taken = Act(R"({"store":"replication","v":1,"claim":"m2"})");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), Code::kConflict);
  ASSERT_TRUE(Act(R"({"store":"replication","v":1,"release":"m1"})").ok());
  EXPECT_EQ(*store_->Claimant(), "");
}

TEST_F(ReplicationService, AScanPagesThroughARangeInKeyOrder) {
  std::vector<ChangeRecord> many;
  for (int i = 0; i < 25; ++i) {
    many.push_back({0, 0x4000000000000000ull + i, i % 2 ? "b" : "a", fmt::format("id{:02}", i),
                    ChangeOp::kSave, 1, fmt::format(R"({{"id":"id{:02}","version":1}})", i), 0,
                    false});
  }
  many.push_back({0, 0x9000000000000000ull, "a", "outside", ChangeOp::kSave, 1,
                  R"({"id":"outside","version":1})", 0, false});
  ASSERT_TRUE(store_->ApplyReplicated("s", many, 1).ok());
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    std::string scan = R"({"begin":"4000000000000000","end":"8000000000000000","limit":7)";
    if (!after.empty()) scan += R"(,"after":)" + after;
    auto r = Act(R"({"store":"replication","v":1,"scan":)" + scan + "}}");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto records = RecordsFromReplicationJson(*r->GetArrayJson("records"));
    ASSERT_TRUE(records.ok());
    for (const auto& rec : *records) seen.push_back(rec.kind + "/" + rec.id);
    if (!*r->GetBool("more")) break;
    const auto& last = records->back();
    after = JsonStringArray({last.kind, fmt::format("{:016x}", last.ksid), last.id});
  }
  std::vector<std::string> expected;
  ASSERT_TRUE(store_
                  ->ScanRange("", {0x4000000000000000ull, 0x8000000000000000ull},
                              [&](const EntityRecord& r) {
                                expected.push_back(r.kind + "/" + r.id);
                                return true;
                              })
                  .ok());
  EXPECT_EQ(expected.size(), 25u);
  EXPECT_EQ(seen, expected);
}

// Reverse replication from a store on another node: its feed read with each record's sequence
// and replicated mark, and the reader's consumer kept there.
TEST_F(ReplicationService, TheFeedIsReadWithSequencesAndMarksAndItsConsumerKept) {
  ASSERT_TRUE(store_->ApplyReplicated("s", {TwoChanges()[0]}, 5).ok());
  ASSERT_TRUE(store_->Save({"entry", "c", R"({"id":"c","t":1})"}, "").ok());
  uint64_t last = store_->feed().LastSequence();
  ASSERT_GE(last, 2u);
  auto r = Act(R"({"store":"replication","v":1,"feed":{"from":1,"limit":10},)"
               R"("consumer":{"name":"rev","op":"register","position":2}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->GetArrayJson("feed")) << ToJson(*r);
  auto read = FeedFromReplicationJson(*r->GetArrayJson("feed"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  auto direct = store_->feed().ReadChanges(1, 10);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(*read, *direct);
  ASSERT_EQ(read->size(), 2u);
  EXPECT_TRUE(read->front().replicated);
  EXPECT_FALSE(read->back().replicated);
  EXPECT_EQ(read->back().sequence, last);
  EXPECT_EQ(store_->feed().Consumers().at("rev"), 2u);
  EXPECT_EQ(r->GetObjectJson("consumers"), std::optional<std::string_view>(R"({"rev":2})"));

  ASSERT_TRUE(
      Act(R"({"store":"replication","v":1,"consumer":{"name":"rev","op":"advance","position":3}})")
          .ok());
  EXPECT_EQ(store_->feed().Consumers().at("rev"), 3u);
  ASSERT_TRUE(Act(R"({"store":"replication","v":1,"consumer":{"name":"rev","op":"remove"}})").ok());
  EXPECT_EQ(store_->feed().Consumers().count("rev"), 0u);
  auto past = Act(R"({"store":"replication","v":1,"feed":{"from":99}})");
  ASSERT_TRUE(past.ok()) << past.status().ToString();
  EXPECT_EQ(past->GetArrayJson("feed"), std::optional<std::string_view>("[]"));
}

TEST_F(ReplicationService, BadInputIsRefusedNamingTheFieldAndWritesNothing) {
  std::string one = ChangesToReplicationJson({TwoChanges()[0]});
  ExpectRefused(fmt::format(R"({{"store":"replicate","v":2,"stream":"s","position":1,)"
                            R"("changes":{}}})",
                            one),
                "v: replication protocol version 2 is not spoken by this node (it speaks 1)");
  ExpectRefused(
      fmt::format(R"({{"store":"replicate","stream":"s","position":1,"changes":{}}})", one),
      "v: the replication protocol version is required");
  ExpectRefused(fmt::format(R"({{"store":"replicate","v":1,"position":1,"changes":{}}})", one),
                "stream: must be a non-empty name");
  ExpectRefused(fmt::format(R"({{"store":"replicate","v":1,"stream":"s","changes":{}}})", one),
                "position: must be a non-negative integer");
  ExpectRefused(
      R"({"store":"replicate","v":1,"stream":"s","position":1,"changes":[["zz","k","i",1,1,0,null]]})",
      "changes: must be a ksid in hex");
  ExpectRefused(
      R"({"store":"replicate","v":1,"stream":"s","position":1,"changes":[["00","k","i",9,1,0,null]]})",
      "changes: each change must be");
  ExpectRefused(R"({"store":"replication","v":3})", "v: replication protocol version 3");
  ExpectRefused(R"({"store":"replication","v":1,"scan":{"begin":"x"}})", "scan.begin");
  ExpectRefused(R"({"store":"replication","v":1,"scan":{"after":[1]}})", "scan.after");
  ExpectRefused(R"({"store":"replication","v":1,"feed":{"from":0}})", "feed.from");
  ExpectRefused(R"({"store":"replication","v":1,"feed":{"from":1,"limit":0}})", "feed.limit");
  ExpectRefused(R"({"store":"replication","v":1,"feed":3})", "feed: must be an object");
  ExpectRefused(R"({"store":"replication","v":1,"consumer":{"op":"register","position":1}})",
                "consumer.name");
  ExpectRefused(R"({"store":"replication","v":1,"consumer":{"name":"c","op":"x","position":1}})",
                "consumer.op");
  ExpectRefused(R"({"store":"replication","v":1,"consumer":{"name":"c","op":"register"}})",
                "consumer.position");
  EXPECT_TRUE(store_->feed().Consumers().empty());
  EXPECT_EQ(*store_->ReplicatedPosition("s"), 0u);
}

}  // namespace
}  // namespace shardkit::store
