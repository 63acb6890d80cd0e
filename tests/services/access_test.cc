// Who may do what (docs/security.md), against a real `shardkit serve` process: a node with a shard
// map, four RocksDB shard stores, a router, a migrator and a command log; a client token and an
// admin token; an internal listener, an external HTTP listener without an allow list and an
// external TCP listener with one. Every operation sent with the client token is refused with a
// clear error, audited with the token's name, and changes nothing.
#include <gmock/gmock.h>

#include "serve_process.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kClientSecret[] = "app-secret-0123456789";
constexpr char kAdminSecret[] = "ops-secret-0123456789";

std::string NodeConfigText(const TempDir& dir) {
  std::string toml = fmt::format(R"(
[node]
name = "access"
audit_log = "{0}/audit.log"
[[token]]
name = "app"
secret = "{1}"
role = "client"
[[token]]
name = "ops"
secret = "{2}"
role = "admin"
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
external = true
[[listener]]
url = "tcp://127.0.0.1:0"
external = true
allow = ["store:*", "migrate:status"]
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
path = "{0}/map.json"
[[service]]
name = "router"
type = "shard-router"
node_id = 1
[[service]]
name = "migrator"
type = "migrator"
dir = "{0}/migrations"
[[service]]
name = "commands"
type = "command-log"
path = "{0}/commands"
)",
                                 dir.path(), kClientSecret, kAdminSecret);
  for (const char* shard : {"-80", "80-", "-40", "40-80"}) {
    toml += fmt::format(R"(
[[service]]
name = "store{0}"
type = "store"
backend = "rocksdb"
path = "{1}/store{0}"
shard = "{0}"
)",
                        shard, dir.path());
  }
  return dir.Write("node.toml", toml);
}

