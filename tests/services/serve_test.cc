// The real `shardkit` binary: `serve` processes on port 0 in temp dirs, driven by the library's
// clients, the CLI and curl. Signals: SIGHUP reloads, SIGTERM drains.
#include <gmock/gmock.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "serve_process.h"
#include "test_util.h"

#ifndef SHARDKIT_BINARY
#error "SHARDKIT_BINARY must name the shardkit executable"
#endif

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kNode[] = R"(
[node]
name = "serve-test"
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "echo"
type = "echo"
max_in_flight = 1000
[[service]]
name = "kv"
type = "kv"
preload = 5
)";

TEST(ServeTest, CliActsOverTcpAndHttpWithItsExitCodes) {
  TempDir dir;
  ServeProcess serve(dir, dir.Write("node.toml", kNode));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  for (const std::string& url : urls) {
    ShellRun ok = Shell(dir, Cli("act store:load,kind:entry,id:1 --to " + url));
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_THAT(ok.out, HasSubstr("{\"id\":1,\"ent\":{\"v\":\"xxxx"));  // compact: stdout is a file
    ShellRun missing = Shell(dir, Cli("act store:load,kind:entry,id:99 --to " + url));
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "shardkit: not_found: no entity with id '99'\n");
    ShellRun stdin_json =
        Shell(dir, "echo '{\"role\":\"echo\",\"n\":[1]}' | " + Cli("act --to " + url));
    EXPECT_EQ(stdin_json.exit_code, 0) << stdin_json.err;
    EXPECT_THAT(stdin_json.out, HasSubstr("\"n\":[1]"));
  }
  ShellRun routes = Shell(dir, Cli("routes --to " + urls[0]));
  EXPECT_EQ(routes.exit_code, 0);
  EXPECT_THAT(routes.out, HasSubstr("\"pattern\":\"store:*\",\"to\":\"service kv (kv)\""));
  ShellRun stats = Shell(dir, Cli("stats --to " + urls[1]));
  EXPECT_EQ(stats.exit_code, 0);
  EXPECT_THAT(stats.out, HasSubstr("\"store:*\":{\"ok\":"));
  ShellRun unreachable = Shell(dir, Cli("act role:echo --to tcp://127.0.0.1:1"));
  EXPECT_EQ(unreachable.exit_code, 2);
  EXPECT_THAT(unreachable.err, HasSubstr("cannot connect to tcp://127.0.0.1:1"));
  ShellRun usage = Shell(dir, Cli("act role:echo"));
  EXPECT_EQ(usage.exit_code, 2);
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.WaitExit(std::chrono::seconds(10)), 0);
}

TEST(ServeTest, CurlActsOverHttp) {
  SHARDKIT_REQUIRE_COMPONENT(std::system("command -v curl > /dev/null 2>&1") == 0,
                             "curl is not installed", "curl");
  TempDir dir;
  ServeProcess serve(dir, dir.Write("node.toml", kNode));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  ShellRun ok = Shell(dir,
                      "curl -s -i -X POST -H 'seneca-id: c1' -d "
                      "'{\"store\":\"load\",\"kind\":\"entry\",\"id\":2}' " +
                          urls[1] + "/act");
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_THAT(ok.out, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(ok.out, HasSubstr("seneca-id: c1"));
  EXPECT_THAT(ok.out, HasSubstr("{\"id\":2,\"ent\":"));
  ShellRun missing =
      Shell(dir, "curl -s -o /dev/null -w '%{http_code}' -d '{\"store\":\"load\",\"id\":9}' " +
                     urls[1] + "/act");
  EXPECT_EQ(missing.out, "404");
  ShellRun health = Shell(dir, "curl -s " + urls[1] + "/health");
  EXPECT_THAT(health.out, HasSubstr("\"status\":\"ok\""));
}

// The Idempotency-Key header over HTTP, on a RocksDB store, across a kill -9: the copy sent after
// the restart is answered from the receipt written with the data.
TEST(ServeTest, AnHttpSaveWithAnIdempotencyKeyIsAppliedOnceAcrossAKill) {
  SHARDKIT_REQUIRE_COMPONENT(std::system("command -v curl > /dev/null 2>&1") == 0,
                             "curl is not installed", "curl");
  TempDir dir;
  std::string config = dir.Write("node.toml", fmt::format(R"(
[node]
name = "keyed"
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "store"
type = "store"
path = "{}/store"
)",
                                                          dir.path()));
  auto save = [&](const std::string& url, const std::string& key) {
    return Shell(dir, "curl -s -H 'Idempotency-Key: " + key +
                          "' -d '{\"store\":\"save\",\"kind\":\"order\",\"ent\":{\"total\":5}}' " +
                          url + "/act")
        .out;
  };
  std::string first, copy, other;
  {
    ServeProcess serve(dir, config);
    auto urls = serve.WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    first = save(urls[0], "order-1");
    copy = save(urls[0], "order-1");
    other = save(urls[0], "order-2");
    serve.Signal(SIGKILL);
    serve.WaitExit(std::chrono::seconds(10));
  }
  EXPECT_THAT(first, HasSubstr("\"version\":1")) << first;
  EXPECT_EQ(copy, first) << "the copy was not answered from the receipt";
  EXPECT_NE(other, first) << "another key is another order";
  ServeProcess serve(dir, config);
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  EXPECT_EQ(save(urls[0], "order-1"), first) << "the receipt did not survive the kill";
  // The CLI's --idempotency-key: the same command twice is one order.
  std::string command = Cli(R"(act '{"store":"save","kind":"order","ent":{"total":7}}' )"
                            "--idempotency-key cli-1 --compact --to " +
                            urls[0]);
  ShellRun by_cli = Shell(dir, command);
  EXPECT_EQ(by_cli.exit_code, 0) << by_cli.err;
  EXPECT_THAT(by_cli.out, HasSubstr("\"version\":1"));
  EXPECT_EQ(Shell(dir, command).out, by_cli.out);
  ShellRun listed =
      Shell(dir, "curl -s -d '{\"store\":\"list\",\"kind\":\"order\"}' " + urls[0] + "/act");
  EXPECT_EQ(std::count(listed.out.begin(), listed.out.end(), '{'), 4) << listed.out;  // 3 orders
}

