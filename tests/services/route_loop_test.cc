// Route loops in a node: a cache routed with one pattern per operation outranks the shard stores
// for the messages the shard router forwards, so they would go back to the cache. The node answers
// them `unavailable` naming the loop at once (no hang until the deadline), and start, reload and
// explain point the configuration out.
#include <gmock/gmock.h>

#include "shardkit/services/data_services.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A sharded node; `cache_patterns` empty: no cache.
std::string ShardedNode(const std::string& cache_patterns) {
  std::string toml = R"(
[node]
name = "loops"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
[[service]]
name = "router"
type = "shard-router"
patterns = ["store:*", "store:*,kind:entry,cache:true"]
[[service]]
name = "shard-80"
type = "store"
backend = "memory"
shard = "-80"
[[service]]
name = "shard80-"
type = "store"
backend = "memory"
shard = "80-"
)";
  if (!cache_patterns.empty()) {
    toml += fmt::format(R"(
[[service]]
name = "entry-cache"
type = "cache"
patterns = [{}]
)",
                        cache_patterns);
  }
  return toml;
}

constexpr char kPerOperation[] =
    R"("store:load,kind:entry", "store:save,kind:entry", "store:remove,kind:entry",
       "store:list,kind:entry")";

struct LoopNode {
  explicit LoopNode(const std::string& toml) {
    RegisterDataServices();
    auto config = LoadNodeConfig(dir.Write("node.toml", toml));
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    auto started = Node::Start(std::move(config).value());
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    node = std::move(started).value();
    client = Client(runtime, node->listener_urls().at(0), ClientOptions{.timeout = 5s});
  }
  Result<Message> Act(std::string_view json) { return CallAndWait(*client, Msg(json)); }

  TempDir dir;
  std::unique_ptr<Node> node;
  IoRuntime runtime{1};
  std::shared_ptr<Handler> client;
};

TEST(RouteLoop, PerOperationCachePatternsAnswerUnavailableNamingTheLoopWithinMilliseconds) {
  LoopNode loops(ShardedNode(kPerOperation));
  for (const char* request : {R"({"store":"load","kind":"entry","id":"a"})",
                              R"({"store":"save","kind":"entry","ent":{"id":"a","n":1}})"}) {
    auto start = std::chrono::steady_clock::now();
    auto reply = loops.Act(request);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(reply.ok()) << request;
    EXPECT_EQ(reply.status().code(), Code::kUnavailable) << reply.status().ToString();
    EXPECT_THAT(reply.status().message(), HasSubstr("route loop"));
    EXPECT_THAT(reply.status().message(),
                HasSubstr("would go back to service entry-cache 'store:"));
    EXPECT_THAT(reply.status().details_json(), HasSubstr(R"("loop":["entry-cache 'store:)"));
    EXPECT_THAT(reply.status().details_json(),
                HasSubstr(R"(","router 'store:*,kind:entry,cache:true'"])"));
    // Not a speed check (that is a benchmark's job): a hang would end at the client's 5 s timeout
    // with `timeout`, which the code check above already refuses; this only says it was no hang.
    EXPECT_LT(took, 2500ms) << request << " took "
                            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                            << " ms";
  }
}

TEST(RouteLoop, ExplainAndReloadPointOutTheLoopingConfig) {
  LoopNode loops(ShardedNode(R"("store:*,kind:entry")"));
  auto explained = loops.Act(
      R"({"sys":"config","cmd":"explain","msg":{"store":"load","kind":"entry","id":"a"}})");
  ASSERT_TRUE(explained.ok()) << explained.status().ToString();
  EXPECT_EQ(explained->GetArrayJson("warnings").value_or(""), "[]");
  ASSERT_TRUE(loops.Act(R"({"store":"save","kind":"entry","ent":{"id":"a"}})").ok());

  loops.dir.Write("node.toml", ShardedNode(kPerOperation));
  auto reloaded = loops.Act(R"({"sys":"config","cmd":"reload"})");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  std::string warnings(reloaded->GetArrayJson("warnings").value_or(""));
  EXPECT_THAT(warnings, HasSubstr("route loop"));
  EXPECT_THAT(warnings, HasSubstr("'store:load,kind:entry' (service entry-cache (cache))"));
  EXPECT_THAT(warnings, HasSubstr("service shard-80 (store)"));
  explained = loops.Act(
      R"({"sys":"config","cmd":"explain","msg":{"store":"load","kind":"entry","id":"a"}})");
  ASSERT_TRUE(explained.ok());
  EXPECT_EQ(std::string(explained->GetArrayJson("warnings").value_or("")), warnings);
}

TEST(RouteLoop, ARouterForwardingToAShardNobodyServesAnswersAtOnce) {
  // No store for "80-": the router's child for that shard would reach the router again.
  std::string toml = ShardedNode("");
  toml.erase(toml.find("[[service]]\nname = \"shard80-\""));
  LoopNode loops(toml);
  auto start = std::chrono::steady_clock::now();
  Result<Message> reply = Status::Internal("unset");
  for (int i = 0; i < 20; ++i) {  // some ids fall into "80-"
    reply = loops.Act(fmt::format(R"({{"store":"load","kind":"entry","id":"x{}"}})", i));
    if (!reply.ok() && reply.status().code() == Code::kUnavailable) break;
  }
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kUnavailable) << reply.status().ToString();
  EXPECT_THAT(reply.status().message(), HasSubstr("would go back to service router 'store:*'"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);  // no hang to the 5 s timeout
}

}  // namespace
}  // namespace shardkit::services::testing
