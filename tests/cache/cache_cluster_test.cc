// The entry cache across nodes, with the shardkit::testing cluster fixture: the shard lives on
// another node behind a link that fault injection slows down or breaks. Deterministic: the
// fixture's scheduler and clock drive every delay.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <shardkit/testing/testing.h>

namespace shardkit::cache {
namespace {

using shardkit::testing::Cluster;
using shardkit::testing::ClusterOptions;
using shardkit::testing::HasField;
using shardkit::testing::IsErrorReply;
using shardkit::testing::IsOkReply;

ClusterOptions TwoNodes() {
  ClusterOptions options;
  options.nodes = 2;
  options.ranges = {"-"};  // the one shard lives on node 0
  options.cached_kinds = {"entry"};
  options.fixtures = R"({"entry":[{"id":"a","text":"hello"}]})";
  return options;
}

TEST(CacheInACluster, ConcurrentMissesOnAnotherNodeCostOneRemoteLoadOverASlowLink) {
  Cluster cluster(TwoNodes());
  auto& slow_link = cluster.faults().On("node1->node0", "store:load").Delay(50);
  std::vector<shardkit::testing::PendingReply> replies;
  for (int i = 0; i < 10; ++i)
    replies.push_back(
        cluster.Send(1, shardkit::testing::Msg(R"({"store":"load","kind":"entry","id":"a"})")));
  cluster.scheduler().Advance(50);
  for (auto& r : replies) {
    ASSERT_TRUE(r.ready());
    EXPECT_THAT(r.get(), IsOkReply(HasField("ent.text", "hello")));
  }
  EXPECT_EQ(slow_link.hits(), 1) << "one load crossed the link";
  EXPECT_EQ(cluster.node(1).cache("entry")->stats().coalesced, 9u);
}

TEST(CacheInACluster, AnErrorFromTheRemoteShardIsNotCached) {
  Cluster cluster(TwoNodes());
  cluster.faults().On("node1->node0", "store:load").Error(Code::kUnavailable).Times(1);
  EXPECT_THAT(cluster.Act(1, R"({"store":"load","kind":"entry","id":"a"})"),
              IsErrorReply(Code::kUnavailable));
  EXPECT_THAT(cluster.Act(1, R"({"store":"load","kind":"entry","id":"a"})"),
              IsOkReply(HasField("ent.text", "hello")));
  EXPECT_THAT(cluster.Act(1, R"({"store":"load","kind":"entry","id":"a"})"),
              IsOkReply(HasField("ent.text", "hello")));
  EXPECT_EQ(cluster.node(1).cache("entry")->stats().hits, 1u);
}

}  // namespace
}  // namespace shardkit::cache