TEST(ServeTest, ANegativeIdempotencyTtlIsAConfigErrorNamingTheField) {
  TempDir dir;
  ServeProcess serve(dir, dir.Write("node.toml", fmt::format(R"(
[node]
name = "bad"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "store"
type = "store"
path = "{}/store"
idempotency_ttl_ms = -1
)",
                                                             dir.path())));
  EXPECT_NE(serve.WaitExit(std::chrono::seconds(10)), 0);
  EXPECT_THAT(
      serve.log(),
      HasSubstr(
          "service 'store' (store): key 'idempotency_ttl_ms': must be 0 (keys off) or positive"));
}

TEST(ServeTest, SighupReloadAddsARouteWhileAClientSends) {
  TempDir dir;
  std::string config = dir.Write("node.toml", kNode);
  ServeProcess serve(dir, config);
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  ASSERT_FALSE(CallAndWait(*client, Msg(R"({"color":"red"})")).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::thread sender([&] {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!stop && std::chrono::steady_clock::now() < until) {
      if (!CallAndWait(*client, Msg(R"({"role":"echo"})")).ok()) ++failed;
      ++sent;
    }
  });
  // The reload must land while the client is sending: wait for its first replies (a fast reload
  // once finished before the sender thread had sent anything).
  for (int i = 0; i < 500 && sent.load() < 10; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  dir.Write("node.toml", std::string(kNode) + "[[route]]\npattern = \"color:*\"\nto = \"echo\"\n");
  serve.Signal(SIGHUP);
  bool routed = false;
  for (int i = 0; i < 200 && !routed; ++i) {
    routed = CallAndWait(*client, Msg(R"({"color":"red"})")).ok();
    if (!routed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  sender.join();
  EXPECT_TRUE(routed);
  EXPECT_GT(sent.load(), 0);
  EXPECT_EQ(failed.load(), 0);
}

TEST(ServeTest, BadConfigIsRefusedAndTheOldOneKeepsServing) {
  TempDir dir;
  std::string config = dir.Write("node.toml", kNode);
  ServeProcess serve(dir, config);
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  dir.Write("node.toml",
            std::string(kNode) + "[[route]]\npattern = \"color:*\"\nto = \"nowhere\"\n");
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  auto refused = CallAndWait(*client, Msg(R"({"sys":"config","cmd":"reload"})"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalid);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("node.toml: route[0].to: no [[service]] named 'nowhere'"));
  serve.Signal(SIGHUP);  // refused as well, logged
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(CallAndWait(*client, Msg(R"({"role":"echo"})")).ok());
  EXPECT_THAT(serve.log(), HasSubstr("reload refused"));
}

TEST(ServeTest, SigtermFinishesEveryRequestInFlightThenExitsZero) {
  TempDir dir;
  ServeProcess serve(dir, dir.Write("node.toml", kNode));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  IoRuntime runtime(2);
  auto tcp = Client(runtime, urls[0]);
  auto http =
      Client(runtime, urls[1], ClientOptions{.connections = 20});  // every request on the wire
  Replies replies;
  for (int i = 0; i < 40; ++i) {
    Context context(nullptr, nullptr, {});
    (i % 2 ? tcp : http)
        ->Handle(Msg(R"({"role":"echo","delay_ms":500})"), context, replies.Collect());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  serve.Signal(SIGTERM);
  auto results = replies.Wait(std::chrono::seconds(10));
  int ok = 0;
  for (auto& r : results) ok += r.ok() ? 1 : 0;
  EXPECT_EQ(ok, 40);
  EXPECT_EQ(serve.WaitExit(std::chrono::seconds(10)), 0) << serve.log();
  EXPECT_FALSE(CallAndWait(*tcp, Msg(R"({"role":"echo"})")).ok());
}

}  // namespace
}  // namespace shardkit::services::testing
