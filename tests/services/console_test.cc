// The web console in process (services/console): where it is served, its token, its JSON and its
// answers to bad input. The page in a real browser: console_process_test.cc.
#include <gmock/gmock.h>

#include "shardkit/message/json.h"
#include "shardkit/services/data_services.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Listeners: http (console by default), http external (off by default), http with the console
// turned off, http with a token.
constexpr char kConsoleNode[] = R"(
[node]
name = "console-test"
[[listener]]
url = "http://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
external = true
[[listener]]
url = "http://127.0.0.1:0"
console = false
[[listener]]
url = "http://127.0.0.1:0"
token = "s3cret"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
[[service]]
name = "left"
type = "store"
backend = "memory"
shard = "-80"
[[service]]
name = "right"
type = "store"
backend = "rocksdb"
path = "{0}/right"
shard = "80-"
[[service]]
name = "migrator"
type = "migrator"
dir = "{0}/migrations"
)";

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterDataServices();
    node_ = StartNode(fmt::format(kConsoleNode, dir_.path()));
    ASSERT_NE(node_, nullptr);
  }
  void TearDown() override {
    if (node_) node_->Stop(std::chrono::milliseconds(500));
  }
  // The raw response to GET `target` on listener `i`.
  std::string Get(size_t i, const std::string& target, const std::string& headers = "") {
    RawSocket socket(PortOf(node_->listener_urls().at(i)));
    EXPECT_TRUE(socket.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n"));
    return socket.ReadHttpResponse();
  }
  static std::string Body(const std::string& response) {
    return response.substr(response.find("\r\n\r\n") + 4);
  }

  TempDir dir_;
  std::unique_ptr<Node> node_;
};

