// CQRS across nodes with the shardkit::testing cluster fixture, wired by node TOML: a writer node
// (command log, applier, target store, entities read model) and a reader node that reaches it over
// a link, with its own read model over the target store's change feed. Faults on the link:
// duplicate delivery, delay, dropped feed reads; and a restart of the reader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>

#include <shardkit/services/projection_types.h>
#include <shardkit/testing/testing.h>

#include "count_per_user.h"

namespace shardkit::cqrs {
namespace {

using shardkit::testing::Cluster;
using shardkit::testing::HasField;
using shardkit::testing::IsErrorReply;
using shardkit::testing::IsOkReply;
using shardkit::testing::Msg;

using shardkit::testing::TempDir;

// writer: commands for store:save|remove,kind:entry; the applier writes the memory store (which
// also serves its change feed, routed as store:changes,kind:entry); entities read model.
std::string WriterToml(const TempDir& dir) {
  return fmt::format(R"(
[node]
name = "writer"
[[listener]]
url = "tcp://127.0.0.1:7101"

[[service]]
name = "commands"
type = "command-log"
path = "{0}/log"
durability = "none"
initial_backoff_ms = 1

[[service]]
name = "target"
type = "store"
backend = "memory"
patterns = ["store:*,kind:entry,cqrs:apply", "store:changes,kind:entry"]

[[service]]
name = "entities"
type = "projection"
projection = "entities"
log = "commands"
path = "{0}/entities"
durability = "none"

[[route]]
pattern = "store:save,kind:entry"
to = "commands"
[[route]]
pattern = "store:remove,kind:entry"
to = "commands"
)",
                     dir.path());
}

// reader: writes and entity reads go to the writer; its own read model (entries per user) follows
// the target store's change feed through the same link.
std::string ReaderToml(const TempDir& dir) {
  return fmt::format(R"(
[node]
name = "reader"

[[service]]
name = "per-user"
type = "projection"
projection = "test.count-per-user"
feed = {{ store = "changes", kind = "entry" }}
poll_interval_ms = 2
path = "{0}/per-user"
durability = "none"

[[route]]
pattern = "store:*,kind:entry"
to = "tcp://127.0.0.1:7101"
timeout_ms = 500
[[route]]
pattern = "store:changes,kind:entry"
to = "tcp://127.0.0.1:7101"
timeout_ms = 500
)",
                     dir.path());
}

constexpr size_t kWriter = 0;
constexpr size_t kReader = 1;

// The reader's read model is a projection type of the test's own, registered as a user would.
void RegisterCountPerUser() {
  static const Status registered = services::RegisterProjectionType(
      "test.count-per-user",
      {.settings = {},
       .factory = [](const services::Settings&) -> Result<services::ProjectionInstance> {
         return services::ProjectionInstance{testing::MakeCountPerUserProjection(),
                                             {"entries:user"}};
       }});
  ASSERT_TRUE(registered.ok()) << registered.ToString();
}

std::unique_ptr<Cluster> WriterAndReader(const TempDir& dir) {
  RegisterCountPerUser();
  return Cluster::FromToml({WriterToml(dir), ReaderToml(dir)});
}

std::string Save(const std::string& id, const std::string& user, const std::string& command_id) {
  return fmt::format(
      R"({{"store":"save","kind":"entry","command_id":"{}","ent":{{"id":"{}","user":"{}","text":"t-{}"}}}})",
      command_id, id, user, id);
}

uint64_t Applied(Cluster& cluster) {
  auto status = cluster.Act(kWriter, R"({"cqrs":"status","service":"commands"})");
  if (!status.ok()) return 0;
  auto items = status->GetArrayJson("items").value_or("");
  auto at = items.find("\"applied\":");
  return at == std::string_view::npos ? 0 : std::strtoull(items.data() + at + 10, nullptr, 10);
}

