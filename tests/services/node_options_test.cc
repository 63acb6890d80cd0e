// NodeOptions (embedding a node: no listeners, routes connected by the embedder, an injected
// clock, inline blocking work, a directory per node) and the CQRS service types.
#include <gmock/gmock.h>

#include <atomic>

#include "shardkit/services/data_services.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kShardedNode = R"(
[node]
name = "embedded"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
[[service]]
name = "router"
type = "shard-router"
[[service]]
name = "left"
type = "store"
backend = "memory"
shard = "-80"
[[route]]
pattern = 'store:*,kind:*,shard:"80-"'
to = "tcp://127.0.0.1:1"
)";

NodeOptions Embedded(const Clock* clock, std::shared_ptr<Handler> remote,
                     std::atomic<int>* connects) {
  NodeOptions options;
  options.listen = false;
  options.environment.clock = clock;
  options.environment.run_blocking = [](std::function<void()> work) { work(); };
  options.environment.directory = std::make_shared<ServiceDirectory>();
  options.connect = [remote,
                     connects](const RouteConfig& route) -> Result<std::shared_ptr<Handler>> {
    ++*connects;
    if (route.to != "tcp://127.0.0.1:1") return Status::Invalid("unexpected url " + route.to);
    return remote;
  };
  return options;
}

TEST(NodeOptions, AnEmbeddedNodeBindsNothingAndSendsRemoteRoutesToTheConnectedHandler) {
  RegisterDataServices();
  std::atomic<int> connects{0};
  std::atomic<int> remote_calls{0};
  auto remote = MakeSyncHandler([&](Message m, const Context&) -> Result<Message> {
    ++remote_calls;
    return Message().SetString("shard_seen", m.GetString("shard").value_or(""));
  });
  ManualClock clock;
  auto config = ParseNodeConfig(kShardedNode, "embedded.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto node = Node::Start(*config, Embedded(&clock, remote, &connects));
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_TRUE((*node)->listener_urls().empty());
  EXPECT_EQ(connects.load(), 1);
  // An id on the 80- side goes to the connected handler; the bus runs on the manual clock, so a
  // deadline in its time is not "passed" although it is years before the wall clock.
  int routed_remote = 0;
  for (int i = 0; i < 20; ++i) {
    Message save = Msg(fmt::format(R"({{"store":"save","kind":"e","ent":{{"id":"k{}"}}}})", i));
    save.meta().deadline = clock.NowMs() + 1000;
    auto reply = (*node)->bus().ActAndWait(std::move(save), std::chrono::seconds(5));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    if (reply->GetString("shard_seen") == std::optional<std::string_view>("80-")) ++routed_remote;
  }
  EXPECT_GT(routed_remote, 0);
  EXPECT_EQ(remote_calls.load(), routed_remote);
}

TEST(NodeOptions, AConnectErrorRefusesTheConfigNamingTheRoute) {
  RegisterDataServices();
  std::atomic<int> connects{0};
  NodeOptions options = Embedded(nullptr, nullptr, &connects);
  options.connect = [](const RouteConfig&) -> Result<std::shared_ptr<Handler>> {
    return Status::Invalid("nobody there");
  };
  auto config = ParseNodeConfig(kShardedNode, "embedded.toml");
  ASSERT_TRUE(config.ok());
  auto node = Node::Start(*config, std::move(options));
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(node.status().message(), HasSubstr("embedded.toml: route[0].to: nobody there"));
}

TEST(NodeOptions, EachDirectoryHasItsOwnShardMapsAndShards) {
  RegisterDataServices();
  std::atomic<int> connects{0};
  auto config = ParseNodeConfig(kShardedNode, "embedded.toml");
  ASSERT_TRUE(config.ok());
  NodeOptions a = Embedded(nullptr, nullptr, &connects);
  NodeOptions b = Embedded(nullptr, nullptr, &connects);
  auto dir_a = a.environment.directory;
  auto dir_b = b.environment.directory;
  auto node_a = Node::Start(*config, std::move(a));
  auto node_b = Node::Start(*config, std::move(b));
  ASSERT_TRUE(node_a.ok() && node_b.ok());
  auto map_a = FindShardMap(*dir_a, "main");
  auto map_b = FindShardMap(*dir_b, "main");
  ASSERT_NE(map_a, nullptr);
  ASSERT_NE(map_b, nullptr);
  EXPECT_NE(map_a, map_b);
  EXPECT_NE(FindServedShard(*dir_a, "-80").store, FindServedShard(*dir_b, "-80").store);
  EXPECT_EQ(FindServedShard(*dir_a, "80-").store, nullptr);
  EXPECT_EQ(FindShardMap(ServiceDirectory::Process(), "main"), nullptr)
      << "embedded nodes leave the process directory alone";
}

std::string CqrsNode(const TempDir& dir, const std::string& extra = "") {
  return fmt::format(R"(
[node]
name = "cqrs"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "commands"
type = "command-log"
path = "{0}/log"
durability = "none"
[[service]]
name = "target"
type = "store"
backend = "memory"
patterns = ["store:*,kind:entry,cqrs:apply"]
[[service]]
name = "entries"
type = "projection"
projection = "entities"
kind = "entry"
log = "commands"
path = "{0}/entities"
durability = "none"
[[route]]
pattern = "store:save,kind:entry"
to = "commands"
{1}
)",
                     dir.path(), extra);
}