TEST_F(ConsoleTest, ServedOnInternalHttpListenersOnlyUnlessConfigured) {
  std::string page = Get(0, "/console");
  EXPECT_THAT(page, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(page, HasSubstr("Content-Type: text/html"));
  EXPECT_THAT(page, HasSubstr("Content-Security-Policy: default-src 'self'"));
  EXPECT_THAT(page, HasSubstr("<script src=\"/console/console.js\""));
  EXPECT_THAT(Get(0, "/console/console.js"), HasSubstr("Content-Type: text/javascript"));
  EXPECT_THAT(Get(0, "/console/console.css"), HasSubstr("Content-Type: text/css"));
  EXPECT_THAT(Get(1, "/console"), HasSubstr("HTTP/1.1 404")) << "external: off by default";
  EXPECT_THAT(Get(2, "/console"), HasSubstr("HTTP/1.1 404")) << "console = false";
  std::string missing = Get(0, "/console/nothing");
  EXPECT_THAT(missing, HasSubstr("HTTP/1.1 404"));
  EXPECT_TRUE(ParseJson(Body(missing), "body").ok()) << missing;
}

TEST_F(ConsoleTest, ATokenListenerAsksForItAndTakesBearerOrBasic) {
  std::string refused = Get(3, "/console");
  EXPECT_THAT(refused, HasSubstr("HTTP/1.1 401"));
  EXPECT_THAT(refused, HasSubstr("WWW-Authenticate: Basic realm=\"shardkit console\""));
  EXPECT_THAT(Body(refused), HasSubstr("\"error$\""));
  EXPECT_THAT(Get(3, "/console/state"), HasSubstr("HTTP/1.1 401"));
  EXPECT_THAT(Get(3, "/console", "Authorization: Bearer wrong\r\n"), HasSubstr("HTTP/1.1 401"));
  EXPECT_THAT(Get(3, "/console", "Authorization: Bearer s3cret\r\n"), HasSubstr("HTTP/1.1 200"));
  // "ops:s3cret" and "ops:nope" in base64.
  EXPECT_THAT(Get(3, "/console/state", "Authorization: Basic b3BzOnMzY3JldA==\r\n"),
              HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(Get(3, "/console", "Authorization: Basic b3BzOm5vcGU=\r\n"),
              HasSubstr("HTTP/1.1 401"));
}

TEST_F(ConsoleTest, StateGathersMapOwnersMigrationsRoutesAndStats) {
  std::string response = Get(0, "/console/state");
  ASSERT_THAT(response, HasSubstr("HTTP/1.1 200"));
  auto state = ParseJson(Body(response), "state");
  ASSERT_TRUE(state.ok()) << state.status().ToString() << "\n" << response;
  EXPECT_STREQ((*state)["node"].GetString(), "console-test");
  const auto& map = (*state)["maps"]["main"];
  EXPECT_EQ(map["epoch"].GetUint64(), 1u);
  EXPECT_EQ(ToJsonText(map["ranges"]), R"(["-80","80-"])");
  EXPECT_THAT(ToJsonText((*state)["services"]),
              HasSubstr(R"({"name":"left","type":"store","backend":"memory","shard":"-80"})"));
  const auto& right = (*state)["services"][2];  // the RocksDB store: its files' size
  EXPECT_STREQ(right["name"].GetString(), "right");
  EXPECT_GT(right["bytes"].GetInt64(), 0);
  EXPECT_FALSE((*state)["services"][1].HasMember("bytes")) << "memory: no size known";
  EXPECT_EQ(ToJsonText((*state)["migrations"]["migrator"]), R"({"migrations":[]})");
  EXPECT_THAT(ToJsonText((*state)["routes"]), HasSubstr("store:*,kind:*,shard:-80"));
  EXPECT_TRUE((*state)["stats"].HasMember("route_latency_ms"));
  EXPECT_TRUE((*state)["cluster"].IsNull()) << "the node runs alone";
}

TEST_F(ConsoleTest, ExplainNamesTheRouteAndRefusesBadInputNamingMsg) {
  std::string explained = Get(0, "/console/explain?msg=store%3Aload%2Ckind%3Aentry%2Cshard%3A-80");
  EXPECT_THAT(explained, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(Body(explained), HasSubstr("\"pattern\":\"store:*,kind:*,shard:-80\""));
  std::string json = Get(0, "/console/explain?msg=%7B%22store%22%3A%22load%22%7D");
  EXPECT_THAT(json, HasSubstr("HTTP/1.1 200"));
  for (const char* bad : {"/console/explain", "/console/explain?msg=",
                          "/console/explain?msg=kind%3A", "/console/explain?msg=%7Bnot%20json"}) {
    std::string refused = Get(0, bad);
    EXPECT_THAT(refused, HasSubstr("HTTP/1.1 400")) << bad;
    auto body = ParseJson(Body(refused), "body");
    ASSERT_TRUE(body.ok()) << refused;
    EXPECT_THAT(std::string((*body)["error$"]["message"].GetString()), HasSubstr("msg:")) << bad;
  }
}

TEST(ConsoleConfig, TheConsoleKeyIsABoolOnHttpListenersOnly) {
  auto tcp =
      ParseNodeConfig("[[listener]]\nurl = \"tcp://127.0.0.1:0\"\nconsole = true\n", "c.toml");
  ASSERT_FALSE(tcp.ok());
  EXPECT_THAT(
      tcp.status().message(),
      HasSubstr("c.toml: listener[0].console: only an http:// listener serves the web console"));
  auto text =
      ParseNodeConfig("[[listener]]\nurl = \"http://127.0.0.1:0\"\nconsole = \"yes\"\n", "c.toml");
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.status().message(), HasSubstr("listener[0].console: must be true or false"));
  auto external = ParseNodeConfig(
      "[[listener]]\nurl = \"http://127.0.0.1:0\"\nexternal = true\nconsole = true\n", "c.toml");
  ASSERT_TRUE(external.ok()) << external.status().ToString();
  EXPECT_TRUE(external->listeners[0].console);
  auto plain =
      ParseNodeConfig("[[listener]]\nurl = \"http://127.0.0.1:0\"\nexternal = true\n", "c.toml");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->listeners[0].console);
}

}  // namespace
}  // namespace shardkit::services::testing