TEST(CqrsCluster, ACommandDeliveredTwiceOverTheLinkIsLoggedAndAppliedOnce) {
  TempDir dir;
  auto cluster = WriterAndReader(dir);
  ASSERT_NE(cluster, nullptr);
  auto& twice = cluster->faults().On("reader->writer", "store:save").Duplicate();
  auto ack = cluster->Act(kReader, Save("a", "ann", "cmd-1"));
  ASSERT_THAT(ack, IsOkReply(HasField("position", 1)));
  EXPECT_EQ(twice.hits(), 1);
  ASSERT_TRUE(cluster->Await([&] { return Applied(*cluster) >= 1; }));
  // The second delivery was acknowledged as a duplicate of position 1, not logged at 2.
  EXPECT_THAT(cluster->Act(kWriter, Save("a", "ann", "cmd-1")),
              IsOkReply(HasField("duplicate", true)));
  EXPECT_THAT(cluster->Act(kWriter, R"({"store":"load","kind":"entry","id":"a","cqrs":"apply"})"),
              IsOkReply(HasField("ent.version", 1)))
      << "the target store saw one save";
  EXPECT_THAT(cluster->Act(kWriter, R"({"cqrs":"status","service":"commands"})"),
              IsOkReply(HasField("items.0.head", 1)));
}

TEST(CqrsCluster, AReadOnAnotherNodeOverADelayedLinkSeesItsOwnWriteWithMinPosition) {
  TempDir dir;
  auto cluster = WriterAndReader(dir);
  ASSERT_NE(cluster, nullptr);
  auto& slow_saves = cluster->faults().On("reader->writer", "store:save").Delay(40);
  auto& slow_loads = cluster->faults().On("reader->writer", "store:load").Delay(40);
  uint64_t position = 0;
  for (int i = 0; i < 5; ++i) {
    auto ack = cluster->Act(kReader, Save(fmt::format("e{}", i), "ann", fmt::format("c{}", i)));
    ASSERT_TRUE(ack.ok()) << ack.status().ToString();
    position = ack->GetUint("position").value_or(0);
  }
  int64_t before = cluster->clock().NowMs();
  EXPECT_THAT(
      cluster->Act(kReader, Msg(fmt::format(
                                R"({{"store":"load","kind":"entry","id":"e4","min_position":{}}})",
                                position))),
      IsOkReply(HasField("ent.text", "t-e4")));
  EXPECT_EQ(cluster->clock().NowMs() - before, 40) << "the read crossed the slow link once";
  EXPECT_EQ(slow_saves.hits(), 5);
  EXPECT_EQ(slow_loads.hits(), 1);
  // A position nobody has written yet is waited for, then refused with how far the model got.
  EXPECT_THAT(cluster->Act(kReader, Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"e4",)"
                                                    R"("min_position":{},"timeout_ms":30}})",
                                                    position + 1))),
              IsErrorReply(Code::kTimeout));
}

std::optional<uint64_t> CountOf(Cluster& cluster, const std::string& user) {
  auto reply = cluster.Act(kReader, Msg(fmt::format(R"({{"entries":"user","user":"{}"}})", user)));
  if (!reply.ok()) return std::nullopt;
  return reply->GetUint("count");
}

TEST(CqrsCluster, AFeedProjectionOnAnotherNodeCatchesUpAfterDroppedReadsAndARestart) {
  TempDir dir;
  auto cluster = WriterAndReader(dir);
  ASSERT_NE(cluster, nullptr);
  auto& dropped = cluster->faults().On("reader->writer", "store:changes").Drop().Times(3);
  for (int i = 0; i < 3; ++i)
    ASSERT_THAT(cluster->Act(kWriter, Save(fmt::format("b{}", i), "bob", fmt::format("b{}", i))),
                IsOkReply());
  ASSERT_TRUE(cluster->Await([&] { return CountOf(*cluster, "bob") == 3u; }))
      << "count now: " << CountOf(*cluster, "bob").value_or(0);
  EXPECT_EQ(dropped.hits(), 3) << "three feed reads were lost on the link and retried";

  // The reader restarts: the read model continues after its checkpoint (it never reads the feed
  // from the start again), counting nothing twice.
  ASSERT_TRUE(cluster->Restart(kReader).ok());
  auto& from_start = cluster->faults().On("reader->writer", "store:changes,from:1").Delay(0);
  for (int i = 3; i < 5; ++i)
    ASSERT_THAT(cluster->Act(kReader, Save(fmt::format("b{}", i), "bob", fmt::format("b{}", i))),
                IsOkReply());
  ASSERT_TRUE(cluster->Await([&] { return CountOf(*cluster, "bob") >= 5u; }));
  EXPECT_EQ(CountOf(*cluster, "bob"), 5u);
  EXPECT_EQ(from_start.hits(), 0) << "the restarted projection read the feed from position 1";
}

}  // namespace
}  // namespace shardkit::cqrs