// A node with its own directory (a CommandLog in the process directory would stay open).
Result<std::unique_ptr<Node>> StartOwn(const std::string& toml) {
  RegisterDataServices();
  auto config = ParseNodeConfig(toml, "cqrs.toml");
  if (!config.ok()) return config.status();
  NodeOptions options;
  options.listen = false;
  options.environment.directory = std::make_shared<ServiceDirectory>();
  return Node::Start(*config, std::move(options));
}

TEST(CqrsServiceTypes, ACommandIsAcknowledgedAppliedOnceAndReadBackWithMinPosition) {
  TempDir dir;
  auto started = StartOwn(CqrsNode(dir));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& node = *started;
  Bus& bus = node->bus();
  auto ack = bus.ActAndWait(
      Msg(R"({"store":"save","kind":"entry","command_id":"c1","ent":{"id":"a","text":"hi"}})"));
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  uint64_t position = ack->GetUint("position").value_or(0);
  EXPECT_EQ(position, 1u);
  auto again = bus.ActAndWait(
      Msg(R"({"store":"save","kind":"entry","command_id":"c1","ent":{"id":"a","text":"hi"}})"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->GetBool("duplicate"), std::optional<bool>(true));
  auto read = bus.ActAndWait(Msg(fmt::format(
      R"({{"store":"load","kind":"entry","id":"a","min_position":{},"timeout_ms":5000}})",
      position)));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_THAT(std::string(read->GetObjectJson("ent").value_or("")), HasSubstr(R"("text":"hi")"));
  // The status of each component answers on its own service's pattern.
  auto status = bus.ActAndWait(Msg(R"({"cqrs":"status","service":"commands"})"));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_THAT(std::string(status->GetArrayJson("items").value_or("")), HasSubstr("\"applier\""));
  auto projection = bus.ActAndWait(Msg(R"({"cqrs":"status","service":"entries"})"));
  ASSERT_TRUE(projection.ok()) << projection.status().ToString();
  EXPECT_THAT(std::string(projection->GetArrayJson("items").value_or("")),
              HasSubstr("\"projection\""));
}

TEST(CqrsServiceTypes, BadSettingsAreRefusedNamingServiceAndKey) {
  RegisterDataServices();
  TempDir dir;
  auto refused = [&](const std::string& toml) {
    auto node = StartOwn(toml);
    return node.ok() ? std::string("started") : node.status().ToString();
  };
  std::string no_path = fmt::format(R"(
[node]
name = "x"
[[service]]
name = "commands"
type = "command-log"
)");
  EXPECT_THAT(refused(no_path),
              HasSubstr("service 'commands' (command-log): key 'path': is required"));
  std::string two_sources = CqrsNode(dir, R"(
[[service]]
name = "both"
type = "projection"
projection = "entities"
log = "commands"
feed = { store = "changes" }
path = "/tmp/unused"
)");
  EXPECT_THAT(refused(two_sources),
              HasSubstr("service 'both' (projection): key 'log': give exactly one source"));
  std::string unknown = CqrsNode(dir, R"(
[[service]]
name = "p"
type = "projection"
projection = "pagerank"
log = "commands"
path = "/tmp/unused"
)");
  EXPECT_THAT(refused(unknown), HasSubstr("key 'projection': unknown projection 'pagerank'"));
  std::string missing_log = CqrsNode(dir, R"(
[[service]]
name = "p"
type = "projection"
projection = "entities"
log = "nowhere"
path = "/tmp/unused"
)");
  EXPECT_THAT(refused(missing_log), HasSubstr("key 'log': no command-log service 'nowhere'"));
}

}  // namespace
}  // namespace shardkit::services::testing