// Every operation a client must not run, with the fields that would make it go through.
const std::vector<std::string> kOperations = {
    R"({"migrate":"start","id":"m1","sources":["-80"],"targets":["-40","40-80"]})",
    R"({"migrate":"cutover","id":"m1"})",
    R"({"migrate":"rollback","id":"m1"})",
    R"({"migrate":"complete","id":"m1"})",
    R"({"migrate":"cancel","id":"m1"})",
    R"({"migrate":"verify","id":"m1"})",
    R"({"migrate":"status","id":"m1"})",
    R"({"shardmap":"set","map":"main","expected_epoch":1,"ranges":["-"]})",
    R"({"shardmap":"get","map":"main"})",
    R"({"sys":"config","cmd":"reload"})",
    R"({"sys":"config","cmd":"routes"})",
    R"({"sys":"stats"})",
    R"({"store":"changes","shard":"-80"})",
    R"({"cqrs":"deadletter","cmd":"list","service":"commands"})",
    R"({"cqrs":"deadletter","cmd":"replay","service":"commands","position":1})",
    R"({"cqrs":"status","service":"commands"})",
};

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    serve_ = std::make_unique<ServeProcess>(dir_, NodeConfigText(dir_));
    urls_ = serve_->WaitReady();
    ASSERT_EQ(urls_.size(), 3u) << serve_->log();
  }
  std::shared_ptr<Handler> As(const std::string& url, const std::string& secret) {
    return Client(runtime_, url, ClientOptions{.token = secret});
  }
  Result<Message> Call(const std::string& url, const std::string& secret, std::string_view json) {
    return CallAndWait(*As(url, secret), Msg(json));
  }
  // The map's epoch and ranges, read with the admin token on the internal listener.
  std::string MapNow() {
    auto map = Call(urls_[0], kAdminSecret, R"({"shardmap":"get","map":"main"})");
    EXPECT_TRUE(map.ok()) << map.status().ToString();
    return map.ok() ? fmt::format("{} {}", map->GetUint("epoch").value_or(0),
                                  map->GetArrayJson("ranges").value_or(""))
                    : "";
  }
  std::vector<std::string> AuditLines() {
    std::vector<std::string> lines;
    std::istringstream in(ReadFile(dir_.File("audit.log")));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  std::string HttpGet(const std::string& path, const std::string& secret) {
    RawSocket socket(PortOf(urls_[1]));
    std::string auth = secret.empty() ? "" : fmt::format("Authorization: Bearer {}\r\n", secret);
    EXPECT_TRUE(socket.Send(
        fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n", path, auth)));
    return socket.Read(1 << 20, std::chrono::seconds(3));
  }

  TempDir dir_;
  IoRuntime runtime_{1};
  std::unique_ptr<ServeProcess> serve_;
  std::vector<std::string> urls_;  // internal tcp, external http, external tcp with allow
};

TEST_F(AccessTest, EveryOperationSentWithAClientTokenIsRefusedAuditedAndChangesNothing) {
  const std::string map_before = MapNow();
  ASSERT_EQ(map_before, R"(1 ["-80","80-"])");
  for (const std::string& json : kOperations) {
    auto refused = Call(urls_[0], kClientSecret, json);
    ASSERT_FALSE(refused.ok()) << json;
    EXPECT_EQ(refused.status().code(), Code::kInvalid) << json;
    EXPECT_THAT(refused.status().message(), HasSubstr("is an operation and the token 'app' has "
                                                      "the role client"))
        << json;
  }
  EXPECT_EQ(MapNow(), map_before);
  auto status = Call(urls_[0], kAdminSecret, R"({"migrate":"status","id":"m1"})");
  EXPECT_EQ(status.status().code(), Code::kNotFound) << status.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir_.File("migrations/m1")));
  // The client token still does what it is for.
  auto saved = Call(urls_[0], kClientSecret, R"({"store":"save","kind":"t","ent":{"id":"a"}})");
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  auto loaded = Call(urls_[0], kClientSecret, R"({"store":"load","kind":"t","id":"a"})");
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();

  std::vector<std::string> lines = AuditLines();
  size_t refused = 0, admitted = 0;
  for (const std::string& line : lines) {
    if (line.find(R"("token":"app")") != std::string::npos &&
        line.find(R"("outcome":"refused")") != std::string::npos)
      ++refused;
    if (line.find(R"("token":"ops")") != std::string::npos &&
        line.find(R"("outcome":"admitted")") != std::string::npos)
      ++admitted;
    EXPECT_EQ(line.find(R"("message":"store:save)"), std::string::npos) << "data is not audited";
  }
  EXPECT_EQ(refused, kOperations.size()) << ReadFile(dir_.File("audit.log"));
  EXPECT_EQ(admitted, 3u) << ReadFile(dir_.File("audit.log"));  // two map reads and a status
}

TEST_F(AccessTest, AnExternalListenerWithoutAnAllowListServesDataOnlyEvenToAnAdmin) {
  for (const std::string& json : kOperations) {
    auto refused = Call(urls_[1], kAdminSecret, json);
    ASSERT_FALSE(refused.ok()) << json;
    EXPECT_THAT(refused.status().message(), HasSubstr("an external listener serves operations "
                                                      "only when its allow list names them"))
        << json;
  }
  EXPECT_EQ(MapNow(), R"(1 ["-80","80-"])");
  auto saved = Call(urls_[1], kClientSecret, R"({"store":"save","kind":"t","ent":{"id":"b"}})");
  EXPECT_TRUE(saved.ok()) << saved.status().ToString();
  auto wrong = Call(urls_[1], "not-a-token-at-all", R"({"store":"load","kind":"t","id":"b"})");
  EXPECT_THAT(wrong.status().message(), HasSubstr("unauthorized"));

  // /metrics: 401 without a token, 403 with one (the listener does not serve sys:stats);
  // /health: the status only.
  EXPECT_THAT(HttpGet("/metrics", ""), HasSubstr("HTTP/1.1 401"));
  std::string metrics = HttpGet("/metrics", kAdminSecret);
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 403"));
  EXPECT_THAT(metrics, Not(HasSubstr("shardkit_requests")));
  std::string health = HttpGet("/health", "");
  EXPECT_THAT(health, HasSubstr(R"({"status":"ok"})"));
  EXPECT_THAT(health, Not(HasSubstr("in_flight")));
}

TEST_F(AccessTest, AnAllowListServesWhatItNamesAndOperationsStillNeedAnAdminToken) {
  auto client = Call(urls_[2], kClientSecret, R"({"migrate":"status","id":"m1"})");
  EXPECT_THAT(client.status().message(), HasSubstr("the role client"));
  auto admin = Call(urls_[2], kAdminSecret, R"({"migrate":"status","id":"m1"})");
  EXPECT_EQ(admin.status().code(), Code::kNotFound) << admin.status().ToString();
  auto unlisted = Call(urls_[2], kAdminSecret, R"({"migrate":"cutover","id":"m1"})");
  EXPECT_THAT(unlisted.status().message(), HasSubstr("is not served on this listener"));
  auto data = Call(urls_[2], kClientSecret, R"({"store":"save","kind":"t","ent":{"id":"c"}})");
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  // The internal listener serves the admin everything.
  auto routes = Call(urls_[0], kAdminSecret, R"({"sys":"config","cmd":"routes"})");
  EXPECT_TRUE(routes.ok()) << routes.status().ToString();
}

// The issue's attack, in a config that predates roles: the single `token` of an external listener
// is a client token, so the operations it once ran are refused and the map stays as it was.
TEST(AccessLegacyTest, TheTokenOfAnExternalListenerIsAClientToken) {
  TempDir dir;
  std::string config = dir.Write("node.toml", fmt::format(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
external = true
token = "{1}"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
path = "{0}/map.json"
[[service]]
name = "migrator"
type = "migrator"
dir = "{0}/migrations"
[[service]]
name = "store-80"
type = "store"
backend = "sqlite"
path = "{0}/store-80"
shard = "-80"
[[service]]
name = "store80-"
type = "store"
backend = "sqlite"
path = "{0}/store80-"
shard = "80-"
)",
                                                          dir.path(), kClientSecret));
  ServeProcess serve(dir, config);
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u) << serve.log();
  IoRuntime runtime(1);
  auto external = Client(runtime, urls[1], ClientOptions{.token = kClientSecret});
  for (std::string_view json :
       {R"({"shardmap":"set","map":"main","expected_epoch":1,"ranges":["-"]})",
        R"({"migrate":"start","id":"m1","sources":["-80"],"targets":["80-"]})"}) {
    auto refused = CallAndWait(*external, Msg(json));
    if (refused.ok()) {
      ADD_FAILURE() << json << " went through: " << ToJson(*refused);
      continue;
    }
    EXPECT_EQ(refused.status().code(), Code::kInvalid) << json;
    EXPECT_THAT(refused.status().message(), HasSubstr("forbidden")) << json;
  }
  auto internal = Client(runtime, urls[0]);
  auto map = CallAndWait(*internal, Msg(R"({"shardmap":"get","map":"main"})"));
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->GetUint("epoch"), std::optional<uint64_t>(1));
  RawSocket socket(PortOf(urls[1]));
  ASSERT_TRUE(socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_THAT(socket.Read(1 << 20, std::chrono::seconds(3)), HasSubstr("HTTP/1.1 401"));
}

TEST(AccessStartTest, AnOpenExternalListenerOnANonLoopbackAddressIsRefusedUnlessInsecure) {
  TempDir dir;
  std::string open = R"(
[[listener]]
url = "tcp://0.0.0.0:0"
external = true
[[service]]
name = "echo"
type = "echo"
)";
  // Bounded: a node that wrongly starts is stopped after 10 s.
  ShellRun refused =
      Shell(dir, "timeout 10 " + Cli("serve --config " + dir.Write("open.toml", open)));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("listener[0].url: an external listener on 0.0.0.0 without a "
                                     "token serves anyone who reaches it"));

  std::string insecure = open;
  insecure.replace(insecure.find("external = true"), 15, "external = true\ninsecure = true");
  ServeProcess serve(dir, dir.Write("insecure.toml", insecure));
  ASSERT_EQ(serve.WaitReady().size(), 1u) << serve.log();
  EXPECT_THAT(serve.log(), HasSubstr("insecure = true: this listener asks no token"));
}

}  // namespace
}  // namespace shardkit::services::testing
