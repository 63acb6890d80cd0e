// The link between a move's coordinator (the source's node) and its remote target broken while
// the clients write: reset during the copy, partitioned (bytes held, connections open) during
// the catch-up and during the cutover. The processes and checks are the remote migration tests'
// (migration_processes.h): the move completes, zero client errors, every key's history
// linearizable, every preloaded entity read back, each shard's files holding only its range.
// A proxy in the test process carries the link (the target's URL in `nodes` is the proxy's);
// the router reaches the target node directly, as clients never cross that link.
#include <gtest/gtest.h>

#include "link_proxy.h"
#include "migration_processes.h"

namespace shardkit::migrate::testing {
namespace {

const Variant kMove{"move", {"40-80"}, {"40-80@b"}, {}, /*remote=*/true};

uint16_t PortOf(const std::string& url) {
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

class RemoteLinkBreak : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(cluster_.StartAll());
    proxy_ = std::make_unique<LinkProxy>(PortOf(cluster_.target_url()));
    ASSERT_NO_FATAL_FAILURE(cluster_.Preload(6000));
    cluster_.StartTraffic(4, 300);
  }
  // migrate:start with the target reached through the proxy; `extra` adds members.
  Result<Message> Start(const std::string& extra = "") {
    return cluster_.MigrateRaw(
        fmt::format(R"({{"migrate":"start","id":"m1","sources":["40-80"],"targets":["40-80@b"],)"
                    R"("nodes":{{"40-80@b":"{}"}}{}}})",
                    proxy_->url(), extra));
  }
  // Polls until the copy is done, starting again (which resumes from the target's position)
  // when the broken link failed it.
  void CopyToTheEnd() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto copied = cluster_.WaitCopied();
      if (copied.ok() && copied->GetString("phase") == std::optional<std::string_view>("copied")) {
        fmt::print("copy finished after {} more start(s); {} connection(s) cut\n", attempt,
                   proxy_->cut());
        return;
      }
      auto again = Start();
      ASSERT_TRUE(again.ok()) << again.status().ToString() << cluster_.logs();
    }
    FAIL() << "the copy did not finish after 5 starts" << cluster_.logs();
  }
  void CutOverCompleteAndCheck() {
    auto lag = cluster_.WaitLag(100);
    ASSERT_TRUE(lag.ok()) << lag.status().ToString() << cluster_.logs();
    auto cut = cluster_.Migrate("cutover");
    ASSERT_TRUE(cut.ok()) << cut.status().ToString() << cluster_.logs();
    cluster_.WaitOps(500);
    ASSERT_TRUE(cluster_.Migrate("complete").ok());
    cluster_.StopTraffic();
    EXPECT_EQ(cluster_.errors(), 0) << ::testing::PrintToString(cluster_.first_errors());
    ASSERT_NO_FATAL_FAILURE(cluster_.CheckHistories());
    EXPECT_EQ(cluster_.LostPreloaded(), 0) << "of " << cluster_.preloaded();
    cluster_.KillAll();
    cluster_.CheckStoreFiles(/*quiesced=*/false);
  }

  LiveMigrationProcesses cluster_{kMove};
  std::unique_ptr<LinkProxy> proxy_;
};

// ~1,500 rows of the range at 500 rows/s: the link is reset in the middle of the copy and
// refuses connections for half a second.
TEST_F(RemoteLinkBreak, ResetDuringTheCopy) {
  auto started = Start(R"(,"max_rows_per_s":500)");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto during = cluster_.Migrate("status");
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  ASSERT_EQ(during->GetBool("copying"), std::optional<bool>(true)) << ToJson(*during);
  proxy_->Cut();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  proxy_->Heal();
  EXPECT_GT(proxy_->cut(), 0) << "no connection was cut";
  ASSERT_NO_FATAL_FAILURE(CopyToTheEnd());
  ASSERT_NO_FATAL_FAILURE(CutOverCompleteAndCheck());
}

// After the copy, the link holds every byte for a while the clients write the source: the
// catch-up resumes when it heals.
TEST_F(RemoteLinkBreak, PartitionDuringTheCatchUp) {
  ASSERT_TRUE(Start().ok());
  ASSERT_NO_FATAL_FAILURE(CopyToTheEnd());
  cluster_.WaitOps(300);
  proxy_->Hold();
  cluster_.WaitOps(900);
  proxy_->Heal();
  ASSERT_NO_FATAL_FAILURE(CutOverCompleteAndCheck());
}

// The link partitioned as the cutover starts: the target cannot reach the fence (or, already
// there, cannot tell its feed position), so the cutover is abandoned (the source's gates reopen,
// the map stays at epoch 1, nothing served by two owners); healed, the same cutover succeeds.
TEST_F(RemoteLinkBreak, PartitionDuringTheCutover) {
  ASSERT_TRUE(Start().ok());
  ASSERT_NO_FATAL_FAILURE(CopyToTheEnd());
  ASSERT_TRUE(cluster_.WaitLag(100).ok());
  proxy_->Hold();
  auto refused = cluster_.Migrate("cutover");
  ASSERT_FALSE(refused.ok()) << "cut over while the target was unreachable: " << ToJson(*refused);
  // Abandoned either waiting for the fence or, when the target had reached it before the
  // partition, asking the target's feed position: each bounded well under the routers' timeout.
  const std::string why = refused.status().message();
  EXPECT_TRUE(why.find("did not reach the fence") != std::string::npos ||
              why.find("cannot read the feed position") != std::string::npos)
      << refused.status().ToString();
  auto status = cluster_.Migrate("status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("copied"));
  EXPECT_EQ(status->GetUint("epoch"), std::optional<uint64_t>(1));
  proxy_->Heal();
  ASSERT_NO_FATAL_FAILURE(CutOverCompleteAndCheck());
}

// The same partition with the target caught up (clients paused, lag 0), so that it is at the fence
// already: the cutover then asks the target's feed position with the gates closed, and must give
// up within the position query's bound, not the remote store's 30 s call timeout.
TEST_F(RemoteLinkBreak, PartitionDuringTheCutoverOfACaughtUpTarget) {
  ASSERT_TRUE(Start().ok());
  ASSERT_NO_FATAL_FAILURE(CopyToTheEnd());
  cluster_.StopTraffic();
  ASSERT_TRUE(cluster_.WaitLag(0).ok());
  proxy_->Hold();
  const auto asked = std::chrono::steady_clock::now();
  auto refused = cluster_.Migrate("cutover");
  const auto took = std::chrono::steady_clock::now() - asked;
  ASSERT_FALSE(refused.ok()) << "cut over while the target was unreachable: " << ToJson(*refused);
  EXPECT_NE(refused.status().message().find("cannot read the feed position"), std::string::npos)
      << refused.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(4)) << "the gates stayed closed that long";
  EXPECT_EQ(cluster_.Migrate("status")->GetUint("epoch"), std::optional<uint64_t>(1));
  proxy_->Heal();
  cluster_.StartTraffic(4, 300);
  ASSERT_NO_FATAL_FAILURE(CutOverCompleteAndCheck());
}

}  // namespace
}  // namespace shardkit::migrate::testing
